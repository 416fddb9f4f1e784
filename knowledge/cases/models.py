"""Case-library records and search results (pydantic)."""

from __future__ import annotations

from pydantic import BaseModel, Field

EXCERPT_CHARS = 240


class CaseRecord(BaseModel):
    """One prior study as stored: de-identified thumbnail pixels, labels, text and provenance."""

    case_id: str
    source: str
    license: str
    patient: str | None = Field(default=None, description="pseudonymous patient key (same patient, same key)")
    diagnosis: str
    labels: list[str]
    report: str = ""
    thumbnail_png: bytes = Field(repr=False, exclude=True)
    study_id: str | None = Field(default=None, description="sha256 of the de-identified pixels (tools.study)")


class SimilarCase(BaseModel):
    """A retrieved prior case, shaped to become agent.contracts.CaseEvidence (`C*`)."""

    rank: int
    case_id: str
    similarity: float = Field(description="cosine similarity of the embeddings, in [-1, 1]")
    diagnosis: str
    labels: list[str]
    report_excerpt: str
    source: str
    license: str
    thumbnail: str = Field(description="reference to the stored thumbnail: cases://<case_id>/thumbnail.png")
    embedder: str = Field(description="model id of the embedding that found it")

    def evidence_fields(self) -> dict[str, object]:
        """The fields of agent.contracts.CaseEvidence (its `id`, `C<n>`, is the caller's to assign)."""
        return self.model_dump(mode="json", exclude={"rank"})


def excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0]
    return cut + " …"


def thumbnail_ref(case_id: str) -> str:
    return f"cases://{case_id}/thumbnail.png"
