"""Build the demo case library shipped in knowledge/cases/demo/cases.sqlite (thumbnails, labels, text, vectors).

Only redistributable sources (knowledge/cases/labels.py decides per image: the paediatric set, CC BY 4.0; NIH
ChestX-ray14, no restriction; COVID-collection images whose own licence is CC BY / CC BY-SA / CC0 / public
domain); never JSRT. Only the training split (tools.classifier.data.patient_split, seed 0), so the held-out
patients of scripts/eval_cases.py stay out. Every image goes through tools.study.load_study (de-identification)
like any import; thumbnails are 128 px grey PNG. The FAISS indexes are not shipped: the library rebuilds them
from the stored vectors when it is first opened.

    .venv/bin/python scripts/build_cases_demo.py [--per-class 35] [--out knowledge/cases/demo]
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import sys
from collections import defaultdict
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from knowledge.cases.embedders import load_image_embedder
from knowledge.cases.importer import patient_key
from knowledge.cases.labels import all_cases
from knowledge.cases.library import DB_NAME, CaseLibrary
from tools.classifier.data import DATA_ROOT, all_records, patient_split
from tools.study import load_study


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--per-class", type=int, default=35, help="cases per (source, diagnosis), at most")
    ap.add_argument("--thumbnail", type=int, default=128)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "knowledge/cases/demo")
    args = ap.parse_args()
    torch.set_num_threads(1)
    records = all_records(DATA_ROOT)
    is_val = patient_split(records, seed=args.seed)
    infos = all_cases(DATA_ROOT)
    groups: dict[tuple[str, str], list] = defaultdict(list)
    for rec, val in zip(records, is_val, strict=True):
        info = infos[rec.path]
        if not val and info.redistributable:
            groups[(info.source, info.diagnosis)].append(info)
    rng = random.Random(args.seed)
    chosen = []
    for key in sorted(groups):
        items = sorted(groups[key], key=lambda c: str(c.path))
        rng.shuffle(items)
        picked, patients = [], set()
        for c in items:  # one image per patient, so the demo spreads over patients
            if c.patient not in patients:
                picked.append(c)
                patients.add(c.patient)
            if len(picked) >= args.per_class:
                break
        chosen += picked
    args.out.mkdir(parents=True, exist_ok=True)
    for old in args.out.glob("*"):
        if old.name.startswith(("cases.sqlite", "index-")):
            old.unlink()
    embedders = [load_image_embedder("clip"), load_image_embedder("classifier")]
    lib = CaseLibrary.open(args.out, embedders=embedders, seed_demo=False)
    items = [(load_study(c.path), {"diagnosis": c.diagnosis, "labels": c.labels, "report": c.text,
                                   "source": c.source, "license": c.license, "patient": patient_key(c.patient),
                                   "thumbnail_max": args.thumbnail}) for c in chosen]
    added = lib.add_studies(items)
    stats = lib.stats()
    lib.close()
    for f in args.out.glob("index-*"):
        f.unlink()
    db = sqlite3.connect(str(args.out / DB_NAME))
    db.execute("PRAGMA journal_mode = DELETE")
    db.execute("VACUUM")
    db.close()
    size = (args.out / DB_NAME).stat().st_size
    print(json.dumps({"cases": len(added), "bytes": size, "sources": stats["sources"],
                      "diagnoses": stats["diagnoses"]}, indent=2))


if __name__ == "__main__":
    main()
