"""Overlap and surface-distance metrics for binary masks (evaluation and tests)."""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def dice(pred: np.ndarray, ref: np.ndarray) -> float:
    total = int(pred.sum()) + int(ref.sum())
    return 1.0 if total == 0 else 2.0 * int((pred & ref).sum()) / total


def _boundary(mask: np.ndarray) -> np.ndarray:
    return mask & ~ndimage.binary_erosion(mask)


def hausdorff(pred: np.ndarray, ref: np.ndarray, spacing_mm: float = 1.0) -> tuple[float, float]:
    """(Hausdorff, 95th-percentile Hausdorff) between mask outlines, in mm (inf when exactly one is empty)."""
    if not pred.any() and not ref.any():
        return 0.0, 0.0
    if not pred.any() or not ref.any():
        return float("inf"), float("inf")
    bp, br = _boundary(pred), _boundary(ref)
    d_pr = ndimage.distance_transform_edt(~br)[bp]
    d_rp = ndimage.distance_transform_edt(~bp)[br]
    both = np.concatenate([d_pr, d_rp])
    return float(both.max() * spacing_mm), float(np.percentile(both, 95) * spacing_mm)
