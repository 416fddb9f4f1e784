"""Pydantic models at the knowledge layer's seams: sources, facts, edges and search hits."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

EdgeType = Literal[
    "is_a", "synonym_of", "coded_as", "finding_of", "differential_of", "recommended_follow_up", "related_to"
]
EDGE_TYPES: tuple[str, ...] = EdgeType.__args__  # type: ignore[attr-defined]


class Source(BaseModel):
    """A knowledge source: one adapter run or one maintainer file."""

    source_id: str = Field(pattern=r"^[A-Za-z0-9_.\-]+$")
    name: str
    version: str | None = None
    license: str | None = None
    origin: str | None = Field(default=None, description="file path or package the facts came from")


class Fact(BaseModel):
    """One citable statement with its provenance."""

    fact_id: str
    text: str = Field(min_length=1)
    title: str | None = None
    source_id: str
    locator: str = Field(description="URL, DOI, code or file:line")
    reference: str | None = None


class Edge(BaseModel):
    """A typed relation between two facts (by fact id); the target may live in another source."""

    src: str
    dst: str
    type: EdgeType


class KnowledgeHit(BaseModel):
    """A retrieved fact, ready to be cited as `K*` evidence."""

    fact_id: str
    text: str
    score: float
    title: str | None
    source_id: str
    source_name: str
    source_version: str | None
    license: str | None
    locator: str
    via_edge: str | None = None


class SourceBatch(BaseModel):
    """What an adapter yields: the source record plus its facts and edges."""

    source: Source
    facts: list[Fact]
    edges: list[Edge] = Field(default_factory=list)


class ValidationIssue(BaseModel):
    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


class SourceValidationError(ValueError):
    """Raised by maintainer-file parsers; carries every problem found, each with its line number."""

    def __init__(self, path: str, issues: list[ValidationIssue]) -> None:
        self.path = path
        self.issues = issues
        super().__init__(f"{path}: " + "; ".join(str(i) for i in issues[:20]))
