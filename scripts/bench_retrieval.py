"""Retrieval latency and approximate-index quality.

    python scripts/bench_retrieval.py [--store var/knowledge-eval] [--sizes 100000,1000000] [--out ...json]

1. Real corpus: end-to-end `KnowledgeBase.search` latency (query embedding + BM25 + FAISS + graph expansion).
2. Synthetic corpora (clustered unit vectors, 384-d): exact IndexFlatIP versus the approximate index
   (HNSW M=32/efConstruction=80 as used by knowledge.vector_index, and IVF-Flat for the largest size):
   build time, memory, single-query latency p50/p95 and recall@10 against exact.
3. End-to-end estimate at each synthetic size: measured query embedding + BM25 over as many synthetic
   documents + the approximate FAISS search.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

import faiss
import numpy as np
import torch

from knowledge.embedder import load_embedder
from knowledge.lexical import BM25Index
from knowledge.vector_index import HNSW_EF_CONSTRUCTION, HNSW_EF_SEARCH, HNSW_M

ROOT = Path(__file__).resolve().parent.parent
log = logging.getLogger("bench_retrieval")
DIM = 384
N_QUERIES = 200


def pct(values: list[float]) -> dict:
    a = np.asarray(values) * 1000
    return {"p50_ms": round(float(np.percentile(a, 50)), 3), "p95_ms": round(float(np.percentile(a, 95)), 3)}


def synthetic(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((2000, DIM)).astype(np.float32)
    x = np.empty((n, DIM), dtype=np.float32)
    for start in range(0, n, 100_000):
        stop = min(n, start + 100_000)
        x[start:stop] = centers[rng.integers(0, len(centers), stop - start)]
        x[start:stop] += 0.8 * rng.standard_normal((stop - start, DIM)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    q = x[rng.choice(n, N_QUERIES, replace=False)]
    q = q + 0.02 * rng.standard_normal(q.shape).astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    return x, q


def time_queries(index: faiss.Index, q: np.ndarray, k: int = 10) -> tuple[list[float], np.ndarray]:
    lat, out = [], []
    for row in q:
        t0 = time.perf_counter()
        _, ids = index.search(row[None, :], k)
        lat.append(time.perf_counter() - t0)
        out.append(ids[0])
    return lat, np.stack(out)


def recall(approx: np.ndarray, exact: np.ndarray) -> float:
    return float(np.mean([len(set(a) & set(e)) / len(e) for a, e in zip(approx, exact, strict=True)]))


def build(kind: str, x: np.ndarray) -> tuple[faiss.Index, float]:
    t0 = time.perf_counter()
    if kind == "flat":
        index = faiss.IndexFlatIP(DIM)
    elif kind == "hnsw":
        index = faiss.IndexHNSWFlat(DIM, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
    else:  # ivf
        nlist = int(4 * np.sqrt(len(x)))
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(DIM), DIM, nlist, faiss.METRIC_INNER_PRODUCT)
        rng = np.random.default_rng(1)
        index.train(x[rng.choice(len(x), min(len(x), 40 * nlist), replace=False)])
    index.add(x)
    return index, time.perf_counter() - t0


def bench_size(n: int, kinds: list[str]) -> dict:
    log.info("synthetic %d x %d", n, DIM)
    x, q = synthetic(n)
    out: dict = {"n": n, "dim": DIM}
    exact_ids = None
    for kind in ["flat", *kinds]:
        index, build_s = build(kind, x)
        memory_mb = round(faiss.serialize_index(index).nbytes / 2**20, 1)
        faiss.omp_set_num_threads(1)
        settings = [None]
        if kind == "hnsw":
            settings = [64, HNSW_EF_SEARCH, 128, 256]
        elif kind == "ivf":
            settings = [8, 16, 32, 64]
        for s in settings:
            if kind == "hnsw":
                index.hnsw.efSearch = s
            elif kind == "ivf":
                index.nprobe = s
            lat, ids = time_queries(index, q)
            if kind == "flat":
                exact_ids = ids
            name = kind if s is None else f"{kind}_{'ef' if kind == 'hnsw' else 'nprobe'}{s}"
            out[name] = {"build_s": round(build_s, 1), "memory_mb": memory_mb, **pct(lat),
                         "recall@10_vs_exact": round(recall(ids, exact_ids), 4)}
            log.info("%s %s", name, out[name])
        faiss.omp_set_num_threads(2)
        del index
    return out


def bm25_latency(n: int, words: list[str]) -> dict:
    rng = np.random.default_rng(2)
    docs = [" ".join(rng.choice(words, 40)) for _ in range(n)]
    bm25 = BM25Index()
    t0 = time.perf_counter()
    bm25.fit(list(range(n)), docs)
    fit_s = time.perf_counter() - t0
    lat = []
    for _ in range(100):
        query = " ".join(rng.choice(words, 5))
        t0 = time.perf_counter()
        bm25.search(query, 50)
        lat.append(time.perf_counter() - t0)
    return {"fit_s": round(fit_s, 1), **pct(lat)}


def time_uncached(fn: Callable[[str], object], embedder, queries: list[str]) -> list[float]:  # type: ignore[no-untyped-def]
    """Seconds per query; the embedder's text cache is emptied first so it never answers a timed query."""
    lat = []
    for qtext in queries:
        embedder.clear_cache()
        t0 = time.perf_counter()
        fn(qtext)
        lat.append(time.perf_counter() - t0)
    return lat


