"""Overlay PNG: the grey image with each candidate's box, numbered; operating-point positives in red, others amber."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from tools.result import Finding, encode_png

POSITIVE = (255, 40, 40)
BELOW_THRESHOLD = (255, 190, 0)


def overlay_png_b64(image: np.ndarray, findings: list[Finding]) -> str:
    """image: 2-D float in [0, 1]. Returns base64 PNG (RGB)."""
    rgb = Image.fromarray((np.clip(image, 0, 1) * 255).astype(np.uint8)).convert("RGB")
    draw = ImageDraw.Draw(rgb)
    width = max(1, min(image.shape) // 256)
    for i, f in enumerate(findings):
        if f.box is None:
            continue
        colour = POSITIVE if f.positive else BELOW_THRESHOLD
        draw.rectangle((f.box.x0, f.box.y0, f.box.x1, f.box.y1), outline=colour, width=width)
        draw.text((f.box.x1 + 2, f.box.y0), str(i + 1), fill=colour)
    return encode_png(np.asarray(rgb))
