"""Reading a tool's committed weights: a clear error when they are missing, fp16 state dicts restored to fp32."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn


def read_checkpoint(path: Path, tool: str, env: str, script: str) -> dict:
    if not path.exists():
        raise FileNotFoundError(f"{tool} weights not found at {path} (set {env} or train them with {script})")
    return torch.load(path, map_location="cpu", weights_only=True)


def load_state(model: nn.Module, payload: dict) -> None:
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in payload["state_dict"].items()})