def add_source_timing(n: int, embedder) -> dict:  # type: ignore[no-untyped-def]
    """Time `KnowledgeBase.add_file` for an n-row maintainer CSV on a fresh curated store, and check that a fact
    from the middle of it is the top hit right after (immediately searchable)."""
    import csv
    import tempfile

    from knowledge.api import KnowledgeBase

    rng = np.random.default_rng(3)
    organs = ["lung", "heart", "pleura", "mediastinum", "diaphragm", "rib", "trachea", "hilum"]
    signs = ["opacity", "lucency", "nodule", "effusion", "thickening", "calcification", "band", "shift"]
    with tempfile.TemporaryDirectory() as tmp:
        kb = KnowledgeBase.open(Path(tmp) / "kb", corpus="curated", embedder=embedder)
        path = Path(tmp) / "local.csv"
        with path.open("w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["id", "title", "text", "url"])
            for i in range(n):
                organ, sign = rng.choice(organs), rng.choice(signs)
                text = f"Protocol step {i} for a {organ} {sign}: compare with the prior film."
                if i == n // 2:  # the probe: one distinctive fact among a thousand look-alikes
                    text = "An azygos lobe fissure is a normal variant: report it, do not call it a pneumothorax."
                writer.writerow([f"local-{i}", f"Local protocol {i}: {organ} {sign}", text,
                                 f"https://intranet.example/protocols/{i}"])
        t0 = time.perf_counter()
        added = kb.add_file(path, name="local protocols", license="internal")
        add_s = time.perf_counter() - t0
        probe = n // 2
        hits = kb.search("azygos fissure variant", k=5)
        top = hits[0].fact_id if hits else None
    return {"facts": added, "add_s": round(add_s, 2), "facts_per_s": round(added / add_s, 1),
            "probe_query_top_hit_is_new_fact": top is not None and top.endswith(f"local-{probe}"), "top_hit": top}


def end_to_end_at(n: int, embedder, queries: list[str], words: list[str]) -> dict:  # type: ignore[no-untyped-def]
    """`KnowledgeBase.search` (query embedding, BM25, HNSW, graph expansion, SQLite rows) on a real store holding the
    curated facts plus n synthetic facts. The synthetic facts get random unit vectors instead of MiniLM embeddings
    (embedding 100k texts on this CPU takes most of an hour); everything a query runs through is the real thing."""
    import tempfile

    from knowledge.api import KnowledgeBase
    from knowledge.models import Fact, Source

    rng = np.random.default_rng(4)
    with tempfile.TemporaryDirectory() as tmp:
        kb = KnowledgeBase.open(Path(tmp) / "kb", corpus="curated", embedder=embedder)
        source = Source(source_id="synthetic", name="synthetic facts", license="none")
        kb.store.upsert_source(source)
        facts = [Fact(fact_id=f"syn-{i}", text=" ".join(rng.choice(words, 40)), source_id="synthetic",
                      locator=f"synthetic:{i}") for i in range(n)]
        vecs = rng.standard_normal((n, embedder.dim)).astype(np.float32)
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        kb.store.insert_facts(facts, vecs)
        t0 = time.perf_counter()
        kb._reindex()  # past the threshold: HNSW, as a real store of this size would have
        build_s = time.perf_counter() - t0
        kb.search("warm up", k=5)
        by_threads = {}
        for threads in (1, 2):  # 1: the conservative number; 2: what the app uses on this 2-core machine
            torch.set_num_threads(threads)
            by_threads[f"torch_threads_{threads}"] = pct(time_uncached(lambda q: kb.search(q, k=5), embedder, queries))
        torch.set_num_threads(1)
        facts_total = kb.store.count_facts()
        kind = kb.stats()["index"]
    return {"facts": facts_total, "index": kind, "index_build_s": round(build_s, 1), **by_threads}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--store", type=Path, default=ROOT / "var" / "knowledge-eval")
    ap.add_argument("--sizes", default="100000,1000000")
    ap.add_argument("--out", type=Path, default=ROOT / "knowledge" / "eval" / "bench.json")
    ap.add_argument("--n-queries", type=int, default=N_QUERIES, help="synthetic queries per index")
    ap.add_argument("--skip-real", action="store_true", help="skip the real-corpus part")
    ap.add_argument("--end-to-end", type=int, default=100_000,
                    help="KnowledgeBase.search latency on a store of this many (synthetic) facts; 0 to skip")
    ap.add_argument("--add-facts", type=int, default=1000, help="time adding a maintainer CSV of this many facts")
    args = ap.parse_args()
    globals()["N_QUERIES"] = args.n_queries
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    torch.set_num_threads(1)
    faiss.omp_set_num_threads(2)
    result: dict = {"cpu_threads_query": 1, "load_average_at_start": [round(x, 2) for x in os.getloadavg()]}
    queries = [json.loads(s)["query"] for s in (ROOT / "knowledge/eval/queries.jsonl").read_text().splitlines()]
    embedder = load_embedder()
    result["query_embedding"] = pct(time_uncached(lambda q: embedder.encode([q]), embedder, queries))
    if args.store.exists() and not args.skip_real:
        from knowledge.api import KnowledgeBase

        kb = KnowledgeBase.open(args.store)
        kb.search("warm up", k=5)
        lat = time_uncached(lambda q: kb.search(q, k=5), embedder, queries)
        result["real_corpus"] = {"facts": kb.store.count_facts(), "end_to_end_hybrid": pct(lat)}
        words = sorted({w for t in kb.store.all_texts()[1] for w in t.lower().split() if w.isalpha()})
    else:
        words = [f"w{i}" for i in range(20000)]
    if args.end_to_end:
        words = sorted({w for q in queries for w in q.lower().split() if w.isalpha()} | {f"w{i}" for i in range(5000)})
        result[f"end_to_end_{args.end_to_end}_facts"] = end_to_end_at(args.end_to_end, embedder, queries, words)
        log.info("end to end %s", result[f"end_to_end_{args.end_to_end}_facts"])
    if args.add_facts:
        result[f"add_{args.add_facts}_fact_csv"] = add_source_timing(args.add_facts, embedder)
        log.info("add %s", result[f"add_{args.add_facts}_fact_csv"])
    for n in (int(s) for s in args.sizes.split(",") if s):
        kinds = ["hnsw"] if n <= 300_000 else ["ivf"]
        entry = bench_size(n, kinds)
        entry["bm25"] = bm25_latency(n, words) if n <= 300_000 else None
        if entry["bm25"]:
            approx = entry.get(f"hnsw_ef{HNSW_EF_SEARCH}", entry["flat"])
            entry["end_to_end_estimate_p50_ms"] = round(
                result["query_embedding"]["p50_ms"] + entry["bm25"]["p50_ms"] + approx["p50_ms"], 2)
        result[f"synthetic_{n}"] = entry
        args.out.write_text(json.dumps(result, indent=2))  # after each size: a long run keeps what it measured
    args.out.write_text(json.dumps(result, indent=2))
    log.info("wrote %s", args.out)


if __name__ == "__main__":
    main()
