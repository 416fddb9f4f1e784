"""Feature-distance out-of-distribution score: a probabilistic-PCA Mahalanobis distance on the classifier's
pooled penultimate features, fitted on training images; the threshold is a validation percentile."""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict


class OodModel(BaseModel):
    model_config = ConfigDict(arbitrary_types_allowed=True)

    mean: np.ndarray
    components: np.ndarray  # (k, d) principal axes
    variances: np.ndarray  # (k,) variance along each axis
    residual_variance: float  # mean per-dimension variance off the subspace
    threshold: float = float("inf")

    def score(self, features: np.ndarray) -> np.ndarray:
        """Per-dimension-normalised squared distance (about 1 in distribution, larger outside)."""
        centred = np.asarray(features, dtype=np.float64) - self.mean
        proj = centred @ self.components.T
        inside = (proj**2 / self.variances).sum(axis=1)
        residual = (centred**2).sum(axis=1) - (proj**2).sum(axis=1)
        return (inside + np.maximum(residual, 0.0) / self.residual_variance) / centred.shape[1]

    def to_dict(self) -> dict[str, object]:
        return {"mean": self.mean.astype(np.float32), "components": self.components.astype(np.float32),
                "variances": self.variances.astype(np.float32), "residual_variance": self.residual_variance,
                "threshold": self.threshold}

    @classmethod
    def from_dict(cls, d: dict[str, object]) -> OodModel:
        return cls(mean=np.asarray(d["mean"], np.float64), components=np.asarray(d["components"], np.float64),
                   variances=np.asarray(d["variances"], np.float64),
                   residual_variance=float(d["residual_variance"]), threshold=float(d["threshold"]))


def fit_ood(features: np.ndarray, k: int = 64) -> OodModel:
    x = np.asarray(features, dtype=np.float64)
    mean = x.mean(axis=0)
    _, s, vt = np.linalg.svd(x - mean, full_matrices=False)
    var = s**2 / (len(x) - 1)
    residual = float(var[k:].sum() / max(x.shape[1] - k, 1))
    return OodModel(mean=mean, components=vt[:k], variances=np.maximum(var[:k], 1e-8),
                    residual_variance=max(residual, 1e-8))
