"""The `ToolResult` contract every vision tool returns (DESIGN.md, "Contracts")."""

from __future__ import annotations

import base64
import io
from typing import Literal

import numpy as np
from PIL import Image
from pydantic import BaseModel, Field


class Box(BaseModel):
    """Axis-aligned box in the input image's pixel coordinates (x right, y down), inclusive-exclusive."""

    x0: float
    y0: float
    x1: float
    y1: float


class Finding(BaseModel):
    label: str
    probability: float | None = Field(default=None, ge=0.0, le=1.0)
    score: float | None = None
    calibrated: bool = False
    positive: bool = Field(default=False, description="above the tool's documented operating threshold")
    threshold: float | None = None
    box: Box | None = None
    attributes: dict[str, str | float | int | bool] = Field(default_factory=dict)


class Measurement(BaseModel):
    name: str
    value: float
    unit: str = Field(description="'mm', 'cm2', 'ratio', 'px', 'px2' ... never mm when spacing is unknown")
    structure: str | None = None
    note: str | None = None


class Region(BaseModel):
    """A mask as a PNG (base64, 0/255, input resolution) or a box."""

    label: str
    box: Box | None = None
    mask_png_b64: str | None = Field(default=None, repr=False)

    @classmethod
    def from_mask(cls, label: str, mask: np.ndarray) -> Region:
        ys, xs = np.nonzero(mask)
        box = None
        if len(xs):
            box = Box(x0=float(xs.min()), y0=float(ys.min()), x1=float(xs.max() + 1), y1=float(ys.max() + 1))
        return cls(label=label, box=box, mask_png_b64=encode_png(mask.astype(bool).astype(np.uint8) * 255))

    def mask(self) -> np.ndarray | None:
        return decode_png(self.mask_png_b64) > 127 if self.mask_png_b64 else None


class ToolResult(BaseModel):
    tool: str
    model_id: str
    weights_sha256: str | None = None
    study_id: str = Field(description="the input, by reference: Study.id")
    evidence_id: str | None = Field(default=None, description="T1, T2 ... assigned when recorded in a conversation")
    status: Literal["ok", "refused", "error"] = "ok"
    findings: list[Finding] = Field(default_factory=list)
    measurements: list[Measurement] = Field(default_factory=list)
    regions: list[Region] = Field(default_factory=list)
    overlay_png_b64: str | None = Field(default=None, repr=False)
    latency_ms: float = 0.0
    device: str = "cpu"
    warnings: list[str] = Field(default_factory=list)


def encode_png(array: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG", compress_level=1)  # speed over size: every tool call pays it
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def decode_png(data: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(data))))
