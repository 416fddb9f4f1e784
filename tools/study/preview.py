"""Normalised 8-bit PNG previews of a study (the representative frame)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from tools.study.model import Study


def preview_image(study: Study, frame: int | None = None, max_side: int | None = None) -> Image.Image:
    if study.rgb is not None:
        index = study.pixels.shape[0] // 2 if frame is None else frame
        image = Image.fromarray(np.round(study.rgb[index] * 255).astype(np.uint8), mode="RGB")
    else:
        image = Image.fromarray(np.round(study.frame(frame) * 255).astype(np.uint8), mode="L")
    if max_side and max(image.size) > max_side:
        image.thumbnail((max_side, max_side))
    return image


def write_preview(study: Study, path: Path, frame: int | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    preview_image(study, frame).save(path, format="PNG")
    return path
