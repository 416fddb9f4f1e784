"""Training/validation records for the classifier from ../shared/data, with per-source label masks.

A label a source does not annotate is NaN (masked out of the loss), as torchxrayvision does across datasets.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

LABELS: tuple[str, ...] = ("pneumonia", "pneumonia_viral", "covid19_pattern", "nodule", "no_finding")
SOURCES: tuple[str, ...] = ("pediatric", "nih", "covid", "jsrt")
NAN = float("nan")
DATA_ROOT = Path(__file__).resolve().parents[2].parent / "shared" / "data"


@dataclass
class Record:
    source: str
    path: Path
    patient: str
    labels: list[float] = field(default_factory=lambda: [NAN] * len(LABELS))
    strata: str = ""

    def set(self, label: str, value: float) -> None:
        self.labels[LABELS.index(label)] = value


def pediatric_patient(name: str) -> str:
    """person1000_bacteria_2931.jpeg -> person1000; IM-0115-0001.jpeg -> IM-0115; NORMAL2-IM-0383-0001 -> N2-0383."""
    stem = Path(name).stem
    if match := re.match(r"(person\d+)_", stem):
        return match.group(1)
    if match := re.match(r"NORMAL2-IM-(\d+)", stem):
        return f"N2-{match.group(1)}"
    if match := re.match(r"IM-(\d+)", stem):
        return f"IM-{match.group(1)}"
    return stem


def pediatric_records(root: Path) -> list[Record]:
    out = []
    for cls in ("NORMAL", "PNEUMONIA"):
        for path in sorted((root / "cxr-pediatric-pneumonia" / "train" / cls).glob("*.jpeg")):
            rec = Record("pediatric", path, "ped:" + pediatric_patient(path.name))
            pneumonia = cls == "PNEUMONIA"
            rec.set("pneumonia", float(pneumonia))
            rec.set("no_finding", float(not pneumonia))
            rec.set("covid19_pattern", 0.0)  # collected 2018, before COVID-19
            if pneumonia:
                rec.set("pneumonia_viral", float("_virus_" in path.name))
            rec.strata = "ped-" + ("viral" if "_virus_" in path.name else "bact" if pneumonia else "normal")
            out.append(rec)
    return out


def nih_records(root: Path) -> list[Record]:
    out = []
    with open(root / "cxr-nih-subset" / "labels.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            labels = set(row["finding_labels"].split("|"))
            rec = Record("nih", root / "cxr-nih-subset" / row["image"], "nih:" + row["patient_id"])
            rec.set("pneumonia", float("Pneumonia" in labels))
            rec.set("no_finding", float("No Finding" in labels))
            rec.set("nodule", float("Nodule" in labels))
            rec.set("covid19_pattern", 0.0)  # ChestX-ray14 predates COVID-19
            rec.strata = "nih-" + ("pneu" if "Pneumonia" in labels else "nf" if "No Finding" in labels else "other")
            out.append(rec)
    return out


VIRAL = ("COVID-19", "SARS", "Varicella", "Influenza")
BACTERIAL = ("Streptococcus", "Klebsiella", "Legionella", "E.Coli", "Bacterial")


def covid_view_ok(row: dict[str, str]) -> bool:
    return row["modality"] == "X-ray" and row["view"] in ("PA", "AP", "AP Supine")


def frontal_covid_rows(root: Path) -> list[dict[str, str]]:
    """metadata.csv rows of the frontal X-rays with a known finding (not 'todo')."""
    with open(root / "cxr-covid-cases" / "metadata.csv", newline="") as fh:
        return [row for row in csv.DictReader(fh) if covid_view_ok(row) and row["finding"] != "todo"]


def covid_records(root: Path) -> list[Record]:
    """Frontal X-rays only (lateral 'L', unknown views and CT slices are kept for the OOD evaluation)."""
    out = []
    for row in frontal_covid_rows(root):
        finding = row["finding"]
        rec = Record("covid", root / "cxr-covid-cases" / row["image"], "cov:" + row["patientid"])
        covid = finding.startswith("COVID-19")
        rec.set("covid19_pattern", float(covid))
        no_finding = finding == "No Finding"
        rec.set("no_finding", float(no_finding))
        rec.set("pneumonia", float(not no_finding and finding not in ("Lipoid", "ARDS")))
        if any(v in finding for v in VIRAL):
            rec.set("pneumonia_viral", 1.0)
        elif any(b in finding for b in BACTERIAL):
            rec.set("pneumonia_viral", 0.0)
        rec.strata = "cov-" + ("covid" if covid else "other")
        out.append(rec)
    return out


def covid_ood_records(root: Path) -> list[tuple[str, Path]]:
    """Non-frontal covid-set images: ('lateral'|'ct', path)."""
    out = []
    with open(root / "cxr-covid-cases" / "metadata.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            if row["modality"] == "CT":
                out.append(("ct", root / "cxr-covid-cases" / row["image"]))
            elif row["view"] == "L":
                out.append(("lateral", root / "cxr-covid-cases" / row["image"]))
    return out


def jsrt_records(root: Path) -> list[Record]:
    out = []
    with open(root / "cxr-jsrt-scr" / "index.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            path = root / "cxr-jsrt-scr" / row["image"]
            rec = Record("jsrt", path, "jsrt:" + path.stem)
            nodule = row["nodule"] == "True"
            rec.set("nodule", float(nodule))
            rec.set("no_finding", float(not nodule))
            rec.set("covid19_pattern", 0.0)  # JSRT (1998-2000) predates COVID-19
            rec.strata = "jsrt-" + ("nod" if nodule else "non")
            out.append(rec)
    return out


def all_records(root: Path = DATA_ROOT) -> list[Record]:
    return pediatric_records(root) + nih_records(root) + covid_records(root) + jsrt_records(root)


def patient_split(records: list[Record], seed: int = 0, val_fraction: float = 0.2) -> np.ndarray:
    """Boolean 'is validation' per record: grouped by patient, stratified by source and main label."""
    from sklearn.model_selection import StratifiedGroupKFold

    n_splits = round(1 / val_fraction)
    strata = [r.strata for r in records]
    groups = [r.patient for r in records]
    splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    _, val_idx = next(splitter.split(np.zeros(len(records)), strata, groups))
    is_val = np.zeros(len(records), dtype=bool)
    is_val[val_idx] = True
    return is_val


def label_matrix(records: list[Record]) -> np.ndarray:
    return np.array([r.labels for r in records], dtype=np.float32)
