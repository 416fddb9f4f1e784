"""Knowledge layer: real embedder, real FAISS, real SQLite, on small stores under tmp_path."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from knowledge.api import KnowledgeBase
from knowledge.corpus import curated
from knowledge.models import KnowledgeHit, SourceValidationError
from knowledge.sources import packages
from knowledge.vector_index import VectorIndex

MD_SOURCE = """# Local protocol

## Rib fracture reporting protocol
id: local-rib-protocol
reference: Local radiology department protocol 2026
codes: ICD-10-CM:S22.39XA

Our department reports every acute rib fracture with its rib number and side and recommends a dedicated oblique
rib series only when the result changes management.
"""


@pytest.fixture(scope="module")
def kb(tmp_path_factory: pytest.TempPathFactory) -> KnowledgeBase:
    return KnowledgeBase.open(tmp_path_factory.mktemp("kb"), corpus="curated")


def test_curated_corpus_is_referenced_and_large_enough() -> None:
    batch = curated()
    assert len(batch.facts) >= 60
    assert all(f.reference and f.locator.startswith("https://") for f in batch.facts)
    ids = {f.fact_id for f in batch.facts}
    dangling = [e for e in batch.edges if e.type != "coded_as" and e.dst not in ids]
    assert not dangling


def test_search_returns_cited_hits(kb: KnowledgeBase) -> None:
    hits = kb.search("what is the cardiothoracic ratio threshold for cardiomegaly", k=5)
    assert hits and isinstance(hits[0], KnowledgeHit)
    assert "cxr-ctr-threshold" in [h.fact_id for h in hits]
    top = hits[0]
    assert top.source_id == "curated" and top.license and top.locator.startswith("https://doi.org/")
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_lexical_dense_and_misspelling(kb: KnowledgeBase) -> None:
    assert kb.search("Light's criteria exudate", k=3, mode="lexical")[0].fact_id == "cxr-effusion-lights"
    assert "cxr-effusion-definition" in [h.fact_id for h in kb.search("fluid around the lung", k=5, mode="dense")]
    assert any(h.fact_id.startswith("cxr-pneumothorax") for h in kb.search("pnuemothorax", k=3, mode="lexical"))


def test_graph_expansion_reaches_codes(tmp_path: Path) -> None:
    kb = KnowledgeBase.open(tmp_path, corpus="curated")
    kb.add_batch(packages.icd10cm({"I51.7", "I51.8"}))
    kb.add_batch(packages.hpo({"HP:0001640"}))
    hits = kb.search("cardiomegaly", k=10)
    ids = {h.fact_id: h for h in hits}
    assert "ICD10CM:I51.7" in ids and "HP:0001640" in ids
    # the codes are also reachable purely by the coded_as edges when they are not direct hits
    expanded = kb._expand(kb.search("cardiomegaly", k=1, expand=False), k=10)
    assert {h.via_edge for h in expanded if h.fact_id in ("ICD10CM:I51.7", "HP:0001640")} == {"coded_as"}
    assert ids["ICD10CM:I51.7"].source_name == "ICD-10-CM" and ids["ICD10CM:I51.7"].locator == "ICD-10-CM I51.7"


def test_cli_add_markdown_then_search_cites_it(tmp_path: Path) -> None:
    from agent.cli import app

    store = tmp_path / "store"
    KnowledgeBase.open(store, corpus="curated").close()
    src = tmp_path / "protocol.md"
    src.write_text(MD_SOURCE, encoding="utf-8")
    runner = CliRunner()
    res = runner.invoke(app, ["knowledge", "add", str(src), "--name", "local protocol", "--license", "internal",
                              "--store", str(store)])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout.strip().splitlines()[-1])["added"] == 1
    res = runner.invoke(app, ["knowledge", "search", "how do we report rib fractures", "--k", "3", "--json",
                              "--store", str(store)])
    assert res.exit_code == 0, res.output
    hits = json.loads(res.stdout)
    assert hits[0]["fact_id"] == "local-rib-protocol"
    assert hits[0]["source_name"] == "local protocol" and hits[0]["license"] == "internal"
    assert hits[0]["locator"] == f"{src}:3"
    res = runner.invoke(app, ["knowledge", "list", "--store", str(store)])
    assert "local protocol" in res.stdout
    res = runner.invoke(app, ["knowledge", "remove", "local protocol", "--store", str(store)])
    assert res.exit_code == 0
    kb = KnowledgeBase.open(store)
    assert "local-rib-protocol" not in [h.fact_id for h in kb.search("rib fracture protocol", k=5)]
    assert kb.vectors.ntotal == kb.store.count_facts() == len(curated().facts)


def test_validation_errors_carry_line_numbers(tmp_path: Path, kb: KnowledgeBase) -> None:
    bad_md = tmp_path / "bad.md"
    bad_md.write_text(
        "## Good\n\nSome text.\n\n## Empty section\ncodes: ICD-10-CM:J18.9\n\n## Codes\ncodes: XYZ 1\n\nx\n"
    )
    with pytest.raises(SourceValidationError) as err:
        kb.add_file(bad_md, name="bad md")
    assert {i.line for i in err.value.issues} == {5, 9}
    bad_csv = tmp_path / "bad.csv"
    bad_csv.write_text("id,title,text\na,A,fine\nb,B,\n")
    with pytest.raises(SourceValidationError) as err:
        kb.add_file(bad_csv, name="bad csv")
    assert [i.line for i in err.value.issues] == [3]
    bad_jsonl = tmp_path / "bad.jsonl"
    bad_jsonl.write_text('{"text": "ok"}\n{not json}\n{"txt": "typo"}\n')
    with pytest.raises(SourceValidationError) as err:
        kb.add_file(bad_jsonl, name="bad jsonl")
    assert [i.line for i in err.value.issues] == [2, 3, 3]
    assert kb.store.find_source("bad md") is None


def test_csv_jsonl_obo_sources(tmp_path: Path) -> None:
    kb = KnowledgeBase.open(tmp_path / "s", corpus="curated")
    csv_file = tmp_path / "f.csv"
    csv_file.write_text("id,title,text,codes\nc1,Kerley lines,Kerley B lines are short horizontal septal lines at the "
                        "lung bases,ICD-10-CM:J81.0\n")
    jsonl_file = tmp_path / "f.jsonl"
    jsonl_file.write_text(json.dumps({"id": "j1", "text": "Azygos lobe is a normal variant fissure.",
                                      "url": "https://example.org/azygos"}) + "\n")
    obo_file = tmp_path / "f.obo"
    obo_file.write_text('format-version: 1.2\ndata-version: test/1\n\n[Term]\nid: X:1\nname: Bochdalek hernia\n'
                        'def: "A posterolateral congenital diaphragmatic hernia." []\nsynonym: "BH" EXACT []\n')
    assert kb.add_file(csv_file, name="csv") == 1
    assert kb.add_file(jsonl_file, name="jsonl") == 1
    assert kb.add_file(obo_file, name="obo") == 1
    assert kb.search("Kerley B lines", k=1)[0].fact_id == "c1"
    assert kb.search("azygos lobe variant", k=1)[0].locator == "https://example.org/azygos"
    hit = kb.search("Bochdalek diaphragmatic hernia", k=1)[0]
    assert hit.fact_id == "X:1" and hit.source_version == "test/1"


def test_index_survives_lost_or_stale_file(tmp_path: Path) -> None:
    kb = KnowledgeBase.open(tmp_path, corpus="curated")
    n = kb.store.count_facts()
    assert not list(tmp_path.glob("*.tmp*"))
    kb.close()
    (tmp_path / "index.faiss").unlink()  # as if a crash lost the file: the store's vectors rebuild it
    kb = KnowledgeBase.open(tmp_path)
    assert kb.vectors.ntotal == n
    assert kb.search("tension pneumothorax", k=1)[0].fact_id == "cxr-pneumothorax-tension"


def test_hnsw_matches_flat_on_small_data(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2000, 32)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    ids = np.arange(10, 2010, dtype=np.int64)
    flat, hnsw = VectorIndex(tmp_path / "f.faiss", 32), VectorIndex(tmp_path / "h.faiss", 32)
    flat.rebuild(ids, x, "flat")
    hnsw.rebuild(ids, x, "hnsw")
    _, a = flat.search(x[:50], 10)
    _, b = hnsw.search(x[:50], 10)
    recall = np.mean([len(set(r) & set(s)) / 10 for r, s in zip(a, b, strict=True)])
    assert recall >= 0.9
    assert flat.remove(ids[:5]) and flat.ntotal == 1995
    assert not hnsw.remove(ids[:5])  # HNSW cannot delete: the knowledge base rebuilds instead
    flat.save()
    loaded = VectorIndex(tmp_path / "f.faiss", 32)
    assert loaded.load() and loaded.ntotal == 1995


def test_query_preparation() -> None:
    from knowledge.query import code_candidates, expand_abbreviations

    assert "solitary pulmonary nodule" in expand_abbreviations("SPN follow-up")
    assert expand_abbreviations("pleural fluid") == "pleural fluid"
    assert code_candidates("is J93.11 the same as hp:0002107 or D011030?") == [
        "ICD10CM:J93.11", "HP:0002107", "MESH:D011030"
    ]


def test_exact_code_lookup_comes_first(tmp_path: Path) -> None:
    kb = KnowledgeBase.open(tmp_path, corpus="curated")
    kb.add_batch(packages.icd10cm({"J93.11", "J93.12", "J98.11"}))
    assert kb.search("J93.11", k=3)[0].fact_id == "ICD10CM:J93.11"
    assert kb.search("J98.11", k=3)[0].fact_id == "ICD10CM:J98.11"


def test_large_store_switches_to_hnsw_and_still_removes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import knowledge.api
    import knowledge.vector_index

    monkeypatch.setattr(knowledge.vector_index, "HNSW_THRESHOLD", 50)
    monkeypatch.setattr(knowledge.api, "HNSW_THRESHOLD", 50)
    kb = KnowledgeBase.open(tmp_path, corpus="curated")
    assert kb.stats()["index"]["kind"] == "hnsw"
    src = tmp_path / "p.md"
    src.write_text(MD_SOURCE, encoding="utf-8")
    kb.add_file(src, name="local")
    assert kb.search("rib fracture reporting protocol", k=1)[0].fact_id == "local-rib-protocol"
    kb.remove("local")  # HNSW cannot delete ids: the index is rebuilt from the stored vectors
    assert kb.vectors.ntotal == kb.store.count_facts() == len(curated().facts)
    assert "local-rib-protocol" not in [h.fact_id for h in kb.search("rib fracture reporting protocol", k=5)]
