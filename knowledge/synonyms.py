"""Cross-source `synonym_of` edges: terms of different sources with the same name are the same concept.

ICD-10-CM descriptions, HPO names and synonyms, and MeSH descriptor names are compared after normalisation
(case, punctuation, spacing); a later batch's fact gets a `synonym_of` edge to each earlier fact of another source
with an equal name. So "Cardiomegaly" in MeSH links to HP:0001640 and ICD-10-CM I51.7, and graph expansion from
any of them reaches the others. Curated facts are statements, not term names: they link through `coded_as`.
"""

from __future__ import annotations

import re
from collections import defaultdict

from knowledge.models import Edge, Fact, SourceBatch

NAMED_SOURCES = ("icd10cm", "hpo", "mesh")
SYNONYMS_IN_TEXT = re.compile(r"Synonyms: ([^.]*)\.")  # how knowledge.sources.obo writes HPO synonyms
NON_WORD = re.compile(r"[^a-z0-9]+")


def normalise_name(name: str) -> str:
    return NON_WORD.sub(" ", name.lower()).strip()


def names_of(fact: Fact) -> set[str]:
    names = {fact.title or ""}
    match = SYNONYMS_IN_TEXT.search(fact.text)
    if match:
        names.update(match.group(1).split("; "))
    return {n for n in (normalise_name(x) for x in names) if n}


class SynonymLinker:
    """Feed batches in build order; each named-source batch comes back with its synonym_of edges added."""

    def __init__(self) -> None:
        self._seen: dict[str, set[tuple[str, str]]] = defaultdict(set)  # name -> {(source_id, fact_id)}

    def link(self, batch: SourceBatch) -> SourceBatch:
        if batch.source.source_id not in NAMED_SOURCES:
            return batch
        edges: list[Edge] = []
        for fact in batch.facts:
            names = names_of(fact)
            targets = {fid for name in names for sid, fid in self._seen[name] if sid != fact.source_id}
            edges += [Edge(src=fact.fact_id, dst=target, type="synonym_of") for target in sorted(targets)]
        for fact in batch.facts:
            for name in names_of(fact):
                self._seen[name].add((fact.source_id, fact.fact_id))
        return batch.model_copy(update={"edges": [*batch.edges, *edges]}) if edges else batch
