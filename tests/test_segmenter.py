"""The segmenter with its committed weights on real images: JSRT validation Dice, units, CLI and --save-masks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from agent.cli import app
from tools.registry import get_tool
from tools.result import ToolResult
from tools.segmenter.dataset import jsrt_masks, jsrt_split
from tools.segmenter.measure import cardiothoracic_ratio
from tools.segmenter.metrics import dice
from tools.segmenter.model import STRUCTURES
from tools.study import Study, load_study

N_VAL_IMAGES = 4
DICE_FLOOR = {"right_lung": 0.93, "left_lung": 0.93, "heart": 0.88, "right_clavicle": 0.85, "left_clavicle": 0.85}


def _masks(result: ToolResult) -> dict[str, np.ndarray]:
    return {r.label: r.mask() for r in result.regions}


def _measure(result: ToolResult, name: str, structure: str | None = None):
    return next(m for m in result.measurements if m.name == name and m.structure == structure)


@pytest.fixture(scope="module")
def val_cases(data_dir: Path) -> list[tuple[str, Study]]:
    names = jsrt_split().val[:N_VAL_IMAGES]
    return [(n, load_study(data_dir / "cxr-jsrt-scr" / "images" / f"{n}.png")) for n in names]


@pytest.fixture(scope="module")
def val_results(val_cases: list[tuple[str, Study]]) -> list[ToolResult]:
    return get_tool("segmenter").run([s for _, s in val_cases])  # one batch


def test_dice_on_validation_images(val_cases: list[tuple[str, Study]], val_results: list[ToolResult]) -> None:
    assert len(val_results) == len(val_cases)
    scores: dict[str, list[float]] = {s: [] for s in STRUCTURES}
    ctr_errors = []
    for (name, _), result in zip(val_cases, val_results, strict=True):
        assert result.status == "ok" and result.weights_sha256
        pred = _masks(result)
        ref = dict(zip(STRUCTURES, jsrt_masks(name), strict=True))
        for s in STRUCTURES:
            assert pred[s].shape == (512, 512)  # input resolution
            scores[s].append(dice(pred[s], ref[s]))
        ctr_errors.append(abs(_measure(result, "cardiothoracic_ratio").value - cardiothoracic_ratio(ref)))
    assert np.mean(ctr_errors) < 0.05, ctr_errors
    for s, floor in DICE_FLOOR.items():
        assert np.mean(scores[s]) >= floor, (s, scores[s])


def test_png_units_are_pixels(val_results: list[ToolResult]) -> None:
    result = val_results[0]
    units = {m.name: m.unit for m in result.measurements}
    assert units["lung_area"] == "px2" and units["heart_width"] == "px"
    assert not {m.unit for m in result.measurements} & {"mm", "cm2"}
    masks = _masks(result)
    assert _measure(result, "lung_area", "right_lung").value == masks["right_lung"].sum()
    assert any("pixel spacing unknown" in w for w in result.warnings)
    assert result.overlay_png_b64


def test_known_spacing_gives_mm(val_cases: list[tuple[str, Study]], val_results: list[ToolResult]) -> None:
    study = val_cases[0][1].model_copy(update={"pixel_spacing_mm": (0.7, 0.7), "spacing_source": "user"})
    result = get_tool("segmenter").run([study])[0]
    px = val_results[0]
    assert _measure(result, "lung_area", "left_lung").unit == "cm2"
    assert _measure(result, "lung_area", "left_lung").value == pytest.approx(
        _measure(px, "lung_area", "left_lung").value * 0.49 / 100, abs=0.01)
    assert _measure(result, "heart_width", "heart").value == pytest.approx(
        _measure(px, "heart_width", "heart").value * 0.7, abs=0.1)
    ctr = _measure(result, "cardiothoracic_ratio").value
    assert ctr == _measure(px, "cardiothoracic_ratio").value  # a ratio does not depend on spacing
    finding = next(f for f in result.findings if f.label == "cardiomegaly")
    assert finding.positive == (ctr > 0.5) and finding.threshold == 0.5


def test_dicom_chest_pa(samples: Path) -> None:
    study = load_study(samples / "cr-chest-pa.dcm")
    assert study.pixel_spacing_mm is not None
    result = get_tool("segmenter").run([study])[0]
    assert result.status == "ok"
    masks = _masks(result)
    assert all(masks[s].shape == study.frame().shape for s in STRUCTURES)
    right, left = masks["right_lung"], masks["left_lung"]
    assert right.sum() > 0.03 * right.size and left.sum() > 0.03 * left.size
    # the patient's right lung is on the image left
    assert np.nonzero(right)[1].mean() < np.nonzero(left)[1].mean()
    area = _measure(result, "lung_area", "right_lung")
    assert area.unit == "cm2" and 20 < area.value < 400  # this model under-segments this film (card)
    assert 0.3 < _measure(result, "cardiothoracic_ratio").value < 0.7


def test_refuses_ct_volume(samples: Path) -> None:
    result = get_tool("segmenter").run([load_study(samples / "ct-3slice")])[0]
    assert result.status == "refused" and "frontal chest radiograph" in result.warnings[0]


def test_cli_json_and_save_masks(samples: Path, data_dir: Path, tmp_path: Path) -> None:
    inputs = [samples / "cr-chest-pa.dcm", data_dir / "cxr-jsrt-scr" / "images" / f"{jsrt_split().val[0]}.png"]
    out = tmp_path / "masks"
    result = CliRunner().invoke(app, ["tool", "segmenter", *map(str, inputs), "--json", "--save-masks", str(out)])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.output.splitlines() if line.startswith("{")]
    assert [r["input"] for r in rows] == [p.name for p in inputs]
    folders = sorted(out.iterdir())
    assert len(folders) == len(inputs)
    for row in rows:
        parsed = ToolResult.model_validate({k: v for k, v in row.items() if k != "input"})
        assert parsed.tool == "segmenter" and parsed.overlay_png_b64 and len(parsed.regions) == len(STRUCTURES)
    for folder in folders:
        files = sorted(p.stem for p in folder.glob("*.png"))
        assert files == sorted(STRUCTURES)
        heart = np.asarray(Image.open(folder / "heart.png"))
        assert set(np.unique(heart)) <= {0, 255} and heart.max() == 255
    sizes = {np.asarray(Image.open(f / "right_lung.png")).shape for f in folders}
    assert sizes == {(1024, 1024), (512, 512)}


def test_save_masks_uses_source_name(val_cases: list[tuple[str, Study]], tmp_path: Path) -> None:
    name, study = val_cases[1]
    get_tool("segmenter").run([study], save_masks=tmp_path, source_name=f"{name}.png")
    saved = np.asarray(Image.open(tmp_path / name / "left_lung.png")) > 127
    assert saved.shape == (512, 512) and saved.any()
