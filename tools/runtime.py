"""Inference preparation shared by the convolutional tools.

Batch norms that follow a convolution are folded into it (one op fewer per layer: the batch norms took about an
eighth of the detector's time on the 2-core CPU), and the network runs channels-last (NHWC), which lets oneDNN take
its fast path for depthwise convolutions (about 25 % less time for the detector and segmenter networks). Outputs
equal the checkpoint's plain eval-mode network to 1e-4 (tests/test_runtime.py; the model cards).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import TypeVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

Loader = TypeVar("Loader", bound=Callable[..., object])


def loads_in_normal_mode(load: Loader) -> Loader:
    """A model loader that builds ordinary tensors even when called under ``torch.inference_mode()``: parameters
    created there would be inference tensors, and autograd (Grad-CAM, ONNX export) could never run through them."""
    return torch.inference_mode(False)(load)  # type: ignore[return-value]


def prepare_model(model: nn.Module, device: torch.device) -> nn.Module:
    """Eval mode, batch norms folded into their convolutions, channels-last on ``device``: for inference only."""
    model.eval()
    fold_batch_norms(model)
    return model.to(device=device, memory_format=torch.channels_last)


def fold_batch_norms(model: nn.Module, example_size: int = 64) -> int:
    """Fold each BatchNorm2d that takes a Conv2d's output directly into that convolution and remove it (timm's
    BatchNormAct2d leaves its activation in its place). The pairs are found by running an example input through the
    eval-mode model; returns how many were folded."""
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    if not convs or model.training:
        return 0
    produced_by: dict[int, nn.Conv2d] = {}
    keep_alive: list[torch.Tensor] = []  # so that no output's id is reused while the pairs are matched
    pairs: list[tuple[nn.Conv2d, nn.BatchNorm2d]] = []

    def after_conv(conv: nn.Module, _args: tuple, out: torch.Tensor) -> None:
        produced_by[id(out)] = conv  # type: ignore[assignment]
        keep_alive.append(out)

    def before_norm(norm: nn.Module, args: tuple) -> None:
        conv = produced_by.get(id(args[0]))
        if conv is not None and norm.track_running_stats:  # type: ignore[union-attr]
            pairs.append((conv, norm))  # type: ignore[arg-type]

    hooks = [c.register_forward_hook(after_conv) for c in convs]
    hooks += [m.register_forward_pre_hook(before_norm) for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    try:
        with torch.inference_mode():
            model(torch.zeros(1, convs[0].in_channels, example_size, example_size,
                              device=convs[0].weight.device))
    finally:
        for hook in hooks:
            hook.remove()
    counts = Counter(id(conv) for conv, _ in pairs)
    folded = {id(norm): _fold(conv, norm) for conv, norm in pairs if counts[id(conv)] == 1}
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if id(child) in folded:
                setattr(parent, name, folded[id(child)])
    return len(folded)


def _fold(conv: nn.Conv2d, norm: nn.BatchNorm2d) -> nn.Module:
    """conv's weights and bias absorb norm's affine transform; returns what replaces norm."""
    with torch.no_grad():
        scale = norm.running_var.add(norm.eps).rsqrt()  # type: ignore[union-attr]
        if norm.weight is not None:
            scale = scale * norm.weight
        shift = -norm.running_mean * scale  # type: ignore[operator]
        if norm.bias is not None:
            shift = shift + norm.bias
        bias = shift if conv.bias is None else conv.bias * scale + shift
        conv.weight = nn.Parameter(conv.weight * scale.reshape(-1, 1, 1, 1), requires_grad=conv.weight.requires_grad)
        conv.bias = nn.Parameter(bias.clone(), requires_grad=conv.weight.requires_grad)
    rest = [m for m in (getattr(norm, "drop", None), getattr(norm, "act", None)) if m is not None]
    return nn.Sequential(*rest) if rest else nn.Identity()


def prepare_input(x: torch.Tensor) -> torch.Tensor:
    return x.contiguous(memory_format=torch.channels_last)


def resized_batch(frames: list[np.ndarray], size: int, device: torch.device) -> torch.Tensor:
    """2-D float frames of any sizes -> (N, 1, size, size) by area averaging, on ``device``."""
    return torch.cat([
        F.interpolate(torch.from_numpy(np.ascontiguousarray(f, dtype=np.float32))[None, None], size=(size, size),
                      mode="area")
        for f in frames
    ]).to(device)
