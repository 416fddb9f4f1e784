"""Helpers shared by the adapters: code-id normalisation, slugs, relation fields."""

from __future__ import annotations

import re

from knowledge.models import EDGE_TYPES, Edge

CODE_PREFIXES = {
    "icd10cm": "ICD10CM", "icd-10-cm": "ICD10CM", "icd10": "ICD10CM", "hp": "HP", "hpo": "HP", "mesh": "MESH",
    "snomed": "SNOMEDCT", "snomedct": "SNOMEDCT", "snomedct_us": "SNOMEDCT", "umls": "UMLS", "radlex": "RADLEX",
}
RELATION_KEYS = {t for t in EDGE_TYPES if t != "coded_as"}


def normalise_code(raw: str) -> str | None:
    """'ICD-10-CM:I51.7' / 'icd10cm I51.7' / 'HP:0001640' / 'MeSH D006332' -> 'ICD10CM:I51.7', 'HP:0001640' ..."""
    m = re.match(r"^\s*([A-Za-z0-9_\-]+)\s*[: ]\s*(\S+)\s*$", raw)
    if not m:
        return None
    prefix = CODE_PREFIXES.get(m.group(1).lower())
    if prefix is None:
        return None
    code = m.group(2).strip().upper() if prefix != "HP" else m.group(2).strip()
    if prefix == "HP" and not code.isdigit():
        return None
    return f"{prefix}:{code}"


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60] or "fact"


def split_list(value: str) -> list[str]:
    return [v.strip() for v in re.split(r"[;,]", value) if v.strip()]


def relation_edges(fact_id: str, key: str, value: str) -> list[Edge]:
    if key == "codes":
        return [Edge(src=fact_id, dst=c, type="coded_as") for c in (normalise_code(v) for v in split_list(value)) if c]
    return [Edge(src=fact_id, dst=v, type=key) for v in split_list(value)]  # type: ignore[arg-type]


def bad_codes(value: str) -> list[str]:
    return [v for v in split_list(value) if normalise_code(v) is None]
