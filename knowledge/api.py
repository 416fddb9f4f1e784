"""KnowledgeBase: the one entry point for the agent, the CLI and the UI."""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Literal

import numpy as np

from knowledge import corpus as corpora
from knowledge.embedder import Embedder, load_embedder
from knowledge.lexical import BM25Index
from knowledge.models import KnowledgeHit, Source, SourceBatch, SourceValidationError, ValidationIssue
from knowledge.query import code_candidates, expand_abbreviations
from knowledge.sources.markdown import parse_markdown
from knowledge.sources.medquad import looks_like_medquad, medquad
from knowledge.sources.obo import parse_obo
from knowledge.sources.tabular import parse_tabular
from knowledge.store import Store
from knowledge.vector_index import HNSW_THRESHOLD, VectorIndex, index_kind
from tools.home import medagent_home

log = logging.getLogger(__name__)
Mode = Literal["hybrid", "lexical", "dense"]
RRF_K = 60
CANDIDATES = 50
EDGE_DECAY = 0.7
EXPAND_SEEDS = 3
SUFFIXES = (".md", ".markdown", ".csv", ".jsonl", ".jsonl.gz", ".csv.gz", ".obo")


class KnowledgeBase:
    """Facts + edges in SQLite, vectors in FAISS, BM25 in memory; hybrid search with graph expansion."""

    def __init__(self, root: Path, embedder: Embedder) -> None:
        self.root = root
        self.embedder = embedder
        self.store = Store(root / "knowledge.sqlite")
        self.vectors = VectorIndex(root / "index.faiss", embedder.dim)
        self._bm25: BM25Index | None = None
        self._lock = threading.RLock()

    # opening ------------------------------------------------------------------
    @classmethod
    def open(
        cls, path: Path | str | None = None, corpus: str | None = None, embedder: Embedder | None = None
    ) -> KnowledgeBase:
        """Open (or create) a store; an empty one is built from the built-in corpus, offline.

        corpus: 'curated' (seconds: the repo's radiology facts only), 'default' (curated + the ICD-10-CM, HPO and MeSH
        entries around their codes + chest-related MedQuAD) or 'full'; MEDAGENT_KNOWLEDGE_CORPUS overrides 'default'.
        """
        root = Path(path) if path else medagent_home() / "knowledge"
        kb = cls(root, embedder or load_embedder())
        if kb.store.count_facts() == 0:
            kb.build(corpus or os.environ.get("MEDAGENT_KNOWLEDGE_CORPUS", "default"))
        else:
            kb._load_index()
        return kb

    def _load_index(self) -> None:
        manifest = self.store.manifest()
        count = self.store.count_facts()
        if manifest.get("embedder") not in (None, self.embedder.model_id):
            raise RuntimeError(f"index built with {manifest['embedder']}, not {self.embedder.model_id}: run rebuild")
        if not self.vectors.load() or self.vectors.ntotal != count:
            log.warning(
                "index missing or out of step with the store (%s vs %s facts): rebuilding from stored vectors",
                self.vectors.ntotal,
                count,
            )
            self._reindex()

    def _reindex(self, kind: str | None = None) -> None:
        ids, vecs = self.store.all_vectors(self.embedder.dim)
        self.vectors.rebuild(ids, vecs, kind)
        self._save_index()

    def _save_index(self) -> None:
        self.vectors.save()
        self.store.set_manifest(
            embedder=self.embedder.model_id,
            dim=self.embedder.dim,
            count=self.vectors.ntotal,
            index_kind=index_kind(self.vectors.index),
            index_file=self.vectors.path.name,
        )
        self.store.commit()
        self._bm25 = None

    # building -----------------------------------------------------------------
    def build(self, corpus: str = "default", medquad_file: Path | None = None, progress: bool = False) -> None:
        for batch in corpora.batches(corpus, medquad_file):
            self.add_batch(batch, progress=progress, save=False)
        self._reindex()
        self.store.set_manifest(corpus=corpus)
        self.store.commit()

    def add_batch(self, batch: SourceBatch, progress: bool = False, save: bool = True, replace: bool = True) -> int:
        """Embed and insert a batch; an existing source with the same id is replaced. Returns facts added."""
        with self._lock:
            if replace and self.store.find_source(batch.source.source_id):
                self.remove(batch.source.source_id, save=False)
            clash = {f: s for f, s in self.store.existing_fact_ids(f.fact_id for f in batch.facts).items()}
            if clash:
                some = ", ".join(f"{f} (in {s})" for f, s in list(clash.items())[:5])
                raise SourceValidationError(
                    batch.source.origin or batch.source.source_id,
                    [ValidationIssue(line=0, message=f"fact ids already used: {some}")],
                )
            texts = [f"{f.title}. {f.text}" if f.title else f.text for f in batch.facts]
            vecs = self.embedder.encode(texts, progress=progress)
            self.store.upsert_source(batch.source)
            vids = self.store.insert_facts(batch.facts, vecs)
            self.store.insert_edges(batch.edges, batch.source.source_id)
            self.vectors.add(np.asarray(vids, dtype=np.int64), vecs)
            if save and index_kind(self.vectors.index) == "flat" and self.vectors.ntotal >= HNSW_THRESHOLD:
                self._reindex()  # grown past the crossover: switch to HNSW
            elif save:
                self._save_index()
            self._bm25 = None
            log.info("added %d facts, %d edges from %s", len(vids), len(batch.edges), batch.source.source_id)
            return len(vids)

    def add_file(
        self, path: Path, name: str, license: str | None = None, version: str | None = None, progress: bool = False
    ) -> int:
        """Add a maintainer file (Markdown, CSV, JSONL, OBO, or the MedQuAD JSONL); validates first."""
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(path)
        if not path.name.lower().endswith(SUFFIXES):
            raise SourceValidationError(
                str(path), [ValidationIssue(line=0, message=f"unsupported file type; use {SUFFIXES}")]
            )
        from knowledge.sources.common import slug

        source = Source(source_id=slug(name), name=name, version=version, license=license, origin=str(path))
        lower = path.name.lower()
        if lower.endswith((".md", ".markdown")):
            batch = parse_markdown(path, source)
        elif lower.endswith(".obo"):
            batch = parse_obo(path, source)
        elif looks_like_medquad(path):
            batch = medquad(path)
            batch.source = source.model_copy(update={"license": license or batch.source.license})
            for f in batch.facts:
                f.source_id = source.source_id
        else:
            batch = parse_tabular(path, source)
        return self.add_batch(batch, progress=progress)

    def remove(self, name: str, save: bool = True) -> int:
        with self._lock:
            source_id = self.store.find_source(name)
            if source_id is None:
                raise KeyError(f"no source named {name!r}")
            vids = np.asarray(self.store.vids_of_source(source_id), dtype=np.int64)
            self.store.delete_source(source_id)
            if not self.vectors.remove(vids):
                self.store.commit()
                self._reindex()
            elif save:
                self._save_index()
            self.store.commit()
            self._bm25 = None
            return len(vids)

    def rebuild(self, corpus: str | None = None, progress: bool = False, kind: str | None = None) -> None:
        """corpus given: drop the built-in sources and build that corpus again (maintainer sources stay);
        else re-create the FAISS index from the stored vectors (kind: flat | hnsw | auto)."""
        if corpus:
            for sid in ("curated", "icd10cm", "hpo", "mesh", "medquad"):
                if self.store.find_source(sid):
                    self.remove(sid, save=False)
            for batch in corpora.batches(corpus):
                self.add_batch(batch, progress=progress, save=False)
            self.store.set_manifest(corpus=corpus)
        self._reindex(kind)

    # searching ----------------------------------------------------------------
    def _lexical(self) -> BM25Index:
        if self._bm25 is None:
            bm25 = BM25Index()
            bm25.fit(*self.store.all_texts())
            self._bm25 = bm25
        return self._bm25

    def search(self, query: str, k: int = 5, mode: Mode = "hybrid", expand: bool = True) -> list[KnowledgeHit]:
        if not query.strip() or k <= 0:
            return []
        with self._lock:
            ranked = self._ranked(expand_abbreviations(query), mode)
            scores: dict[int, float] = dict(ranked)
            order = [vid for vid, _ in ranked]
            rows = self.store.hit_rows("vid", order[: max(k, EXPAND_SEEDS)])
            hits = [self._hit(rows[v], scores[v]) for v in order[:k] if v in rows]
            if mode == "hybrid":
                hits = self._exact_codes(query, hits)
            if expand and mode == "hybrid":
                hits = self._expand(hits, k)
            return hits[:k]

    def _ranked(self, query: str, mode: Mode) -> list[tuple[int, float]]:
        dense: list[tuple[int, float]] = []
        lexical: list[tuple[int, float]] = []
        if mode in ("hybrid", "dense"):
            sims, ids = self.vectors.search(self.embedder.encode([query]), CANDIDATES)
            dense = [(int(i), float(s)) for i, s in zip(ids[0], sims[0], strict=True) if i >= 0]
        if mode in ("hybrid", "lexical"):
            lexical = self._lexical().search(query, CANDIDATES)
        if mode != "hybrid":
            return dense or lexical
        fused: dict[int, float] = {}
        for results in (dense, lexical):
            for rank, (vid, _) in enumerate(results):
                fused[vid] = fused.get(vid, 0.0) + 1.0 / (RRF_K + rank + 1)
        top = 2.0 / (RRF_K + 1)
        return sorted(((v, s / top) for v, s in fused.items()), key=lambda x: -x[1])

    def _exact_codes(self, query: str, hits: list[KnowledgeHit]) -> list[KnowledgeHit]:
        """A code written in the query (J93.11, HP:0001640, D006332) puts that entry first."""
        rows = self.store.hit_rows("fact_id", code_candidates(query))
        if not rows:
            return hits
        top = max([h.score for h in hits], default=1.0)
        exact = [self._hit(row, top + 0.01) for row in rows.values()]
        return exact + [h for h in hits if h.fact_id not in rows]

    def _expand(self, hits: list[KnowledgeHit], k: int) -> list[KnowledgeHit]:
        """Follow edges (both ways) from the best hits; neighbours inherit a decayed score."""
        seeds = {h.fact_id: h.score for h in hits[:EXPAND_SEEDS]}
        present = {h.fact_id for h in hits}
        best: dict[str, tuple[float, str]] = {}
        for seed, other, etype in self.store.neighbours(list(seeds)):
            if other in present:
                continue
            score = seeds[seed] * EDGE_DECAY
            if other not in best or best[other][0] < score:
                best[other] = (score, etype)
        rows = self.store.hit_rows("fact_id", list(best))
        extra = [self._hit(rows[f], s, via) for f, (s, via) in best.items() if f in rows]
        return sorted(hits + extra, key=lambda h: -h.score)[:k]

    @staticmethod
    def _hit(row: tuple, score: float, via: str | None = None) -> KnowledgeHit:
        _, fact_id, text, title, source_id, name, version, lic, locator = row
        return KnowledgeHit(
            fact_id=fact_id,
            text=text,
            score=round(score, 4),
            title=title,
            source_id=source_id,
            source_name=name,
            source_version=version,
            license=lic,
            locator=locator,
            via_edge=via,
        )

    # reporting ----------------------------------------------------------------
    def sources(self) -> list[dict]:
        return self.store.sources()

    def stats(self) -> dict:
        m = self.store.manifest()
        return {
            "root": str(self.root),
            "facts": self.store.count_facts(),
            "edges": self.store.count_edges(),
            "sources": len(self.store.sources()),
            "index": {
                "kind": m.get("index_kind"),
                "count": m.get("count"),
                "embedder": m.get("embedder"),
                "dim": m.get("dim"),
            },
            "corpus": m.get("corpus"),
        }

    def close(self) -> None:
        self.store.close()
