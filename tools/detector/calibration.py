"""Platt scaling of the detector's raw peak score into the probability that a candidate is a true nodule."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.linear_model import LogisticRegression

EPS = 1e-6


def score_logit(score: np.ndarray | float) -> np.ndarray:
    s = np.clip(np.asarray(score, dtype=float), EPS, 1 - EPS)
    return np.log(s / (1 - s))


@dataclass(frozen=True)
class Calibration:
    """p = sigmoid(a * logit(score) + b)."""

    a: float = 1.0
    b: float = 0.0

    def __call__(self, score: float) -> float:
        return float(self.many(np.asarray([score]))[0])

    def many(self, scores: np.ndarray) -> np.ndarray:
        return 1 / (1 + np.exp(-(self.a * score_logit(scores) + self.b)))


def fit_platt(scores: np.ndarray, is_hit: np.ndarray) -> Calibration:
    """Fit on candidates labelled hit / false positive (out-of-fold candidates, never the model's training images)."""
    if len(set(is_hit.tolist())) < 2:
        raise ValueError("Platt scaling needs both hits and false positives among the candidates")
    lr = LogisticRegression(C=1e4, max_iter=1000).fit(score_logit(scores)[:, None], is_hit.astype(int))
    return Calibration(a=float(lr.coef_[0, 0]), b=float(lr.intercept_[0]))
