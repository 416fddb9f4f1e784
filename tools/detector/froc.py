"""Free-response ROC: match candidates to reference nodules, count hits and false positives per image.

A candidate hits a nodule when its centre lies inside the nodule's reference radius (JSRT convention). Several
candidates on one nodule count it once and are not false positives; every other candidate is a false positive.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pydantic import BaseModel


class Nodule(BaseModel):
    x: float
    y: float
    radius: float
    subtlety: int | None = None


class ScoredCandidate(BaseModel):
    x: float
    y: float
    score: float


class ImageCandidates(BaseModel):
    """One image's reference nodules (empty for a negative image) and its detector candidates."""

    name: str
    fold: int | None = None
    nodules: list[Nodule]
    candidates: list[ScoredCandidate]


def match(image: ImageCandidates) -> list[int | None]:
    """For each candidate, the index of the nodule it hits (the nearest one inside its radius) or None."""
    hits: list[int | None] = []
    for c in image.candidates:
        best, best_d = None, np.inf
        for i, n in enumerate(image.nodules):
            d = float(np.hypot(c.x - n.x, c.y - n.y))
            if d <= n.radius and d < best_d:
                best, best_d = i, d
        hits.append(best)
    return hits


class FrocCurve(BaseModel):
    thresholds: list[float]
    sensitivity: list[float]
    fp_per_image: list[float]
    n_images: int
    n_nodules: int

    def sensitivity_at(self, fp_rate: float) -> float:
        """Highest sensitivity reached with at most ``fp_rate`` false positives per image."""
        ok = [s for s, f in zip(self.sensitivity, self.fp_per_image, strict=True) if f <= fp_rate + 1e-12]
        return max(ok, default=0.0)

    def sensitivities_at(self, fp_rates: Sequence[float]) -> dict[str, float]:
        """{"<FP rate>": sensitivity rounded to 4 places}: the operating points the scripts report."""
        return {f"{fp:g}": round(self.sensitivity_at(fp), 4) for fp in fp_rates}

    def threshold_at(self, fp_rate: float) -> float:
        """The lowest score threshold that keeps false positives per image at or under ``fp_rate``."""
        ok = [t for t, f in zip(self.thresholds, self.fp_per_image, strict=True) if f <= fp_rate + 1e-12]
        return min(ok, default=float("inf"))


def froc(images: Sequence[ImageCandidates], subtlety: int | None = None) -> FrocCurve:
    """FROC over all images; ``subtlety`` restricts the counted nodules (false positives still count on every
    image, so per-subtlety curves share the x axis with the overall one)."""
    events: list[tuple[float, int, int]] = []  # (score, image index, nodule index or -1 for a false positive)
    n_nodules = 0
    for k, image in enumerate(images):
        counted = {i for i, n in enumerate(image.nodules) if subtlety is None or n.subtlety == subtlety}
        n_nodules += len(counted)
        for c, hit in zip(image.candidates, match(image), strict=True):
            if hit is None:
                events.append((c.score, k, -1))
            elif hit in counted:
                events.append((c.score, k, hit))
    events.sort(key=lambda e: -e[0])
    found: set[tuple[int, int]] = set()
    fps = 0
    thresholds, sens, fppi = [], [], []
    for i, (score, k, hit) in enumerate(events):
        if hit < 0:
            fps += 1
        else:
            found.add((k, hit))
        if i + 1 == len(events) or events[i + 1][0] < score:  # record once per distinct score
            thresholds.append(score)
            sens.append(len(found) / max(n_nodules, 1))
            fppi.append(fps / max(len(images), 1))
    return FrocCurve(thresholds=thresholds, sensitivity=sens, fp_per_image=fppi, n_images=len(images),
                     n_nodules=n_nodules)


def labelled_scores(images: Sequence[ImageCandidates]) -> tuple[np.ndarray, np.ndarray]:
    """(scores, is-hit labels) of every candidate: the data the probability calibration is fitted on."""
    scores, labels = [], []
    for image in images:
        for c, hit in zip(image.candidates, match(image), strict=True):
            scores.append(c.score)
            labels.append(hit is not None)
    return np.asarray(scores, dtype=float), np.asarray(labels, dtype=bool)


def paired_difference(baseline: Sequence[ImageCandidates], candidate: Sequence[ImageCandidates],
                      fp_rates: Sequence[float], rng: np.random.Generator,
                      resamples: int = 2000) -> dict[str, dict[str, float | list[float]]]:
    """Sensitivity of two runs on the same images at each FP rate, and a paired image-bootstrap 95 % interval of
    candidate - baseline (each resample scores the same images in both runs: they share the hard and easy ones)."""
    a = {im.name: im for im in baseline}
    b = {im.name: im for im in candidate}
    if a.keys() != b.keys():
        raise ValueError("the two runs must score the same images")
    names = sorted(a)

    def sens(images: list[ImageCandidates]) -> np.ndarray:
        curve = froc(images)
        return np.array([curve.sensitivity_at(fp) for fp in fp_rates])

    diffs = []
    for _ in range(resamples):
        pick = [names[i] for i in rng.integers(len(names), size=len(names))]
        diffs.append(sens([b[n] for n in pick]) - sens([a[n] for n in pick]))
    d = np.asarray(diffs)
    sa, sb = sens([a[n] for n in names]), sens([b[n] for n in names])
    return {f"{fp:g}": {"baseline": round(float(sa[k]), 4), "candidate": round(float(sb[k]), 4),
                        "difference": round(float(sb[k] - sa[k]), 4),
                        "difference_ci95": [round(float(np.percentile(d[:, k], 2.5)), 4),
                                            round(float(np.percentile(d[:, k], 97.5)), 4)]}
            for k, fp in enumerate(fp_rates)}
