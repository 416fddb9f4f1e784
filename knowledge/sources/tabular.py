"""CSV and JSONL maintainer sources with one documented schema.

Columns / keys: `text` (required), `id`, `title`, `reference`, `url`, `codes` (`;`-separated, e.g.
`ICD-10-CM:J18.9; HP:0002090`), and any of the relation names (is_a, synonym_of, finding_of,
differential_of, recommended_follow_up, related_to) holding `;`-separated fact ids. The locator is
`url` when given, else `file:line`.
"""

from __future__ import annotations

import csv
import gzip
import json
from collections.abc import Iterator
from pathlib import Path

from knowledge.models import Edge, Fact, Source, SourceBatch, SourceValidationError, ValidationIssue
from knowledge.sources.common import RELATION_KEYS, bad_codes, relation_edges, slug

FIELDS = {"id", "title", "text", "reference", "url", "codes"} | RELATION_KEYS


def _open(path: Path):
    return gzip.open(path, "rt", encoding="utf-8") if path.suffix == ".gz" else open(path, encoding="utf-8", newline="")


def _csv_rows(path: Path, issues: list[ValidationIssue]) -> Iterator[tuple[int, dict]]:
    with _open(path) as fh:
        reader = csv.DictReader(fh)
        header = reader.fieldnames or []
        if "text" not in header:
            issues.append(ValidationIssue(line=1, message=f"header must have a 'text' column (got {header})"))
            return
        if unknown := [h for h in header if h not in FIELDS]:
            issues.append(ValidationIssue(line=1, message=f"unknown columns {unknown} (known: {sorted(FIELDS)})"))
        for row in reader:
            yield reader.line_num, {k: (v or "").strip() for k, v in row.items() if k}


def _jsonl_rows(path: Path, issues: list[ValidationIssue]) -> Iterator[tuple[int, dict]]:
    with _open(path) as fh:
        for no, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as err:
                issues.append(ValidationIssue(line=no, message=f"invalid JSON: {err.msg}"))
                continue
            if not isinstance(obj, dict):
                issues.append(ValidationIssue(line=no, message="each line must be a JSON object"))
                continue
            if unknown := [k for k in obj if k not in FIELDS]:
                issues.append(ValidationIssue(line=no, message=f"unknown keys {unknown}"))
            yield no, {k: ("; ".join(v) if isinstance(v, list) else str(v)).strip() for k, v in obj.items()}


def parse_tabular(path: Path, source: Source) -> SourceBatch:
    issues: list[ValidationIssue] = []
    name = path.name.removesuffix(".gz")
    rows = _jsonl_rows(path, issues) if name.endswith(".jsonl") else _csv_rows(path, issues)
    facts: list[Fact] = []
    edges: list[Edge] = []
    seen: set[str] = set()
    for no, row in rows:
        text = row.get("text", "")
        if not text:
            issues.append(ValidationIssue(line=no, message="empty 'text'"))
            continue
        fact_id = row.get("id") or f"{source.source_id}:{slug(row.get('title') or text)}-{no}"
        if fact_id in seen:
            issues.append(ValidationIssue(line=no, message=f"duplicate id '{fact_id}'"))
            continue
        seen.add(fact_id)
        if row.get("codes") and (bad := bad_codes(row["codes"])):
            issues.append(ValidationIssue(line=no, message=f"unrecognised codes {bad}"))
        facts.append(Fact(fact_id=fact_id, text=text, title=row.get("title") or None, source_id=source.source_id,
                          locator=row.get("url") or f"{path}:{no}", reference=row.get("reference") or None))
        for key in ("codes", *RELATION_KEYS):
            if row.get(key):
                edges.extend(relation_edges(fact_id, key, row[key]))
    if issues:
        raise SourceValidationError(str(path), issues)
    return SourceBatch(source=source, facts=facts, edges=edges)
