"""Training samples: augmented crops of the cached images with CenterNet heatmap and size targets."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from tools.detector.data import SOURCE_SIZE, Case
from tools.detector.model import STRIDE

MIN_SIGMA = 0.8  # output cells


def gaussian_target(shape: tuple[int, int], cx: float, cy: float, radius: float) -> np.ndarray:
    """Heatmap (rows, cols) with a Gaussian peak of 1 at (cx, cy) in output cells; sigma from the nodule radius."""
    sigma = max(radius / 2.0, MIN_SIGMA)
    ys, xs = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float32)
    g = np.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * sigma**2))
    iy, ix = round(cy), round(cx)
    if 0 <= iy < shape[0] and 0 <= ix < shape[1]:
        g[iy, ix] = 1.0
    return g


class CropSampler:
    """Random crops of ``crop`` px from (N,S,S) cached images: nodule-centred crops for positives, lung-centred crops
    otherwise; random scale, horizontal flip and gamma. Returns (x, heatmap, log_size, size_weight) tensors."""

    def __init__(self, images: np.ndarray, lungs: np.ndarray, cases: list[Case], crop: int, seed: int) -> None:
        self.images, self.lungs, self.cases, self.crop = images, lungs, cases, crop
        self.size = images.shape[-1]
        self.rng = np.random.default_rng(seed)
        self.lung_points = [np.argwhere(m) for m in lungs]

    def sample(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        rng, case, s = self.rng, self.cases[index], self.size
        scale = s / SOURCE_SIZE
        window = round(self.crop * rng.uniform(0.85, 1.2))
        window = min(window, s)
        if case.nodule and rng.random() < 0.7:
            cx, cy = case.x * scale, case.y * scale  # type: ignore[operator]
            ox = cx - window * rng.uniform(0.15, 0.85)
            oy = cy - window * rng.uniform(0.15, 0.85)
        else:
            pts = self.lung_points[index]
            py, px = pts[rng.integers(len(pts))] if len(pts) else (s // 2, s // 2)
            ox, oy = px - window / 2, py - window / 2
        x0 = int(np.clip(round(ox), 0, s - window))
        y0 = int(np.clip(round(oy), 0, s - window))
        img = torch.from_numpy(self.images[index, y0 : y0 + window, x0 : x0 + window].astype(np.float32) / 255)
        img = F.interpolate(img[None, None], size=(self.crop, self.crop), mode="bilinear", align_corners=False)[0, 0]
        img = img.clamp(0, 1) ** float(np.exp(rng.uniform(-0.35, 0.35)))
        out = self.crop // STRIDE
        heat = np.zeros((out, out), np.float32)
        log_size = np.zeros((out, out), np.float32)
        weight = np.zeros((out, out), np.float32)
        flip = rng.random() < 0.5
        if case.nodule:
            k = self.crop / window  # crop px per cached px
            cx = (case.x * scale - x0) * k  # type: ignore[operator]
            cy = (case.y * scale - y0) * k  # type: ignore[operator]
            if flip:
                cx = self.crop - cx
            diameter = 2 * case.radius_px * scale * k  # in crop px
            r_cells = diameter / 2 / STRIDE
            if -r_cells <= cx / STRIDE < out + r_cells and -r_cells <= cy / STRIDE < out + r_cells:
                heat = gaussian_target((out, out), cx / STRIDE - 0.5, cy / STRIDE - 0.5, r_cells)
                weight = (heat > 0.5).astype(np.float32)
                log_size[:] = np.log(diameter)
        arr = img.numpy()
        if flip:
            arr = arr[:, ::-1]
        return np.ascontiguousarray(arr), heat, log_size, weight

    def batch(self, indices: list[int]) -> tuple[torch.Tensor, ...]:
        parts = [self.sample(i) for i in indices]
        return tuple(torch.from_numpy(np.stack([p[j] for p in parts]))[:, None] for j in range(4))


def focal_loss(logits: torch.Tensor, target: torch.Tensor, alpha: float = 2.0, beta: float = 4.0) -> torch.Tensor:
    """CenterNet's penalty-reduced focal loss, normalised by the number of peaks (at least 1)."""
    p = torch.sigmoid(logits).clamp(1e-4, 1 - 1e-4)
    pos = target.eq(1).float()
    pos_loss = -torch.log(p) * (1 - p) ** alpha * pos
    neg_loss = -torch.log(1 - p) * p**alpha * (1 - target) ** beta * (1 - pos)
    return (pos_loss.sum() + neg_loss.sum()) / pos.sum().clamp_min(1.0)
