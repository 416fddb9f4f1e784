"""Case library: real images from ../shared/data and dicom-samples, a real SQLite file and FAISS index, the
committed CLIP and classifier weights."""

from __future__ import annotations

import csv
import json
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from knowledge.cases.cli import app as cases_app
from knowledge.cases.embedders import load_image_embedder
from knowledge.cases.importer import CaseImportError, import_cases
from knowledge.cases.library import DB_NAME, DEMO_DIR, CaseLibrary, NotSearchable
from tools.study import load_study

HEADER = ["file", "diagnosis", "labels", "report", "source", "license"]


def _pick(data_dir: Path) -> list[tuple[Path, str, str, str]]:
    ped = data_dir / "cxr-pediatric-pneumonia" / "train"
    return [
        (sorted((ped / "NORMAL").glob("*.jpeg"))[0], "no finding", "", "Paediatric chest X-ray, clear lungs."),
        (sorted((ped / "PNEUMONIA").glob("*bacteria*.jpeg"))[0], "bacterial pneumonia", "pneumonia",
         "Right lower lobe consolidation."),
        (sorted((ped / "PNEUMONIA").glob("*virus*.jpeg"))[0], "viral pneumonia", "pneumonia",
         "Bilateral interstitial opacities."),
        (sorted((data_dir / "cxr-nih-subset" / "images").glob("*.jpg"))[0], "no finding", "", "Normal adult PA."),
        (data_dir / "dicom-samples" / "cr-chest-pa.dcm", "no finding", "", "Adult CR chest PA (DICOM)."),
    ]


