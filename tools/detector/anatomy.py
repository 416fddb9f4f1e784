"""Side and zone of a candidate from the segmenter's lung masks (upper/middle/lower thirds of that lung's height)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from scipy import ndimage

log = logging.getLogger(__name__)
ZONES = ("upper", "middle", "lower")
PRIOR_MARGIN = 0.02  # of the image width: how far outside the lungs and heart a candidate is still kept


@dataclass(frozen=True)
class LungMap:
    right: np.ndarray  # bool masks at the frame's resolution; the patient's right lung is on the image's left (PA)
    left: np.ndarray
    heart: np.ndarray

    @classmethod
    def for_frames(cls, frames: list[np.ndarray]) -> list[LungMap | None]:
        """Segment the lungs with the segmenter tool's model; None per frame when its weights are missing."""
        from tools.segmenter.predict import load_model, predict

        try:
            loaded = load_model()
        except FileNotFoundError as exc:
            log.warning("no lung masks for the detector: %s", exc)
            return [None] * len(frames)
        return [cls(right=p.masks["right_lung"], left=p.masks["left_lung"], heart=p.masks["heart"])
                for p in predict(frames, loaded)]

    @cached_property
    def prior(self) -> np.ndarray:
        """Where a nodule can be: lungs and heart (nodules hide behind it), dilated by PRIOR_MARGIN."""
        margin = max(1, round(PRIOR_MARGIN * self.right.shape[1]))
        return ndimage.binary_dilation(self.right | self.left | self.heart, iterations=margin)

    def allows(self, x: float, y: float) -> bool:
        r = int(np.clip(round(y), 0, self.prior.shape[0] - 1))
        c = int(np.clip(round(x), 0, self.prior.shape[1] - 1))
        return bool(self.prior[r, c])

    @cached_property
    def _points(self) -> dict[str, np.ndarray]:
        """(row, col) of every pixel of each lung, found once per image rather than once per candidate."""
        return {"right": np.argwhere(self.right), "left": np.argwhere(self.left)}

    def locate(self, x: float, y: float) -> dict[str, str | bool]:
        """{"side", "zone", "inside_lung_mask"} of the point (x right, y down, frame pixels)."""
        r, c = round(y), round(x)
        masks = {"right": self.right, "left": self.left}
        distances = {side: _distance(mask, self._points[side], r, c) for side, mask in masks.items()}
        side = min(distances, key=distances.__getitem__)
        if not np.isfinite(distances[side]):
            return {"side": "unknown", "zone": "unknown", "inside_lung_mask": False}
        rows = self._points[side][:, 0]
        top, bottom = int(rows.min()), int(rows.max())
        third = int(np.clip((y - top) / max(bottom - top, 1) * 3, 0, 2))
        return {"side": side, "zone": ZONES[third], "inside_lung_mask": distances[side] == 0.0}


def _distance(mask: np.ndarray, points: np.ndarray, r: int, c: int) -> float:
    """Pixels from (r, c) to the nearest of the mask's ``points``: 0 inside, inf for an empty mask."""
    if 0 <= r < mask.shape[0] and 0 <= c < mask.shape[1] and mask[r, c]:
        return 0.0
    if not len(points):
        return float("inf")
    return float(np.hypot(points[:, 0] - r, points[:, 1] - c).min())
