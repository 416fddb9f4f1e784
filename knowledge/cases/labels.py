"""Diagnosis, labels, report text, source and licence of every image in ../shared/data, keyed by image path.

Each case has one canonical ``diagnosis`` (its most specific finding) and a set of ``labels`` that also holds the
umbrella terms (a COVID-19 case is labelled covid-19, viral pneumonia and pneumonia). Retrieval agreement is
"the retrieved case's labels contain the query's diagnosis" (scripts/eval_cases.py).
"""

from __future__ import annotations

import csv
from pathlib import Path

from pydantic import BaseModel

from tools.classifier.data import BACTERIAL, VIRAL, frontal_covid_rows, pediatric_patient

PEDIATRIC = "Kermany et al., Cell 2018 (Guangzhou paediatric chest X-rays)"
NIH = "NIH ChestX-ray14 (Wang et al., CVPR 2017)"
COVID = "COVID-19 image data collection (Cohen et al., arXiv 2006.11988)"
JSRT = "JSRT database (Shiraishi et al., AJR 2000)"
# Licences that allow redistributing a derived thumbnail in this (Apache-2.0, commercial-use) project.
REDISTRIBUTABLE = ("CC BY", "CC BY 3.0", "CC BY 4.0", "CC BY-SA", "CC BY-SA 4.0", "CC0", "Public Domain")


class CaseInfo(BaseModel):
    """What the data set says about one image (the pixels are loaded separately)."""

    path: Path
    patient: str
    source: str
    license: str
    diagnosis: str
    labels: list[str]
    text: str
    redistributable: bool


def agrees(query_diagnosis: str, labels: list[str]) -> bool:
    return query_diagnosis in labels


def _pneumonia_labels(finding: str) -> list[str]:
    """COVID-collection finding string ('COVID-19, ARDS', 'Streptococcus') -> canonical labels."""
    parts = [p.strip() for p in finding.split(",") if p.strip()]
    labels: list[str] = []
    if finding == "No Finding":
        return ["no finding"]
    if any(v in finding for v in VIRAL):
        labels += ["pneumonia", "viral pneumonia"]
    elif any(b in finding for b in BACTERIAL):
        labels += ["pneumonia", "bacterial pneumonia"]
    elif finding not in ("Lipoid", "ARDS"):
        labels.append("pneumonia")
    labels += [p.lower() for p in parts if p.lower() not in labels]
    return labels


def _covid_diagnosis(finding: str) -> str:
    first = finding.split(",")[0].strip().lower()
    return "no finding" if first == "no finding" else first


def pediatric_cases(root: Path) -> list[CaseInfo]:
    out = []
    for cls in ("NORMAL", "PNEUMONIA"):
        for path in sorted((root / "cxr-pediatric-pneumonia" / "train" / cls).glob("*.jpeg")):
            if cls == "NORMAL":
                diagnosis, labels = "no finding", ["no finding"]
            else:
                diagnosis = "viral pneumonia" if "_virus_" in path.name else "bacterial pneumonia"
                labels = ["pneumonia", diagnosis]
            out.append(CaseInfo(
                path=path, patient="ped:" + pediatric_patient(path.name), source=PEDIATRIC, license="CC BY 4.0",
                diagnosis=diagnosis, labels=labels, redistributable=True,
                text=f"Paediatric frontal chest X-ray. Label: {diagnosis}.",
            ))
    return out


def nih_cases(root: Path) -> list[CaseInfo]:
    out = []
    with open(root / "cxr-nih-subset" / "labels.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            labels = [x.replace("_", " ").lower() for x in row["finding_labels"].split("|")]
            diagnosis = "pneumonia" if "pneumonia" in labels else labels[0]
            out.append(CaseInfo(
                path=root / "cxr-nih-subset" / row["image"], patient="nih:" + row["patient_id"], source=NIH,
                license="no restriction (cite Wang et al., CVPR 2017)", diagnosis=diagnosis, labels=labels,
                redistributable=True, text=f"Adult {row['view']} chest X-ray. Labels: {', '.join(labels)}.",
            ))
    return out


def covid_cases(root: Path) -> list[CaseInfo]:
    """Frontal X-rays with a known finding; the per-image licence decides whether a thumbnail may ship."""
    out = []
    for row in frontal_covid_rows(root):
        finding = row["finding"]
        notes = " ".join(row["clinical_notes"].split())
        lic = row["license"].strip()
        out.append(CaseInfo(
            path=root / "cxr-covid-cases" / row["image"], patient="cov:" + row["patientid"], source=COVID,
            license=lic or "unknown", diagnosis=_covid_diagnosis(finding), labels=_pneumonia_labels(finding),
            redistributable=lic in REDISTRIBUTABLE,
            text=f"{row['view']} chest X-ray. Finding: {finding}. {notes}".strip(),
        ))
    return out


def jsrt_cases(root: Path) -> list[CaseInfo]:
    """Training and evaluation only: JSRT forbids redistribution (never in a shipped library)."""
    out = []
    with open(root / "cxr-jsrt-scr" / "index.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            nodule = row["nodule"] == "True"
            detail = f"Lung nodule, {row['malignancy']}, {row['location']}." if nodule else "No nodule."
            path = root / "cxr-jsrt-scr" / row["image"]
            out.append(CaseInfo(
                path=path, patient="jsrt:" + path.stem, source=JSRT, license="JSRT research use, no redistribution",
                diagnosis="nodule" if nodule else "no finding", labels=["nodule"] if nodule else ["no finding"],
                redistributable=False, text=f"Adult PA chest X-ray. {detail}",
            ))
    return out


def all_cases(root: Path) -> dict[Path, CaseInfo]:
    cases = pediatric_cases(root) + nih_cases(root) + covid_cases(root) + jsrt_cases(root)
    return {c.path: c for c in cases}