def write_folder(folder: Path, data_dir: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rows, files = [], []
    for src, diag, labels, report in _pick(data_dir):
        shutil.copy(src, folder / src.name)
        files.append(folder / src.name)
        rows.append([src.name, diag, labels, report, "test set", "CC BY 4.0"])
    with open(folder / "cases.csv", "w", newline="") as fh:
        csv.writer(fh).writerows([HEADER, *rows])
    return files


@pytest.fixture(scope="module")
def embedders():
    return [load_image_embedder("clip"), load_image_embedder("classifier")]


@pytest.fixture(scope="module")
def imported(tmp_path_factory, data_dir, embedders):
    root = tmp_path_factory.mktemp("cases")
    files = write_folder(root / "in", data_dir)
    lib = CaseLibrary.open(root / "lib", embedders=embedders, seed_demo=False)
    result = import_cases(lib, root / "in")
    return lib, files, result, root


def test_import_stores_cases_thumbnails_and_vectors(imported, embedders):
    lib, files, result, root = imported
    assert result["added"] == len(files) == lib.store.count()
    db = sqlite3.connect(str(root / "lib" / DB_NAME))
    assert db.execute("SELECT COUNT(*) FROM vectors").fetchone()[0] == len(files) * len(embedders)
    for (case_id,) in db.execute("SELECT case_id FROM cases"):
        thumb = lib.thumbnail(case_id)
        assert thumb is not None and max(thumb.size) <= 256 and thumb.mode == "L"
    for e in embedders:
        assert lib.indexes[e.model_id].ntotal == len(files)
        assert lib.indexes[e.model_id].path.exists()
    # Importing the same folder again adds nothing (same de-identified pixels).
    again = import_cases(lib, root / "in")
    assert again["added"] == 0 and lib.store.count() == len(files)


def test_similar_cases_returns_the_identical_image_first(imported):
    lib, files, _, _ = imported
    for path in (files[1], files[4]):  # a JPEG and the DICOM file
        hits = lib.similar_cases(load_study(path), k=3)
        assert len(hits) == 3
        assert hits[0].similarity > 0.99, hits[0]
        assert hits[0].similarity >= hits[1].similarity >= hits[2].similarity
        assert hits[0].rank == 1 and hits[0].thumbnail.startswith("cases://")
        assert hits[0].evidence_fields()["case_id"] == hits[0].case_id
    top = lib.similar_cases(load_study(files[1]), k=1)[0]
    assert top.diagnosis == "bacterial pneumonia" and top.report_excerpt == "Right lower lobe consolidation."
    assert set(top.labels) == {"bacterial pneumonia", "pneumonia"} and top.license == "CC BY 4.0"


def test_non_chest_xray_studies_are_refused(imported, samples):
    lib, _, _, _ = imported
    ct = load_study(sorted((samples / "ct-3slice").iterdir())[0])
    with pytest.raises(NotSearchable, match="modality CT"):
        lib.similar_cases(ct)
    assert len(lib.similar_cases(ct, k=2, check=False)) == 2


def test_reopen_uses_the_saved_index(imported, embedders):
    lib, files, _, _ = imported
    again = CaseLibrary.open(lib.root, embedders=embedders, seed_demo=False)
    assert again.store.count() == len(files)
    assert again.similar_cases(load_study(files[0]), k=1)[0].similarity > 0.99


def test_text_search_needs_and_uses_the_clip_model(imported, embedders):
    lib, files, _, _ = imported
    hits = lib.search_text("right lower lobe consolidation", k=5)
    assert len(hits) == len(files) and hits[0].embedder == embedders[0].model_id
    assert all(-1.0 <= h.similarity <= 1.0 for h in hits)
    image_only = CaseLibrary(lib.root, embedders=[embedders[1]])
    with pytest.raises(RuntimeError, match="CLIP"):
        image_only.search_text("consolidation")


def test_bad_csv_reports_line_numbers_and_adds_nothing(tmp_path, data_dir, embedders):
    folder = tmp_path / "bad"
    write_folder(folder, data_dir)
    (folder / "notes.txt").write_text("not an image")
    rows = list(csv.reader((folder / "cases.csv").read_text().splitlines()))
    rows[2][1] = ""  # line 3: empty diagnosis
    rows.append(["missing.png", "no finding", "", "", "x", "CC0"])  # line 7: no such file
    rows.append(["notes.txt", "no finding", "", "", "x", "CC0"])  # line 8: not an image
    with open(folder / "cases.csv", "w", newline="") as fh:
        csv.writer(fh).writerows(rows)
    lib = CaseLibrary.open(tmp_path / "lib", embedders=embedders[:1], seed_demo=False)
    with pytest.raises(CaseImportError) as err:
        import_cases(lib, folder)
    lines = {i.line: i.message for i in err.value.issues}
    assert "diagnosis" in lines[3] and "missing.png" in lines[7]
    assert 8 not in lines  # file checks come before loading: the first pass stops here
    rows.pop(7 - 1)
    rows[2][1] = "no finding"
    with open(folder / "cases.csv", "w", newline="") as fh:
        csv.writer(fh).writerows(rows)
    with pytest.raises(CaseImportError) as err:
        import_cases(lib, folder)
    assert [i.line for i in err.value.issues] == [7] and "notes.txt" in err.value.issues[0].message
    assert lib.store.count() == 0

    (folder / "cases.csv").write_text("file,diagnosis,colour\nx.png,nodule,red\n")
    with pytest.raises(CaseImportError) as err:
        import_cases(lib, folder)
    assert err.value.issues[0].line == 1 and "source" in err.value.issues[0].message
    assert "colour" in err.value.issues[1].message

    (folder / "cases.csv").write_text("file,diagnosis,source,license\n../secret.png,nodule,a,b\n")
    with pytest.raises(CaseImportError) as err:
        import_cases(lib, folder)
    assert err.value.issues[0].line == 2 and "outside" in err.value.issues[0].message


def test_cli_json_and_validation_exit_code(imported, tmp_path):
    lib, files, _, _ = imported
    runner = CliRunner()
    out = runner.invoke(cases_app, ["similar", str(files[2]), "--k", "2", "--json", "--library", str(lib.root)])
    assert out.exit_code == 0, out.output
    hits = json.loads(out.stdout)
    assert len(hits) == 2 and hits[0]["similarity"] > 0.99 and hits[0]["diagnosis"] == "viral pneumonia"
    out = runner.invoke(cases_app, ["search", "viral pneumonia", "--k", "3", "--json", "--library", str(lib.root)])
    assert out.exit_code == 0, out.output
    assert len(json.loads(out.stdout)) == 3
    out = runner.invoke(cases_app, ["stats", "--library", str(lib.root)])
    assert out.exit_code == 0 and json.loads(out.stdout)["cases"] == len(files)
    (tmp_path / "x.csv").write_text("file,diagnosis,source,license\nnope.png,nodule,a,b\n")
    out = runner.invoke(cases_app, ["import", str(tmp_path / "x.csv"), "--library", str(tmp_path / "l2")])
    assert out.exit_code == 2 and "line 2:" in out.stderr


def test_demo_library_ships_small_redistributable_and_opens(tmp_path, embedders, data_dir):
    demo = DEMO_DIR / DB_NAME
    assert demo.exists() and demo.stat().st_size < 5_000_000
    db = sqlite3.connect(f"file:{demo}?mode=ro", uri=True)
    sources = {s for (s,) in db.execute("SELECT DISTINCT source FROM cases")}
    assert sources and not any("JSRT" in s for s in sources)
    licences = {lic for (lic,) in db.execute("SELECT DISTINCT license FROM cases")}
    assert not any("NC" in lic or "ND" in lic for lic in licences), licences
    lib = CaseLibrary.open(tmp_path / "home-cases", embedders=embedders)  # absent: seeded from the demo
    n = lib.store.count()
    assert n == db.execute("SELECT COUNT(*) FROM cases").fetchone()[0] > 50
    ped = sorted((data_dir / "cxr-pediatric-pneumonia" / "train" / "PNEUMONIA").glob("*bacteria*.jpeg"))[-1]
    hits = lib.similar_cases(load_study(ped), k=5)
    assert len(hits) == 5 and all(np.isfinite(h.similarity) for h in hits)


def test_any_local_open_clip_model_plugs_in(tmp_path, data_dir):
    """A (tiny, randomly initialised) open_clip model saved the way the hub stores one loads offline from a folder."""
    import open_clip
    import torch

    from knowledge.cases.embedders import OpenClipEmbedder

    cfg = {"embed_dim": 32, "vision_cfg": {"image_size": 64, "layers": 1, "width": 64, "patch_size": 16},
           "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 1}}
    model = open_clip.CLIP(**cfg)
    folder = tmp_path / "tiny-clip"
    folder.mkdir()
    (folder / "open_clip_config.json").write_text(json.dumps({"model_cfg": cfg, "preprocess_cfg": {}}))
    with pytest.raises(FileNotFoundError, match="weights"):
        OpenClipEmbedder(folder)
    torch.save(model.state_dict(), folder / "open_clip_pytorch_model.bin")
    emb = OpenClipEmbedder(folder)
    assert emb.model_id == "open_clip:tiny-clip" and emb.dim == 32
    files = write_folder(tmp_path / "in", data_dir)[:2]
    lib = CaseLibrary.open(tmp_path / "lib", embedders=[emb], seed_demo=False)
    lib.add_studies([(load_study(f), {"diagnosis": "no finding", "source": "t", "license": "CC0"}) for f in files])
    assert lib.similar_cases(load_study(files[1]), k=1)[0].similarity > 0.99
    assert len(lib.search_text("pleural effusion", k=2)) == 2
