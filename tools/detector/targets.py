"""Training samples: augmented crops of the cached images with CenterNet heatmap and size targets."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from tools.detector.data import SOURCE_SIZE, Case
from tools.detector.model import STRIDE
from tools.detector.paste import lift_nodule, paste

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
    otherwise; random scale, horizontal flip and gamma; with ``paste_probability``, one nodule of another image in the
    set pasted at a random lung point of the crop (tools/detector/paste.py). Returns (x, heatmap, log_size,
    size_weight) tensors."""

    def __init__(self, images: np.ndarray, lungs: np.ndarray, cases: list[Case], crop: int, seed: int,
                 paste_probability: float = 0.0) -> None:
        self.images, self.lungs, self.cases, self.crop = images, lungs, cases, crop
        self.size = images.shape[-1]
        self.scale = self.size / SOURCE_SIZE  # cached px per source px
        self.rng = np.random.default_rng(seed)
        self.lung_points = [np.argwhere(m) for m in lungs]
        self.paste_probability = paste_probability
        self.donors = {i: lift_nodule(images[i], c.x * self.scale, c.y * self.scale, c.radius_px * self.scale)
                       for i, c in enumerate(cases) if c.nodule and paste_probability > 0}  # type: ignore[operator]

    def _window(self, index: int) -> tuple[int, int, int]:
        """(x0, y0, side) of the crop in cached px."""
        rng, case, s = self.rng, self.cases[index], self.size
        window = min(round(self.crop * rng.uniform(0.85, 1.2)), s)
        if case.nodule and rng.random() < 0.7:
            cx, cy = case.x * self.scale, case.y * self.scale  # type: ignore[operator]
            ox = cx - window * rng.uniform(0.15, 0.85)
            oy = cy - window * rng.uniform(0.15, 0.85)
        else:
            pts = self.lung_points[index]
            py, px = pts[rng.integers(len(pts))] if len(pts) else (s // 2, s // 2)
            ox, oy = px - window / 2, py - window / 2
        return int(np.clip(round(ox), 0, s - window)), int(np.clip(round(oy), 0, s - window)), window

    def _paste(self, index: int, pixels: np.ndarray, x0: int, y0: int) -> tuple[np.ndarray, tuple | None]:
        """Maybe paste another image's nodule at a lung point inside the window; (pixels, (x, y, radius) or None)."""
        donors = [i for i in self.donors if i != index]
        if not donors or self.rng.random() >= self.paste_probability:
            return pixels, None
        side = pixels.shape[0]
        pts = self.lung_points[index]
        inside = pts[(pts[:, 0] >= y0) & (pts[:, 0] < y0 + side) & (pts[:, 1] >= x0) & (pts[:, 1] < x0 + side)]
        if not len(inside):
            return pixels, None
        py, px = inside[self.rng.integers(len(inside))]
        patch = self.donors[donors[self.rng.integers(len(donors))]]
        return paste(pixels, patch, int(px - x0), int(py - y0), self.rng), (float(px), float(py), patch.radius)

    def sample(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        rng, case = self.rng, self.cases[index]
        x0, y0, window = self._window(index)
        pixels = self.images[index, y0 : y0 + window, x0 : x0 + window].astype(np.float32) / 255
        nodules = []  # (x, y, radius) in cached px
        if case.nodule:
            nodules.append((case.x * self.scale, case.y * self.scale, case.radius_px * self.scale))  # type: ignore[operator]
        pixels, pasted = self._paste(index, pixels, x0, y0)
        if pasted:
            nodules.append(pasted)
        img = F.interpolate(torch.from_numpy(pixels)[None, None], size=(self.crop, self.crop), mode="bilinear",
                            align_corners=False)[0, 0]
        img = img.clamp(0, 1) ** float(np.exp(rng.uniform(-0.35, 0.35)))
        flip = rng.random() < 0.5
        heat, log_size, weight = self._targets(nodules, x0, y0, self.crop / window, flip)
        arr = img.numpy()
        if flip:
            arr = arr[:, ::-1]
        return np.ascontiguousarray(arr), heat, log_size, weight

    def _targets(self, nodules: list[tuple[float, float, float]], x0: int, y0: int, k: float,
                 flip: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Heatmap (max over the nodules' Gaussians), log-diameter and its weight at the output resolution; ``k`` is
        crop px per cached px."""
        out = self.crop // STRIDE
        heat = np.zeros((out, out), np.float32)
        log_size = np.zeros((out, out), np.float32)
        weight = np.zeros((out, out), np.float32)
        for x, y, radius in nodules:
            cx, cy = (x - x0) * k, (y - y0) * k
            if flip:
                cx = self.crop - cx
            diameter = 2 * radius * k  # in crop px
            r_cells = diameter / 2 / STRIDE
            if not (-r_cells <= cx / STRIDE < out + r_cells and -r_cells <= cy / STRIDE < out + r_cells):
                continue
            g = gaussian_target((out, out), cx / STRIDE - 0.5, cy / STRIDE - 0.5, r_cells)
            heat = np.maximum(heat, g)
            core = g > 0.5
            weight[core] = 1.0
            log_size[core] = np.log(diameter)
        return heat, log_size, weight

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
