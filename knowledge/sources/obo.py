"""OBO 1.2 ontologies ([Term] stanzas: id, name, def, synonym, is_a, xref); used for HPO and maintainer files."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from pydantic import BaseModel, Field

from knowledge.models import Edge, Fact, Source, SourceBatch, SourceValidationError, ValidationIssue
from knowledge.sources.common import normalise_code

QUOTED = re.compile(r'^"((?:[^"\\]|\\.)*)"')


class OboTerm(BaseModel):
    id: str
    line: int
    name: str = ""
    definition: str = ""
    synonyms: list[str] = Field(default_factory=list)
    parents: list[str] = Field(default_factory=list)
    xrefs: list[str] = Field(default_factory=list)
    obsolete: bool = False


def read_obo(path: Path, issues: list[ValidationIssue]) -> tuple[dict[str, str], Iterator[OboTerm]]:
    """Header tags and a lazy iterator of terms; problems are appended to `issues` with their line."""
    lines = path.read_text(encoding="utf-8").splitlines()
    header: dict[str, str] = {}
    first = next((i for i, ln in enumerate(lines) if ln.startswith("[")), len(lines))
    for ln in lines[:first]:
        if ":" in ln:
            key, _, value = ln.partition(":")
            header.setdefault(key.strip(), value.strip())
    return header, _terms(lines, first, issues)


def _terms(lines: list[str], start: int, issues: list[ValidationIssue]) -> Iterator[OboTerm]:
    term: dict | None = None
    stanza_line = 0
    for i in range(start, len(lines) + 1):
        ln = lines[i] if i < len(lines) else "[End]"
        if ln.startswith("["):
            if term is not None:
                if not term.get("id") or not term.get("name"):
                    issues.append(ValidationIssue(line=stanza_line, message="[Term] without 'id' or 'name'"))
                else:
                    yield OboTerm(line=stanza_line, **term)
            term = {} if ln.strip() == "[Term]" else None
            stanza_line = i + 1
            continue
        if term is None or not ln.strip() or ln.startswith("!"):
            continue
        key, sep, value = ln.partition(": ")
        if not sep:
            issues.append(ValidationIssue(line=i + 1, message=f"expected 'tag: value', got {ln[:40]!r}"))
            continue
        value = value.split(" ! ")[0].strip()
        if key == "id":
            term["id"] = value
        elif key == "name":
            term["name"] = value
        elif key == "def":
            m = QUOTED.match(value)
            term["definition"] = m.group(1) if m else value
        elif key == "synonym":
            m = QUOTED.match(value)
            if m and "obsolete_synonym" not in value:
                term.setdefault("synonyms", []).append(m.group(1))
        elif key == "is_a":
            term.setdefault("parents", []).append(value.split()[0])
        elif key == "xref":
            term.setdefault("xrefs", []).append(value.split()[0])
        elif key == "is_obsolete":
            term["obsolete"] = value == "true"


def term_fact(term: OboTerm, source: Source, label: str, locator: str) -> tuple[Fact, list[Edge]]:
    parts = [f"{label} {term.id}: {term.name}."]
    if term.synonyms:
        parts.append("Synonyms: " + "; ".join(term.synonyms) + ".")
    if term.definition:
        parts.append(term.definition)
    fact = Fact(fact_id=term.id, text=" ".join(parts), title=term.name, source_id=source.source_id, locator=locator)
    edges = [Edge(src=term.id, dst=p, type="is_a") for p in term.parents]
    edges += [Edge(src=term.id, dst=c, type="coded_as") for c in (normalise_code(x) for x in term.xrefs) if c]
    return fact, edges


def parse_obo(path: Path, source: Source, only: set[str] | None = None, label: str = "Term") -> SourceBatch:
    issues: list[ValidationIssue] = []
    header, terms = read_obo(path, issues)
    facts: list[Fact] = []
    edges: list[Edge] = []
    for term in terms:
        if term.obsolete or (only is not None and term.id not in only):
            continue
        fact, fact_edges = term_fact(term, source, label, f"{term.id} ({path.name}:{term.line})")
        facts.append(fact)
        edges.extend(fact_edges)
    if issues and only is None:
        raise SourceValidationError(str(path), issues)
    if not source.version:
        source.version = header.get("data-version")
    return SourceBatch(source=source, facts=facts, edges=edges)
