"""Cross-source synonym_of edges on the real ICD-10-CM, HPO and MeSH packages, and their use in retrieval."""

from __future__ import annotations

from pathlib import Path

import pytest

from knowledge.api import KnowledgeBase
from knowledge.corpus import batches
from knowledge.models import Fact, Source, SourceBatch
from knowledge.synonyms import SynonymLinker, names_of


@pytest.fixture(scope="module")
def default_edges() -> set[tuple[str, str]]:
    return {(e.src, e.dst) for b in batches("default") for e in b.edges if e.type == "synonym_of"}


def test_cardiomegaly_is_one_concept_across_sources(default_edges: set[tuple[str, str]]) -> None:
    assert ("HP:0001640", "ICD10CM:I51.7") in default_edges
    assert {("MESH:D006332", "HP:0001640"), ("MESH:D006332", "ICD10CM:I51.7")} <= default_edges
    assert ("MESH:D003074", "ICD10CM:R91.1") in default_edges  # Solitary Pulmonary Nodule


def test_linker_uses_hpo_synonyms_and_never_links_within_a_source() -> None:
    def batch(source_id: str, *facts: tuple[str, str, str]) -> SourceBatch:
        rows = [Fact(fact_id=f, title=t, text=x, source_id=source_id, locator=f) for f, t, x in facts]
        return SourceBatch(source=Source(source_id=source_id, name=source_id), facts=rows)

    linker = SynonymLinker()
    linker.link(batch("icd10cm", ("ICD10CM:A", "Enlarged heart", "ICD-10-CM A: Enlarged heart."),
                      ("ICD10CM:B", "Enlarged  heart!", "ICD-10-CM B.")))
    text = "HPO HP:1: Cardiomegaly. Synonyms: Enlarged heart; Big heart."
    hpo = linker.link(batch("hpo", ("HP:1", "Cardiomegaly", text)))
    assert names_of(hpo.facts[0]) == {"cardiomegaly", "enlarged heart", "big heart"}
    assert {(e.src, e.dst) for e in hpo.edges} == {("HP:1", "ICD10CM:A"), ("HP:1", "ICD10CM:B")}
    again = linker.link(batch("hpo", ("HP:2", "Big heart", "HPO HP:2: Big heart.")))
    assert not again.edges  # same source: not a cross-source synonym
    assert linker.link(batch("curated", ("c1", "Cardiomegaly", "A statement."))).edges == []


def test_search_reaches_a_synonym_in_another_source(tmp_path: Path) -> None:
    kb = KnowledgeBase.open(tmp_path / "kb", corpus="curated")
    linker = SynonymLinker()
    for b in batches("default"):
        if b.source.source_id in ("icd10cm", "mesh"):
            kb.add_batch(linker.link(b))
    hits = {h.fact_id: h for h in kb.search("I51.7", k=8)}  # the code puts ICD-10-CM I51.7 first
    assert "ICD10CM:I51.7" in hits
    assert hits["MESH:D006332"].via_edge == "synonym_of"  # reached only through the cross-source edge
