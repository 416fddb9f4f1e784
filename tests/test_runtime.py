"""Inference preparation (tools/runtime.py: batch norms folded, channels-last) changes nothing: each deployed network
gives the output of the checkpoint's plain eval-mode network on a real JSRT image."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from tools.checkpoint import load_state
from tools.classifier.model import build_model as build_classifier
from tools.classifier.model import head_features, head_logits, to_tensor, to_uint8_input, trunk
from tools.classifier.predict import grad_cam, load_classifier
from tools.classifier.predict import weights_path as classifier_weights_path
from tools.detector import predict as detector
from tools.detector.model import CenterNetLite0
from tools.detector.model import normalise as detector_normalise
from tools.runtime import fold_batch_norms, prepare_input, resized_batch
from tools.segmenter import predict as segmenter
from tools.segmenter.model import UNetLite0
from tools.segmenter.model import normalise as segmenter_normalise

Normalise = Callable[[torch.Tensor], torch.Tensor]


def _plain(model: nn.Module, payload: dict) -> nn.Module:
    load_state(model, payload)
    return model.eval()


def _networks() -> list[tuple[str, nn.Module, nn.Module, int, Normalise]]:
    """(name, deployed network, the same weights as a plain eval-mode network, input size, normalisation)."""
    loaded = detector.load_model(device="cpu")
    payload = torch.load(detector.weights_path(), map_location="cpu", weights_only=True)
    entries = payload.get("members", [payload])
    nets = [(f"detector-{m.input_size}", m.model, _plain(CenterNetLite0(), entry), m.input_size, detector_normalise)
            for m, entry in zip(loaded.members, entries, strict=True)]
    seg = segmenter.load_model(device="cpu")
    plain_seg = _plain(UNetLite0(), torch.load(segmenter.weights_path(), map_location="cpu", weights_only=True))
    return [*nets, ("segmenter", seg.model, plain_seg, seg.input_size, segmenter_normalise)]


def _first(output: torch.Tensor | tuple[torch.Tensor, ...]) -> torch.Tensor:
    return output[0] if isinstance(output, tuple) else output


@pytest.fixture(scope="module")
def frame(data_dir: Path) -> np.ndarray:
    image = Image.open(data_dir / "cxr-jsrt-scr" / "images" / "JPCLN001.png").convert("L")
    return np.asarray(image, dtype=np.float32) / 255


def test_deployed_networks_match_the_checkpoints_plain_networks(frame: np.ndarray) -> None:
    networks = _networks()  # loaded outside inference mode, as the tools load them
    assert len(networks) >= 2  # the detector's members and the segmenter
    for name, deployed, plain, size, normalise in networks:
        _compare(name, deployed, plain, size, normalise, frame)


@torch.inference_mode()
def _compare(name: str, deployed: nn.Module, plain: nn.Module, size: int, normalise: Normalise,
             frame: np.ndarray) -> None:
    assert not any(isinstance(m, nn.BatchNorm2d) for m in deployed.modules()), f"{name}: batch norms left"
    assert sum(isinstance(m, nn.BatchNorm2d) for m in plain.modules()) > 40
    weight = next(p for p in deployed.parameters() if p.dim() == 4)
    assert weight.is_contiguous(memory_format=torch.channels_last), f"{name} is not in the inference layout"
    x = normalise(resized_batch([frame], size, torch.device("cpu")))
    reference = _first(plain(x))
    fast = _first(deployed(prepare_input(x)))
    assert fast.is_contiguous(memory_format=torch.channels_last)
    assert torch.allclose(fast, reference, atol=1e-4), f"{name}: {float((fast - reference).abs().max())}"


def test_a_batch_norm_is_folded_only_into_the_convolution_that_feeds_it_alone() -> None:
    torch.manual_seed(0)

    class SharedConv(nn.Module):
        """One convolution feeding two batch norms: folding it into either would change the other branch."""

        def __init__(self) -> None:
            super().__init__()
            self.conv, self.a, self.b = nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.BatchNorm2d(4)
            self.tail = nn.Sequential(nn.Conv2d(4, 4, 1, bias=False), nn.BatchNorm2d(4), nn.ReLU())

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.conv(x)
            return self.tail(self.a(y) + self.b(y))

    model = SharedConv()
    for norm in (model.a, model.b, model.tail[1]):
        norm.running_mean.uniform_(-1, 1)
        norm.running_var.uniform_(0.5, 2)
        norm.weight.data.uniform_(0.5, 1.5)
        norm.bias.data.uniform_(-1, 1)
    model.eval()
    x = torch.randn(2, 1, 16, 16)
    with torch.inference_mode():
        reference = model(x)
    assert fold_batch_norms(model) == 1  # only the tail's
    assert isinstance(model.a, nn.BatchNorm2d) and isinstance(model.b, nn.BatchNorm2d)
    assert not isinstance(model.tail[1], nn.BatchNorm2d)
    with torch.inference_mode():
        assert torch.allclose(model(x), reference, atol=1e-5)


def test_deployed_classifier_matches_the_checkpoints_plain_network(frame: np.ndarray) -> None:
    deployed = load_classifier(device="cpu")
    checkpoint = torch.load(classifier_weights_path(), map_location="cpu", weights_only=False)
    plain = _plain(build_classifier(), checkpoint)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in deployed.model.modules())
    x = to_tensor(to_uint8_input(frame)[None])

    def logits(model: nn.Module) -> torch.Tensor:
        return head_logits(model, head_features(model, trunk(model, x)))

    with torch.inference_mode():
        assert torch.allclose(logits(deployed.model), logits(plain), atol=1e-4)


def test_models_loaded_under_inference_mode_can_still_be_differentiated(frame: np.ndarray) -> None:
    """A loader called inside torch.inference_mode() (the caches are bypassed) still builds ordinary parameters:
    Grad-CAM, which differentiates through the classifier, works on it."""
    with torch.inference_mode():
        clf = load_classifier.__wrapped__(device="cpu")
        others = [detector.load_model.__wrapped__(device="cpu").members[0].model,
                  segmenter.load_model.__wrapped__(device="cpu").model]
    for model in (clf.model, *others):
        assert not any(p.is_inference() for p in model.parameters())
    cams = grad_cam(clf, to_uint8_input(frame), [0])
    assert cams[0].shape == (10, 10) and float(cams[0].max()) == pytest.approx(1.0)
