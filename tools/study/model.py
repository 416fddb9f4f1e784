"""The `Study` contract: decoded, normalised pixels plus de-identified metadata.

Pixel convention (documented for every consumer):
- ``pixels``: float32, shape (frames, rows, cols), values in [0, 1], 0 = black as a reader sees
  it (MONOCHROME1 is already inverted). For DICOM it is the modality LUT (Rescale Slope/Intercept)
  followed by the VOI transform: the VOI LUT Sequence when present, else the *first*
  WindowCenter/WindowWidth pair, else the full min-max range of the modality values.
- ``modality_values``: float32, same shape, the output of the modality LUT (Hounsfield units for
  CT, stored values for CR/DX); ``None`` for PNG/JPEG.
- ``rgb``: float32 (frames, rows, cols, 3) in [0, 1] when the source was colour, else ``None``;
  ``pixels`` then holds the ITU-R BT.601 luma of it.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

SpacingSource = Literal["PixelSpacing", "ImagerPixelSpacing", "user"]
VoiSource = Literal["VOI LUT Sequence", "WindowCenter/WindowWidth", "min-max", "8-bit raster", "16-bit raster"]


class SafeMetadata(BaseModel):
    """Metadata that survived the PS3.15 Basic Profile (plus Retain Patient Characteristics)."""

    model_config = ConfigDict(extra="forbid")

    modality: str = "OT"
    sop_class: str | None = None
    body_part: str | None = None
    view_position: str | None = None
    laterality: str | None = None
    photometric: str | None = None
    rows: int
    columns: int
    frames: int = 1
    bits_stored: int | None = None
    signed: bool | None = None
    transfer_syntax: str | None = None
    patient_sex: str | None = None
    patient_age: str | None = None
    manufacturer: str | None = None
    pseudonymous_study_uid: str | None = None
    pseudonymous_series_uid: str | None = None
    deidentification_method: str | None = None


class Study(BaseModel):
    model_config = ConfigDict(arbitrary_types_allowed=True, frozen=True)

    id: str = Field(description="sha256 of the decoded pixel values: identical across transfer syntaxes")
    source_format: Literal["dicom", "png", "jpeg"]
    metadata: SafeMetadata
    pixels: np.ndarray = Field(exclude=True, repr=False)
    modality_values: np.ndarray | None = Field(default=None, exclude=True, repr=False)
    rgb: np.ndarray | None = Field(default=None, exclude=True, repr=False)
    pixel_spacing_mm: tuple[float, float] | None = Field(
        default=None, description="(row, column) spacing in mm; None means unknown: measure in px"
    )
    spacing_source: SpacingSource | None = None
    slice_spacing_mm: float | None = None
    voi_source: VoiSource
    window: tuple[float, float] | None = Field(default=None, description="(center, width) applied")
    warnings: list[str] = Field(default_factory=list)

    @property
    def modality(self) -> str:
        return self.metadata.modality

    @property
    def shape(self) -> tuple[int, int, int]:
        frames, rows, cols = self.pixels.shape
        return frames, rows, cols

    @property
    def is_volume(self) -> bool:
        return self.pixels.shape[0] > 1

    def frame(self, index: int | None = None) -> np.ndarray:
        """One 2-D frame in [0, 1]; the middle one by default (the representative slice)."""
        i = self.pixels.shape[0] // 2 if index is None else index
        return self.pixels[i]

    def summary(self) -> dict[str, object]:
        """JSON-safe description: what the UI, logs and traces may show."""
        return self.model_dump(mode="json")
