"""Viewer presets and overlay layers on real studies."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tools.result import Box, Finding, Measurement, Region, ToolResult
from tools.study import load_study
from ui.overlays import layers, measurement_rows
from ui.viewer import AS_STORED, CT_PRESETS, presets_for, render


def test_ct_presets_rewindow_hounsfield_units(samples: Path) -> None:
    study = load_study(samples / "ct-3slice")
    assert set(CT_PRESETS) <= set(presets_for(study))
    lung = np.asarray(render(study, "Lung (-600/1500)"), dtype=np.float32)
    soft = np.asarray(render(study, "Mediastinum (40/400)"), dtype=np.float32)
    air = study.modality_values[1] < -900  # air: visible grey in a lung window, black in a soft-tissue one
    assert soft[air].max() == 0
    assert lung[air].mean() > 5
    assert np.array_equal(np.asarray(render(study, AS_STORED)), np.asarray(render(study, "Mediastinum (40/400)")))


def test_projection_and_raster_presets(samples: Path, data_dir: Path) -> None:
    cr = load_study(samples / "cr-chest-monochrome1.dcm")
    assert "Full range" in presets_for(cr)
    assert render(cr, "Soft contrast (5-95th percentile)").size == (1024, 1024)
    png = load_study(data_dir / "cxr-jsrt-scr" / "images" / "JPCNN001.png")
    assert presets_for(png) == [AS_STORED]


def test_layers_follow_results_and_toggles() -> None:
    mask = np.zeros((32, 32), dtype=bool)
    mask[4:10, 5:12] = True
    segmenter = ToolResult(tool="segmenter", model_id="m", study_id="s", evidence_id="T2",
                           regions=[Region.from_mask("heart", mask)],
                           measurements=[Measurement(name="cardiothoracic ratio", value=0.47, unit="ratio")])
    shown = Finding(label="nodule", score=0.9, positive=True, box=Box(x0=1, y0=2, x1=8, y1=9))
    below_threshold = Finding(label="nodule", score=0.1, positive=False, box=Box(x0=1, y0=2, x1=3, y1=4))
    detector = ToolResult(tool="detector", model_id="m", study_id="s", findings=[shown, below_threshold])
    all_layers = layers([segmenter, detector])
    assert [label for _, label in all_layers] == ["segmenter: heart", "detector: nodule"]
    restored = all_layers[0][0]
    assert isinstance(restored, np.ndarray) and restored.sum() == mask.sum()
    assert layers([segmenter, detector], enabled={"detector"})[0][0] == (1, 2, 8, 9)
    assert measurement_rows([segmenter]) == [["T2", "segmenter", "", "cardiothoracic ratio", "0.47", "ratio"]]
