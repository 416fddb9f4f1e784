"""Markdown sources: one fact per `##` section.

## Cardiomegaly on a PA chest radiograph          <- title
id: cxr-cardiomegaly-definition                   <- optional (default: slug of the title)
reference: Author et al. Journal 2020             <- required when require_reference
url: https://doi.org/...                          <- optional; becomes the locator (else file:line)
codes: ICD-10-CM:I51.7, HP:0001640, MeSH:D006332  <- coded_as edges
finding_of / differential_of / recommended_follow_up / is_a / synonym_of / related_to: other fact ids
<blank line>
The fact text, one or more paragraphs.
"""

from __future__ import annotations

import re
from pathlib import Path

from knowledge.models import Edge, Fact, Source, SourceBatch, SourceValidationError, ValidationIssue
from knowledge.sources.common import RELATION_KEYS, bad_codes, relation_edges, slug

META = re.compile(r"^([a-z_]+):\s*(.*)$")
KNOWN_KEYS = {"id", "reference", "url", "codes"} | RELATION_KEYS


def _sections(lines: list[str]) -> list[tuple[int, str, list[tuple[int, str]]]]:
    sections: list[tuple[int, str, list[tuple[int, str]]]] = []
    for no, line in enumerate(lines, start=1):
        if line.startswith("## "):
            sections.append((no, line[3:].strip(), []))
        elif sections:
            sections[-1][2].append((no, line))
    return sections


def parse_markdown(
    path: Path, source: Source, require_reference: bool = False, locator_path: str | None = None
) -> SourceBatch:
    text = path.read_text(encoding="utf-8")
    shown = locator_path or str(path)
    issues: list[ValidationIssue] = []
    facts: list[Fact] = []
    edges: list[Edge] = []
    seen: dict[str, int] = {}
    sections = _sections(text.splitlines())
    if not sections:
        issues.append(ValidationIssue(line=1, message="no '## ' sections: each fact is a section under a '## title'"))
    for head_no, title, body in sections:
        meta: dict[str, tuple[int, str]] = {}
        paragraphs: list[str] = []
        in_meta = True
        for no, line in body:
            m = META.match(line.strip())
            if in_meta and m and not paragraphs:
                key, value = m.group(1), m.group(2).strip()
                if key not in KNOWN_KEYS:
                    issues.append(
                        ValidationIssue(line=no, message=f"unknown field '{key}' (known: {sorted(KNOWN_KEYS)})")
                    )
                meta[key] = (no, value)
                continue
            if line.strip():
                in_meta = False
            paragraphs.append(line)
        body_text = " ".join(" ".join(paragraphs).split())
        if not title:
            issues.append(ValidationIssue(line=head_no, message="empty section title"))
        if not body_text:
            issues.append(ValidationIssue(line=head_no, message=f"section '{title}' has no text"))
            continue
        fact_id = meta["id"][1] if "id" in meta else f"{source.source_id}:{slug(title)}"
        if fact_id in seen:
            issues.append(
                ValidationIssue(line=head_no, message=f"duplicate id '{fact_id}' (first at line {seen[fact_id]})")
            )
            continue
        seen[fact_id] = head_no
        if require_reference and not meta.get("reference", (0, ""))[1]:
            issues.append(ValidationIssue(line=head_no, message=f"section '{title}' has no 'reference:' line"))
        if "codes" in meta and (bad := bad_codes(meta["codes"][1])):
            issues.append(ValidationIssue(line=meta["codes"][0], message=f"unrecognised codes {bad}"))
        url = meta.get("url", (0, ""))[1]
        facts.append(
            Fact(
                fact_id=fact_id,
                text=body_text,
                title=title,
                source_id=source.source_id,
                locator=url or f"{shown}:{head_no}",
                reference=meta.get("reference", (0, None))[1],
            )
        )
        for key, (_, value) in meta.items():
            if key == "codes" or key in RELATION_KEYS:
                edges.extend(relation_edges(fact_id, key, value))
    if issues:
        raise SourceValidationError(shown, issues)
    return SourceBatch(source=source, facts=facts, edges=edges)
