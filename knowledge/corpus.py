"""Which batches make up the built-in corpora: `curated`, `default` (curated + the codes around it) and `full`."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

from knowledge.models import Source, SourceBatch
from knowledge.sources import packages
from knowledge.sources.markdown import parse_markdown
from knowledge.sources.medquad import default_path as medquad_path
from knowledge.sources.medquad import medquad
from knowledge.synonyms import SynonymLinker

log = logging.getLogger(__name__)
CURATED_DIR = Path(__file__).resolve().parent / "curated"
CURATED_SOURCE = Source(
    source_id="curated", name="medagent curated radiology guidance", version="2026.11",
    license="Apache-2.0 (text written for this project; see each fact's reference)", origin="knowledge/curated",
)
CORPORA = ("curated", "default", "full")
# Focus words that pull the chest-relevant MedQuAD answers into the default corpus.
CHEST_TERMS = ("pneumonia", "pneumothorax", "pleural", "atelectasis", "lung", "covid", "cardiomyopathy",
               "heart failure", "tuberculosis", "emphysema", "bronchi")


def curated() -> SourceBatch:
    facts, edges = [], []
    for path in sorted(CURATED_DIR.glob("*.md")):
        batch = parse_markdown(path, CURATED_SOURCE, require_reference=True,
                               locator_path=f"knowledge/curated/{path.name}")
        facts += batch.facts
        edges += batch.edges
    return SourceBatch(source=CURATED_SOURCE, facts=facts, edges=edges)


def _codes(batch: SourceBatch, prefix: str) -> set[str]:
    return {e.dst.split(":", 1)[1] if prefix != "HP" else e.dst
            for e in batch.edges if e.type == "coded_as" and e.dst.startswith(prefix + ":")}


def batches(corpus: str, medquad_file: Path | None = None) -> Iterator[SourceBatch]:
    """Yield the corpus' batches in order: curated first, so the others can link to it."""
    if corpus not in CORPORA:
        raise ValueError(f"corpus must be one of {CORPORA}")
    cur = curated()
    yield cur
    if corpus == "curated":
        return
    full = corpus == "full"
    linker = SynonymLinker()
    yield linker.link(packages.icd10cm(None if full else packages.icd10cm_neighbourhood(_codes(cur, "ICD10CM"))))
    yield linker.link(packages.hpo(None if full else packages.hpo_neighbourhood(_codes(cur, "HP"))))
    yield linker.link(packages.mesh(None if full else _codes(cur, "MESH")))
    path = medquad_file or medquad_path()
    if path.exists():
        yield medquad(path, None if full else CHEST_TERMS)
    else:
        log.warning("MedQuAD not found at %s: skipped", path)
