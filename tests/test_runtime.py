"""The channels-last inference layout (tools/runtime.py) is applied to the deployed networks and changes nothing."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from tools.detector import predict as detector
from tools.detector.model import normalise as detector_normalise
from tools.runtime import prepare_input, resized_batch
from tools.segmenter import predict as segmenter
from tools.segmenter.model import normalise as segmenter_normalise

Normalise = Callable[[torch.Tensor], torch.Tensor]


def _networks() -> list[tuple[str, nn.Module, int, Normalise]]:
    loaded = detector.load_model(device="cpu")
    nets = [(f"detector-{m.input_size}", m.model, m.input_size, detector_normalise) for m in loaded.members]
    seg = segmenter.load_model(device="cpu")
    return [*nets, ("segmenter", seg.model, seg.input_size, segmenter_normalise)]


def _first(output: torch.Tensor | tuple[torch.Tensor, ...]) -> torch.Tensor:
    return output[0] if isinstance(output, tuple) else output


@pytest.fixture(scope="module")
def frame(data_dir: Path) -> np.ndarray:
    image = Image.open(data_dir / "cxr-jsrt-scr" / "images" / "JPCLN001.png").convert("L")
    return np.asarray(image, dtype=np.float32) / 255


@torch.inference_mode()
def test_channels_last_matches_the_standard_layout(frame: np.ndarray) -> None:
    networks = _networks()
    assert len(networks) >= 2  # the detector's members and the segmenter
    for name, deployed, size, normalise in networks:
        _check_layout(name, deployed, size, normalise, frame)


def _check_layout(name: str, deployed: nn.Module, size: int, normalise: Normalise, frame: np.ndarray) -> None:
    weight = next(p for p in deployed.parameters() if p.dim() == 4)
    assert weight.is_contiguous(memory_format=torch.channels_last), f"{name} is not in the inference layout"
    standard = copy.deepcopy(deployed).to(memory_format=torch.contiguous_format)
    x = normalise(resized_batch([frame], size, torch.device("cpu")))
    reference = _first(standard(x.contiguous()))
    fast = _first(deployed(prepare_input(x)))
    assert fast.is_contiguous(memory_format=torch.channels_last)
    assert torch.allclose(fast, reference, atol=1e-4), f"{name}: {float((fast - reference).abs().max())}"
