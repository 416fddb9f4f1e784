"""Fusing the candidates of several detector models into one ranked list.

Candidates of different members that lie within ``radius`` of each other are one finding. Clusters are grown greedily
from the highest score down; each member contributes at most its best candidate to a cluster, a member that found
nothing there contributes 0, and the fused score is the mean over members. So a finding that every member sees keeps
its score, and one that a single member sees is discounted: that is where the ensemble removes false positives.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, TypeVar

from tools.detector.data import SOURCE_SIZE
from tools.detector.froc import ImageCandidates

# Cluster radius as a share of the frame's width: 12 px on the 512 px JSRT frames, about the median nodule radius.
FUSION_RADIUS_FRACTION = 12 / 512


class Scored(Protocol):
    @property
    def x(self) -> float: ...
    @property
    def y(self) -> float: ...
    @property
    def score(self) -> float: ...


T = TypeVar("T", bound=Scored)


def fuse(members: Sequence[Sequence[T]], radius: float,
         weights: Sequence[float] | None = None) -> list[tuple[T, float]]:
    """members: each model's candidates for one frame -> (the highest-scoring candidate of each cluster, the fused
    score), highest fused score first. A member's further candidates inside a cluster are absorbed, so with one
    member this is greedy non-maximum suppression at ``radius``. ``weights`` (one per member, default equal) make
    the fused score a weighted mean."""
    weights = [1.0] * len(members) if weights is None else list(weights)
    if len(weights) != len(members) or min(weights, default=1.0) < 0 or sum(weights) <= 0:
        raise ValueError(f"need one non-negative weight per member, not all zero; got {weights}")
    pooled = sorted(((c, m) for m, found in enumerate(members) for c in found), key=lambda cm: -cm[0].score)
    clusters: list[tuple[T, dict[int, float]]] = []
    for cand, member in pooled:
        for seed, scores in clusters:
            if (seed.x - cand.x) ** 2 + (seed.y - cand.y) ** 2 <= radius**2:
                scores.setdefault(member, cand.score)
                break
        else:
            clusters.append((cand, {member: cand.score}))
    total = sum(weights)
    fused = [(seed, sum(weights[m] * s for m, s in scores.items()) / total) for seed, scores in clusters]
    return sorted(fused, key=lambda sf: -sf[1])


def fuse_cv_runs(runs: Sequence[Sequence[ImageCandidates]], max_candidates: int,
                 weights: Sequence[float] | None = None) -> list[ImageCandidates]:
    """The out-of-fold candidates of several cross-validation runs (one per member, the same images and folds) fused
    per image as the tool fuses its networks at inference (the JSRT frames are SOURCE_SIZE pixels wide)."""
    by_name = [{im.name: im for im in run} for run in runs]
    first = runs[0]
    for other in by_name[1:]:
        mismatched = [im.name for im in first if im.name not in other or other[im.name].fold != im.fold]
        if mismatched or len(other) != len(first):
            raise ValueError(f"members were cross-validated on different images or folds (e.g. {mismatched[:3]})")
    fused = []
    for image in first:
        pairs = fuse([members[image.name].candidates for members in by_name], FUSION_RADIUS_FRACTION * SOURCE_SIZE,
                     weights)
        fused.append(image.model_copy(update={"candidates": [c.model_copy(update={"score": score})
                                                             for c, score in pairs[:max_candidates]]}))
    return fused
