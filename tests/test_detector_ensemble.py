"""The detector's ensemble: candidate fusion (tools/detector/ensemble.py) and the committed ensemble checkpoint,
whose fused output on a real JSRT image must be exactly the fusion of its networks' own candidates (the fusion the
cross-validation measured and calibrated)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tools.detector.ensemble import FUSION_RADIUS_FRACTION, fuse, fuse_cv_runs
from tools.detector.froc import ImageCandidates, ScoredCandidate
from tools.detector.predict import LoadedModel, load_model, predict


@dataclass(frozen=True)
class Point:
    x: float
    y: float
    score: float


def test_fuse_averages_over_members_and_discounts_what_one_member_alone_sees() -> None:
    first = [Point(100, 100, 0.8), Point(300, 300, 0.6)]
    second = [Point(105, 102, 0.6), Point(400, 50, 0.4)]
    fused = fuse([first, second], radius=12)
    assert [(c.x, c.y) for c, _ in fused] == [(100, 100), (300, 300), (400, 50)]  # the best candidate leads a cluster
    assert [round(s, 6) for _, s in fused] == [0.7, 0.3, 0.2]


def test_fuse_weights_the_members_scores() -> None:
    first = [Point(100, 100, 0.8)]
    second = [Point(104, 100, 0.4), Point(300, 300, 0.5)]
    fused = fuse([first, second], radius=12, weights=(0.7, 0.3))
    assert [(c.x, round(s, 6)) for c, s in fused] == [(100, 0.68), (300, 0.15)]
    assert fuse([first, second], radius=12, weights=(1, 1)) == fuse([first, second], radius=12)
    with pytest.raises(ValueError, match="one non-negative weight per member"):
        fuse([first, second], radius=12, weights=(1.0,))


def test_fuse_absorbs_a_members_duplicates_within_the_radius() -> None:
    only = [Point(100, 100, 0.8), Point(108, 100, 0.5), Point(200, 200, 0.4)]
    fused = fuse([only], radius=12)
    assert [(c.x, c.y, s) for c, s in fused] == [(100, 100, 0.8), (200, 200, 0.4)]
    assert fuse([only, []], radius=12)[0][1] == pytest.approx(0.4)


def test_fusing_cv_runs_needs_the_same_images_and_folds() -> None:
    def run(fold: int, score: float) -> list[ImageCandidates]:
        return [ImageCandidates(name="JPCLN001", fold=fold, nodules=[],
                                candidates=[ScoredCandidate(x=10, y=10, score=score)])]

    fused = fuse_cv_runs([run(0, 0.9), run(0, 0.5)], max_candidates=20)
    assert fused[0].candidates[0].score == pytest.approx(0.7)
    with pytest.raises(ValueError, match="different images or folds"):
        fuse_cv_runs([run(0, 0.9), run(1, 0.5)], max_candidates=20)


def test_committed_ensemble_returns_the_fusion_of_its_networks(data_dir: Path) -> None:
    loaded = load_model()
    assert len(loaded.members) >= 2 and loaded.calibration is not None and loaded.threshold is not None
    assert loaded.model_id.endswith("-" + "+".join(str(m.input_size) for m in loaded.members))
    with Image.open(data_dir / "cxr-jsrt-scr" / "images" / "JPCLN001.png") as im:
        frame = np.asarray(im.convert("L"), dtype=np.float32) / 255
    ensemble = predict([frame], loaded)[0]
    singles = [predict([frame], LoadedModel(members=(m,), device=loaded.device, sha256="", calibration=None,
                                            threshold=None))[0] for m in loaded.members]
    expected = fuse(singles, FUSION_RADIUS_FRACTION * frame.shape[1])[: len(ensemble)]
    assert [(c.x, c.y, c.diameter_px) for c in ensemble] == [(c.x, c.y, c.diameter_px) for c, _ in expected]
    assert [c.score for c in ensemble] == pytest.approx([s for _, s in expected])
    # JPCLN001's obvious nodule (centre 408.5, 173.0) is seen by every network: it keeps a high fused score
    top = ensemble[0]
    assert np.hypot(top.x - 408.5, top.y - 173.0) < 11 and top.score > loaded.threshold
