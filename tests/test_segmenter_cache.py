"""The segmenter keeps its last few predictions: the agent's segmenter call and the detector's lung prior on the same
study run the network once. Real committed weights, real JSRT images; the network's forward calls are counted."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tools.registry import get_tool
from tools.segmenter import predict as segmenter
from tools.study import load_study


@pytest.fixture()
def forward_calls() -> Iterator[list[int]]:
    """Frames passed through the segmenter network while the test runs, starting from an empty cache."""
    segmenter.clear_cache()
    calls: list[int] = []
    hook = segmenter.load_model().model.register_forward_hook(lambda _m, args, _out: calls.append(len(args[0])))
    yield calls
    hook.remove()
    segmenter.clear_cache()


def _frame(data_dir: Path, name: str) -> np.ndarray:
    with Image.open(data_dir / "cxr-jsrt-scr" / "images" / f"{name}.png") as im:
        return np.asarray(im.convert("L"), dtype=np.float32) / 255


def test_a_frame_segmented_again_is_answered_from_the_cache(data_dir: Path, forward_calls: list[int]) -> None:
    loaded = segmenter.load_model()
    frame = _frame(data_dir, "JPCLN001")
    first = segmenter.predict([frame], loaded)[0]
    second = segmenter.predict([frame.copy()], loaded)[0]
    assert forward_calls == [1]
    assert second is first
    assert not first.masks["right_lung"].flags.writeable  # no caller can alter what the next one gets
    assert first.masks["right_lung"].sum() > 1000

    changed = frame.copy()
    changed[100, 100] += 0.01
    segmenter.predict([changed], loaded)
    assert forward_calls == [1, 1]  # other pixels, other key


def test_only_the_missing_frames_of_a_batch_are_segmented(data_dir: Path, forward_calls: list[int]) -> None:
    loaded = segmenter.load_model()
    frames = [_frame(data_dir, name) for name in ("JPCLN001", "JPCLN002", "JPCNN001")]
    alone = segmenter.predict(frames[1:2], loaded)[0]
    batch = segmenter.predict(frames, loaded)
    assert forward_calls == [1, 2]
    assert batch[1] is alone
    assert [np.array_equal(b.masks["heart"], a.masks["heart"]) for b, a in zip(batch, [batch[0], alone, batch[2]],
                                                                                strict=True)] == [True] * 3
    many = [_frame(data_dir, f"JPCLN{k:03d}") for k in range(3, 3 + segmenter.CACHE_FRAMES + 1)]
    segmenter.predict(many, loaded)
    segmenter.predict(frames[:1], loaded)  # pushed out by the newer frames
    assert forward_calls[-1] == 1 and sum(forward_calls) == 3 + len(many) + 1


def test_the_detectors_lung_prior_reuses_the_segmenters_masks(data_dir: Path, forward_calls: list[int]) -> None:
    study = load_study(data_dir / "cxr-jsrt-scr" / "images" / "JPCLN001.png")
    segmented = get_tool("segmenter").run([study])[0]
    detected = get_tool("detector").run([study])[0]
    assert segmented.status == "ok" and detected.status == "ok"
    assert forward_calls == [1]
    assert detected.findings and all(f.attributes.get("side") in ("right", "left") for f in detected.findings[:3])
