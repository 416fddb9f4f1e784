"""Window/level presets for viewing a study: re-windows DICOM modality values, never the raw file."""

from __future__ import annotations

import numpy as np
from PIL import Image

from tools.study import Study, preview_image
from tools.study.dicom_pixels import apply_window

AS_STORED = "As stored (file's VOI)"

# (center, width) in modality units; CT presets are in Hounsfield units.
CT_PRESETS: dict[str, tuple[float, float]] = {
    "Lung (-600/1500)": (-600.0, 1500.0),
    "Mediastinum (40/400)": (40.0, 400.0),
    "Bone (400/1800)": (400.0, 1800.0),
    "Abdomen (60/400)": (60.0, 400.0),
}
PROJECTION_PRESETS = ("Full range", "Soft contrast (5-95th percentile)")


def presets_for(study: Study) -> list[str]:
    if study.modality_values is None:
        return [AS_STORED]
    if study.modality == "CT":
        return [AS_STORED, *CT_PRESETS]
    return [AS_STORED, *PROJECTION_PRESETS]


def render(study: Study, preset: str = AS_STORED, frame: int | None = None, max_side: int = 1024) -> Image.Image:
    """The chosen frame under the chosen window, as an 8-bit image for display."""
    if preset == AS_STORED or study.modality_values is None:
        return preview_image(study, frame, max_side=max_side)
    index = study.pixels.shape[0] // 2 if frame is None else frame
    values = study.modality_values[index]
    if preset in CT_PRESETS:
        center, width = CT_PRESETS[preset]
    else:
        low, high = (values.min(), values.max()) if preset == "Full range" else np.percentile(values, (5, 95))
        center, width = (float(low) + float(high)) / 2.0, max(float(high) - float(low), 1.0)
    shown = np.clip(apply_window(values, center, width), 0.0, 1.0)
    if study.metadata.photometric == "MONOCHROME1":
        shown = 1.0 - shown
    image = Image.fromarray(np.round(shown * 255).astype(np.uint8), mode="L")
    if max(image.size) > max_side:
        image.thumbnail((max_side, max_side))
    return image
