"""Overlay PNG: the grey image with each structure tinted and outlined."""

from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image
from scipy import ndimage

COLOURS: dict[str, tuple[int, int, int]] = {
    "right_lung": (0, 160, 255),
    "left_lung": (0, 220, 120),
    "heart": (255, 60, 60),
    "right_clavicle": (255, 200, 0),
    "left_clavicle": (200, 0, 255),
}
ALPHA = 0.25


def overlay_png_b64(image: np.ndarray, masks: dict[str, np.ndarray]) -> str:
    """image: 2-D float in [0, 1]; masks: bool, same shape. Returns base64 PNG (RGB)."""
    rgb = np.repeat((np.clip(image, 0, 1) * 255).astype(np.float32)[..., None], 3, axis=2)
    for name, mask in masks.items():
        colour = np.array(COLOURS.get(name, (255, 255, 255)), dtype=np.float32)
        rgb[mask] = (1 - ALPHA) * rgb[mask] + ALPHA * colour
        edge = mask & ~ndimage.binary_erosion(mask)
        rgb[edge] = colour
    buffer = io.BytesIO()
    Image.fromarray(rgb.astype(np.uint8)).save(buffer, format="PNG", compress_level=1)  # speed over size
    return base64.b64encode(buffer.getvalue()).decode("ascii")
