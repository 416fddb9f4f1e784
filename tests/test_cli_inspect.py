"""`medagent inspect` on every real sample: JSON per input, previews written, clear errors, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image
from typer.testing import CliRunner

from agent.cli import app


def _lines(output: str) -> list[dict]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def test_inspect_every_sample(samples: Path, testdata, data_dir: Path, tmp_path: Path) -> None:
    inputs = [*sorted(samples.iterdir()), testdata("RG1_UNCR.dcm"), testdata("RG1_J2KR.dcm")]
    inputs += [data_dir / "cxr-jsrt-scr" / "images" / "JPCNN001.png"]
    inputs += [next((data_dir / "cxr-nih-subset" / "images").iterdir())]
    result = CliRunner().invoke(app, ["inspect", *map(str, inputs), "--out", str(tmp_path)])
    rows = _lines(result.output)
    assert len(rows) == len(inputs)
    loaded = [r for r in rows if "error" not in r]
    refused = [r for r in rows if "error" in r]
    segmentations = ("liver", "partial_overlaps", "sparse-labelmap-noppv", "sparse-labelmap-ppv5")
    assert {r["input"] for r in refused} == {p.name for p in inputs if p.stem in segmentations}
    assert all(r["error"] == "non_image_object" for r in refused)
    assert result.exit_code == 1  # some inputs were refused
    for row in loaded:
        preview = Image.open(row["preview"])
        assert preview.size == (row["metadata"]["columns"], row["metadata"]["rows"])
    ct = next(r for r in loaded if r["input"] == "ct-3slice")
    assert ct["metadata"]["frames"] == 3 and ct["slice_spacing_mm"] == 1.0


def test_inspect_success_exit_code(samples: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["inspect", str(samples / "cr-chest-pa.dcm"), "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    row = _lines(result.output)[0]
    assert row["pixel_spacing_mm"] == [0.168, 0.168]
    assert (tmp_path / "cr-chest-pa.png").exists()
