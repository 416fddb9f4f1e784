"""Copy-paste augmentation: a real nodule lifted off its own background and added at another lung location.

JSRT gives about 90 nodules per training fold. Pasting them (flipped, rotated, fainter) elsewhere in the lungs of
other training images shows the model the same nodules against new ribs, vessels and densities. Only nodules of the
images a sampler trains on are lifted, so cross-validation stays clean.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

CORE = 1.2  # the nodule's disc, in radii: masked out when the background under it is estimated
TAPER = 1.6  # the residual fades to zero between 1 and TAPER radii, so no patch edge is pasted


@dataclass(frozen=True)
class NodulePatch:
    residual: np.ndarray  # float32 (2h+1, 2h+1) in image intensity units [0, 1]: nodule minus local background
    radius: float  # px of the image it was lifted from


def lift_nodule(image: np.ndarray, cx: float, cy: float, radius: float) -> NodulePatch:
    """The nodule at (cx, cy) minus a background estimated around it (a Gaussian-weighted average of the pixels
    outside its disc, i.e. normalised convolution), tapered to zero outside the nodule."""
    img = image.astype(np.float32) / (255.0 if image.dtype == np.uint8 else 1.0)
    half = math.ceil(radius * TAPER) + 1
    margin = 2 * half
    padded = np.pad(img, margin, mode="reflect")
    r0, c0 = round(cy), round(cx)  # padding shifts by margin, so this corner centres the window on the nodule
    window = padded[r0 : r0 + 2 * margin + 1, c0 : c0 + 2 * margin + 1]
    ys, xs = np.mgrid[-margin : margin + 1, -margin : margin + 1].astype(np.float32)
    distance = np.hypot(xs, ys) / max(radius, 1.0)
    outside = (distance > CORE).astype(np.float32)
    sigma = max(radius, 2.0)
    background = ndimage.gaussian_filter(window * outside, sigma) / np.maximum(ndimage.gaussian_filter(outside, sigma),
                                                                               1e-3)
    taper = np.clip((TAPER - distance) / (TAPER - 1.0), 0.0, 1.0)
    taper = 0.5 - 0.5 * np.cos(np.pi * taper)
    residual = ((window - background) * taper)[margin - half : margin + half + 1, margin - half : margin + half + 1]
    return NodulePatch(residual=residual.astype(np.float32), radius=float(radius))


def paste(image: np.ndarray, patch: NodulePatch, cx: int, cy: int, rng: np.random.Generator,
          contrast: tuple[float, float] = (0.6, 1.1)) -> np.ndarray:
    """``image`` (float, [0, 1]) with the patch added, centred at (cx, cy): randomly flipped, turned by a multiple of
    90 degrees and scaled in contrast (fainter nodules are the ones missed). Clipped to [0, 1]; edges cut off."""
    residual = np.rot90(patch.residual, int(rng.integers(4)))
    if rng.random() < 0.5:
        residual = residual[:, ::-1]
    residual = residual * float(rng.uniform(*contrast))
    half = residual.shape[0] // 2
    out = image.copy()
    r0, r1 = max(cy - half, 0), min(cy + half + 1, image.shape[0])
    c0, c1 = max(cx - half, 0), min(cx + half + 1, image.shape[1])
    if r0 >= r1 or c0 >= c1:
        return out
    out[r0:r1, c0:c1] += residual[r0 - (cy - half) : r1 - (cy - half), c0 - (cx - half) : c1 - (cx - half)]
    return np.clip(out, 0.0, 1.0)
