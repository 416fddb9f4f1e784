"""`medagent cases import PATH`: a folder of DICOM/PNG/JPEG files plus one CSV describing them.

CSV schema (header required, UTF-8, one row per image):

| column    | required | meaning |
|-----------|----------|---------|
| file      | yes | image path relative to the CSV's folder: a DICOM file, a DICOM series folder or zip, PNG or JPEG |
| diagnosis | yes | the case's main finding, lower case (e.g. `bacterial pneumonia`, `no finding`, `nodule`) |
| labels    | no  | further labels separated by `;` or `|` (the diagnosis is always one of them) |
| report    | no  | report or clinical-notes text (already de-identified: it is stored as given) |
| source    | yes | where the case comes from (data set, department) |
| license   | yes | the licence or terms under which it may be used |
| patient   | no  | a patient key; stored only as a salted hash, so cases of one patient can be grouped |
| case_id   | no  | your own id (default: the first 16 hex digits of the de-identified pixels' sha256) |

Every row is validated first (columns, required values, file present, the image loads through tools.study, which
de-identifies it); any problem is reported with its CSV line number and nothing is added until the whole file is
valid.
"""

from __future__ import annotations

import csv
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from tools.study import Study, StudyError, load_study
from tools.study.deid import installation_salt

REQUIRED = ("file", "diagnosis", "source", "license")
OPTIONAL = ("labels", "report", "patient", "case_id")


@dataclass
class CaseImportIssue:
    line: int
    message: str


class CaseImportError(ValueError):
    def __init__(self, path: Path, issues: list[CaseImportIssue]) -> None:
        self.path = path
        self.issues = issues
        super().__init__(f"{path}: " + "; ".join(f"line {i.line}: {i.message}" for i in issues[:5]))


def find_csv(path: Path) -> Path:
    path = Path(path)
    if path.is_file():
        return path
    if not path.is_dir():
        raise FileNotFoundError(str(path))
    csvs = sorted(path.glob("*.csv"))
    if len(csvs) != 1:
        raise CaseImportError(path, [CaseImportIssue(0, f"expected one .csv in the folder, found {len(csvs)}")])
    return csvs[0]


def _split_labels(value: str) -> list[str]:
    return [x.strip().lower() for x in value.replace("|", ";").split(";") if x.strip()]


def patient_key(value: str) -> str:
    return hashlib.sha256(installation_salt() + value.encode()).hexdigest()[:16]


def read_rows(csv_path: Path) -> list[tuple[int, dict]]:
    """(line number, row) pairs after checking the header and each row's required values."""
    issues: list[CaseImportIssue] = []
    with open(csv_path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        header = [h.strip() for h in (reader.fieldnames or [])]
        missing = [c for c in REQUIRED if c not in header]
        unknown = [c for c in header if c not in REQUIRED + OPTIONAL]
        if missing:
            issues.append(CaseImportIssue(1, f"missing column(s): {', '.join(missing)}"))
        if unknown:
            issues.append(CaseImportIssue(1, f"unknown column(s): {', '.join(unknown)} (allowed: "
                                              f"{', '.join(REQUIRED + OPTIONAL)})"))
        if issues:
            raise CaseImportError(csv_path, issues)
        rows = []
        seen: dict[str, int] = {}
        for row in reader:
            line = reader.line_num
            row = {(k or "").strip(): (v or "").strip() for k, v in row.items() if k is not None}
            if None in row or len(row) != len(header):
                issues.append(CaseImportIssue(line, "wrong number of fields"))
                continue
            for col in REQUIRED:
                if not row.get(col):
                    issues.append(CaseImportIssue(line, f"'{col}' is empty"))
            if row.get("file"):
                if row["file"] in seen:
                    issues.append(CaseImportIssue(line, f"'{row['file']}' already listed on line {seen[row['file']]}"))
                seen.setdefault(row["file"], line)
                folder = Path(os.path.abspath(csv_path.parent))
                target = Path(os.path.normpath(folder / row["file"]))  # '..' and absolute paths leave the folder
                if folder not in target.parents:
                    issues.append(CaseImportIssue(line, f"'{row['file']}' is outside the CSV's folder"))
                elif not target.exists():
                    issues.append(CaseImportIssue(line, f"no file '{row['file']}' next to the CSV"))
            rows.append((line, row))
    if not rows and not issues:
        issues.append(CaseImportIssue(2, "no rows"))
    if issues:
        raise CaseImportError(csv_path, issues)
    return rows


def load_cases(path: Path, progress: bool = False) -> list[tuple[Study, dict]]:
    """Validate the CSV and load (de-identify) every image; raises CaseImportError listing every bad line."""
    csv_path = find_csv(path)
    rows = read_rows(csv_path)
    issues: list[CaseImportIssue] = []
    out: list[tuple[Study, dict]] = []
    for line, row in tqdm(rows, desc="load", unit="case", disable=not progress):
        try:
            study = load_study(csv_path.parent / row["file"])
        except StudyError as err:
            issues.append(CaseImportIssue(line, f"'{row['file']}': {err.message}"))
            continue
        fields = {"diagnosis": row["diagnosis"].lower(), "labels": _split_labels(row.get("labels", "")),
                  "report": row.get("report", ""), "source": row["source"], "license": row["license"]}
        if row.get("patient"):
            fields["patient"] = patient_key(row["patient"])
        if row.get("case_id"):
            fields["case_id"] = row["case_id"]
        out.append((study, fields))
    if issues:
        raise CaseImportError(csv_path, issues)
    return out


def import_cases(library, path: Path, progress: bool = False) -> dict:  # type: ignore[no-untyped-def]
    """Validate, load and add; returns counts. Nothing is added when any row is invalid."""
    import time

    start = time.perf_counter()
    items = load_cases(path, progress=progress)
    bar = tqdm(total=len(items), desc="embed", unit="case", disable=not progress)
    added = library.add_studies(items, progress=bar.update)
    bar.close()
    seconds = time.perf_counter() - start
    return {"rows": len(items), "added": len(added), "skipped_duplicates": len(items) - len(added),
            "seconds": round(seconds, 2), "cases_per_s": round(len(items) / seconds, 2) if seconds else None,
            "cases_total": library.store.count()}
