"""The nodule detector with its committed weights on real images; the FROC arithmetic on hand-checked cases.

The JSRT images here were in the final model's training data (its quality is the cross-validated FROC in
tools/cards/detector.md): these tests check the tool's behaviour — localisation, side, units, filtering, refusal,
CLI — not its accuracy.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from agent.cli import app
from tools.detector.calibration import Calibration, fit_platt
from tools.detector.froc import ImageCandidates, Nodule, ScoredCandidate, froc, match, paired_difference
from tools.detector.tool import LABEL
from tools.registry import get_tool
from tools.result import ToolResult
from tools.study import load_study

JSRT_SPACING_MM = 0.7


def _run(path: Path, **options: object) -> ToolResult:
    return get_tool("detector").run([load_study(path)], **options)[0]


@pytest.fixture(scope="module")
def left_upper_nodule(data_dir: Path) -> ToolResult:
    """JPCLN001: a 15 mm nodule in the left upper lobe, centre (408.5, 173.0) in the 512x512 image."""
    return _run(data_dir / "cxr-jsrt-scr" / "images" / "JPCLN001.png")


def test_finds_and_localises_an_obvious_nodule(left_upper_nodule: ToolResult) -> None:
    result = left_upper_nodule
    assert result.status == "ok" and result.weights_sha256 and result.tool == "detector"
    top = result.findings[0]
    assert top.label == LABEL and top.positive and top.calibrated
    assert np.hypot(top.attributes["centre_x"] - 408.5, top.attributes["centre_y"] - 173.0) < 15 / 2 / JSRT_SPACING_MM
    assert top.box is not None and top.box.x0 < 408.5 < top.box.x1 and top.box.y0 < 173.0 < top.box.y1
    # the image's right half is the patient's left (PA): side comes from the segmenter's lung masks
    assert top.attributes["side"] == "left" and top.attributes["zone"] in ("upper", "middle")
    assert 8 < top.attributes["diameter_px"] < 40  # reference 15 mm = 21 px; no spacing in a PNG: px, never mm
    assert "pixel spacing unknown: nodule diameters in px" in result.warnings
    scores = [f.score for f in result.findings]
    assert scores == sorted(scores, reverse=True)
    probabilities = [f.probability for f in result.findings]
    assert probabilities == sorted(probabilities, reverse=True)  # Platt scaling is monotonic
    assert result.overlay_png_b64


def test_min_score_keeps_only_candidates_above_it(data_dir: Path, left_upper_nodule: ToolResult) -> None:
    strict = _run(data_dir / "cxr-jsrt-scr" / "images" / "JPCLN001.png", min_score=0.3)
    assert strict.findings and all(f.score >= 0.3 for f in strict.findings)
    assert len(strict.findings) < len(left_upper_nodule.findings)


def test_diameter_in_mm_when_spacing_is_known(samples: Path) -> None:
    result = _run(samples / "cr-chest-pa.dcm", min_score=0.0)
    assert result.status == "ok"
    assert result.findings and all("diameter_mm" in f.attributes and "diameter_px" not in f.attributes
                                   for f in result.findings)
    assert all(m.unit == "mm" for m in result.measurements)


def test_refuses_what_is_not_a_frontal_chest_radiograph(samples: Path) -> None:
    result = _run(samples / "ct-3slice")
    assert result.status == "refused" and not result.findings
    assert "modality CT" in result.warnings[0]


def test_cli_json_with_min_score(data_dir: Path) -> None:
    path = data_dir / "cxr-jsrt-scr" / "images" / "JPCLN004.png"
    out = CliRunner().invoke(app, ["tool", "detector", str(path), "--json", "--min-score", "0.2"])
    assert out.exit_code == 0, out.output
    row = json.loads(out.output.strip().splitlines()[-1])
    assert row["input"] == "JPCLN004.png" and row["tool"] == "detector" and row["overlay_png_b64"]
    assert row["findings"] and all(f["score"] >= 0.2 for f in row["findings"])
    # reference: right upper lobe nodule at (151.5, 209.0), 14 mm
    assert any(abs(f["attributes"]["centre_x"] - 151.5) < 10 and abs(f["attributes"]["centre_y"] - 209.0) < 10
               and f["attributes"]["side"] == "right" for f in row["findings"])


def test_froc_counts_hits_once_and_false_positives_per_image() -> None:
    images = [
        ImageCandidates(name="a", nodules=[Nodule(x=100, y=100, radius=10)], candidates=[
            ScoredCandidate(x=105, y=100, score=0.9),  # hit
            ScoredCandidate(x=100, y=108, score=0.8),  # same nodule again: neither a hit nor a false positive
            ScoredCandidate(x=300, y=300, score=0.7),  # false positive
        ]),
        ImageCandidates(name="b", nodules=[Nodule(x=50, y=50, radius=5)], candidates=[
            ScoredCandidate(x=56, y=50, score=0.95),  # 6 px away, radius 5: false positive
            ScoredCandidate(x=52, y=50, score=0.4),  # hit
        ]),
        ImageCandidates(name="c", nodules=[], candidates=[ScoredCandidate(x=10, y=10, score=0.6)]),
    ]
    assert match(images[0]) == [0, 0, None] and match(images[1]) == [None, 0]
    curve = froc(images)
    assert curve.n_nodules == 2 and curve.n_images == 3
    assert curve.sensitivity_at(0.0) == 0.0  # the top candidate (0.95) is a false positive
    assert curve.sensitivity_at(1 / 3) == 0.5  # 0.95 FP, 0.9 hit
    assert curve.sensitivity_at(2 / 3) == 0.5  # + 0.8 (same nodule), 0.7 FP
    assert curve.sensitivity_at(1.0) == 1.0  # + 0.6 FP, 0.4 hit: 3 FP / 3 images, both nodules
    assert curve.threshold_at(2 / 3) == 0.7 and curve.threshold_at(1.0) == 0.4


def test_platt_scaling_is_fitted_and_monotonic() -> None:
    rng = np.random.default_rng(0)
    scores = rng.uniform(0.01, 0.99, 2000)
    hits = rng.uniform(size=2000) < scores**2  # true probability score^2: raw scores are over-confident
    cal = fit_platt(scores, hits)
    assert isinstance(cal, Calibration)
    probs = cal.many(np.array([0.1, 0.5, 0.9]))
    assert np.all(np.diff(probs) > 0)
    assert abs(probs[1] - 0.25) < 0.06 and abs(probs[2] - 0.81) < 0.06
    with pytest.raises(ValueError):
        fit_platt(scores, np.zeros_like(hits))


def test_paired_difference_of_two_runs() -> None:
    def run(first_score: float) -> list[ImageCandidates]:
        return [
            ImageCandidates(name="a", nodules=[Nodule(x=100, y=100, radius=10)], candidates=[
                ScoredCandidate(x=100, y=100, score=first_score), ScoredCandidate(x=300, y=300, score=0.5)]),
            ImageCandidates(name="b", nodules=[Nodule(x=50, y=50, radius=5)], candidates=[
                ScoredCandidate(x=50, y=50, score=0.9)]),
            ImageCandidates(name="c", nodules=[], candidates=[ScoredCandidate(x=10, y=10, score=0.2)]),
        ]

    # baseline ranks image a's nodule below its false positive; the candidate run above it
    result = paired_difference(run(0.4), run(0.8), (0.0, 1.0), np.random.default_rng(0), resamples=200)
    assert result["0"]["baseline"] == 0.5 and result["0"]["candidate"] == 1.0 and result["0"]["difference"] == 0.5
    low, high = result["0"]["difference_ci95"]
    assert 0.0 <= low <= 0.5 <= high <= 1.0
    assert result["1"]["difference"] == 0.0  # at 1 FP/image both runs find both nodules
    same = paired_difference(run(0.4), run(0.4), (0.0,), np.random.default_rng(0), resamples=50)
    assert same["0"]["difference_ci95"] == [0.0, 0.0]
    with pytest.raises(ValueError, match="same images"):
        paired_difference(run(0.4), run(0.4)[:2], (0.0,), np.random.default_rng(0))
