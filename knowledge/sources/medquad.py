"""MedQuAD consumer-health Q/A (Ben Abacha and Demner-Fushman 2019), read from the shared data folder."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable
from pathlib import Path

from knowledge.models import Fact, Source, SourceBatch
from tools.home import shared_data_dir

MAX_ANSWER_CHARS = 1500
REQUIRED = {"id", "url", "question", "answer"}


def default_path() -> Path:
    return shared_data_dir() / "knowledge-medquad" / "medquad.jsonl.gz"


def looks_like_medquad(path: Path) -> bool:
    if not path.name.endswith((".jsonl", ".jsonl.gz")):
        return False
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        first = fh.readline()
    try:
        return set(json.loads(first)) >= REQUIRED
    except (json.JSONDecodeError, TypeError):
        return False


def medquad(path: Path | None = None, focus_terms: Iterable[str] | None = None) -> SourceBatch:
    """All Q/A pairs, or those whose focus or question mentions one of `focus_terms` (case-insensitive)."""
    path = path or default_path()
    source = Source(source_id="medquad", name="MedQuAD", version="2019", license="CC BY 4.0", origin=str(path))
    terms = [t.lower() for t in focus_terms] if focus_terms is not None else None
    facts: list[Fact] = []
    seen: set[str] = set()
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            if not row.get("answer") or row["id"] in seen:
                continue
            if terms is not None:
                hay = f"{row.get('focus', '')} {row['question']}".lower()
                if not any(t in hay for t in terms):
                    continue
            seen.add(row["id"])
            answer = " ".join(row["answer"].split())[:MAX_ANSWER_CHARS]
            facts.append(Fact(fact_id=f"medquad:{row['id']}", text=answer, title=row["question"],
                              source_id=source.source_id, locator=row["url"],
                              reference=f"MedQuAD ({row.get('source', 'NIH')})"))
    return SourceBatch(source=source, facts=facts)
