"""Measurement geometry and units on hand-built masks (exact expected values), plus the metric helpers."""

from __future__ import annotations

import numpy as np
import pytest

from tools.segmenter.measure import cardiothoracic_ratio, measure, rotation_index, thoracic_width
from tools.segmenter.metrics import dice, hausdorff


def _rect(shape: tuple[int, int], y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    m = np.zeros(shape, dtype=bool)
    m[y0:y1, x0:x1] = True
    return m


def _chest(shape: tuple[int, int] = (200, 200)) -> dict[str, np.ndarray]:
    # patient's right lung on the image left; thoracic width 20..180 = 160 px, heart 70..140 = 70 px
    return {
        "right_lung": _rect(shape, 30, 170, 20, 90),
        "left_lung": _rect(shape, 40, 160, 110, 180),
        "heart": _rect(shape, 100, 160, 70, 140),
        "right_clavicle": _rect(shape, 25, 35, 40, 95),
        "left_clavicle": _rect(shape, 25, 35, 105, 160),
    }


def _by_name(result, name: str, structure: str | None = None):
    return next(m for m in result.measurements if m.name == name and m.structure == structure)


def test_ctr_geometry() -> None:
    masks = _chest()
    assert thoracic_width(masks["right_lung"], masks["left_lung"]) == 160
    assert cardiothoracic_ratio(masks) == pytest.approx(70 / 160)
    assert rotation_index(masks) == pytest.approx(0.0)


def test_units_px_without_spacing() -> None:
    r = measure(_chest(), None, "PA")
    assert _by_name(r, "lung_area", "right_lung").unit == "px2"
    assert _by_name(r, "lung_area", "right_lung").value == 140 * 70
    assert _by_name(r, "heart_width", "heart").unit == "px"
    assert _by_name(r, "heart_width", "heart").value == 70
    assert not any(m.unit in {"mm", "cm2"} for m in r.measurements)


def test_units_mm_with_spacing() -> None:
    r = measure(_chest(), (0.5, 0.25), "PA")
    assert _by_name(r, "lung_area", "left_lung").unit == "cm2"
    assert _by_name(r, "lung_area", "left_lung").value == pytest.approx(120 * 70 * 0.5 * 0.25 / 100, abs=0.01)
    assert _by_name(r, "heart_width", "heart").value == pytest.approx(70 * 0.25)  # horizontal: column spacing
    assert _by_name(r, "heart_width", "heart").unit == "mm"
    assert _by_name(r, "lung_area_ratio_right_left").value == pytest.approx(140 / 120, abs=1e-3)
    assert _by_name(r, "cardiothoracic_ratio").value == pytest.approx(70 / 160, abs=1e-4)
    assert not r.warnings


def test_ap_view_note_and_unknown_view() -> None:
    ap = _by_name(measure(_chest(), None, "AP"), "cardiothoracic_ratio")
    assert "overestimated" in (ap.note or "")
    unknown = _by_name(measure(_chest(), None, None), "cardiothoracic_ratio")
    assert "unknown" in (unknown.note or "")


def test_quality_flags() -> None:
    masks = _chest()
    masks["left_lung"] = _rect((200, 200), 40, 160, 110, 200)  # runs off the right edge
    r = measure(masks, None, "PA")
    assert any("left lung field cut off" in w for w in r.warnings)
    masks["right_lung"] = np.zeros((200, 200), dtype=bool)
    r = measure(masks, None, "PA", confidence={"heart": 0.5, "left_lung": 0.95})
    assert any("right lung field missing" in w for w in r.warnings)
    assert any("not computable" in w for w in r.warnings)
    assert any("low mask confidence for heart" in w for w in r.warnings)
    assert not any("low mask confidence for left lung" in w for w in r.warnings)


def test_rotation_flag_sign() -> None:
    masks = _chest()
    masks["left_clavicle"] = _rect((200, 200), 25, 35, 140, 175)  # left medial end 40 px from the midline
    r = measure(masks, None, "PA")
    assert r.rotation_index == pytest.approx((5 - 40) / 160)
    assert any("rotation suspected" in w and "left medial end farther" in w for w in r.warnings)


def test_metrics() -> None:
    a = _rect((50, 50), 10, 20, 10, 20)
    b = _rect((50, 50), 10, 20, 15, 25)
    assert dice(a, a) == 1.0
    assert dice(a, b) == pytest.approx(2 * 50 / 200)
    hd, hd95 = hausdorff(a, b, spacing_mm=0.5)
    assert hd == pytest.approx(5 * 0.5)
    assert hd95 <= hd
