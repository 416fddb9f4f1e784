"""Calibration helpers: ECE and temperature scaling on synthetic logits with a known answer."""

from __future__ import annotations

import numpy as np

from tools.classifier.calibration import ece, fit_temperature, sigmoid


def test_ece_zero_for_calibrated_and_large_for_overconfident() -> None:
    rng = np.random.default_rng(0)
    p = rng.uniform(0, 1, 20_000)
    y = (rng.uniform(0, 1, p.size) < p).astype(float)
    assert ece(p, y) < 0.03
    assert ece(np.where(p > 0.5, 0.99, 0.01), y) > 0.2


def test_temperature_recovers_overconfidence() -> None:
    rng = np.random.default_rng(0)
    z = rng.normal(0, 2, 10_000)
    y = (rng.uniform(0, 1, z.size) < sigmoid(z)).astype(float)
    t = fit_temperature(3.0 * z, y)  # logits three times too confident
    assert abs(t - 3.0) < 0.3
    assert ece(sigmoid(3.0 * z / t), y) < ece(sigmoid(3.0 * z), y)
