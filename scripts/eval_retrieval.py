"""Retrieval quality on knowledge/eval/queries.jsonl: recall@5 and MRR@10 for lexical, dense and hybrid search.

    python scripts/eval_retrieval.py [--store var/knowledge-eval] [--corpus default] [--out knowledge/eval/results.json]

A query counts as found when any of its expected fact ids is in the top k.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from collections import defaultdict
from pathlib import Path

import torch

from knowledge.api import KnowledgeBase

ROOT = Path(__file__).resolve().parent.parent
log = logging.getLogger("eval_retrieval")
SETTINGS = {
    "lexical": {"mode": "lexical", "expand": False},
    "dense": {"mode": "dense", "expand": False},
    "hybrid_no_graph": {"mode": "hybrid", "expand": False},
    "hybrid": {"mode": "hybrid", "expand": True},
}


def evaluate(kb: KnowledgeBase, queries: list[dict], k: int, mode: str, expand: bool) -> dict:
    per_cat: dict[str, list[tuple[bool, float]]] = defaultdict(list)
    misses = []
    latencies = []
    for q in queries:
        t0 = time.perf_counter()
        ids = [h.fact_id for h in kb.search(q["query"], k=10, mode=mode, expand=expand)]  # type: ignore[arg-type]
        latencies.append(time.perf_counter() - t0)
        rank = next((i + 1 for i, f in enumerate(ids) if f in set(q["expected"])), None)
        found = rank is not None and rank <= k
        per_cat[q["category"]].append((found, 1.0 / rank if rank else 0.0))
        if not found:
            misses.append({"qid": q["qid"], "query": q["query"], "expected": q["expected"], "got": ids[:k]})
    allv = [v for vals in per_cat.values() for v in vals]

    def summary(vals: list[tuple[bool, float]]) -> dict:
        return {"n": len(vals), f"recall@{k}": round(sum(f for f, _ in vals) / len(vals), 4),
                "mrr@10": round(sum(r for _, r in vals) / len(vals), 4)}

    lat = sorted(latencies)
    return {**summary(allv), "by_category": {c: summary(v) for c, v in sorted(per_cat.items())},
            "latency_ms_p50": round(1000 * lat[len(lat) // 2], 1), "misses": misses}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--store", type=Path, default=ROOT / "var" / "knowledge-eval")
    ap.add_argument("--corpus", default="default")
    ap.add_argument("--queries", type=Path, default=ROOT / "knowledge" / "eval" / "queries.jsonl")
    ap.add_argument("--out", type=Path, default=ROOT / "knowledge" / "eval" / "results.json")
    ap.add_argument("--k", type=int, default=5)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    torch.set_num_threads(1)
    queries = [json.loads(line) for line in args.queries.read_text().splitlines() if line.strip()]
    kb = KnowledgeBase.open(args.store, corpus=args.corpus)
    results = {"queries": len(queries), "k": args.k, "store": kb.stats()}
    for name, setting in SETTINGS.items():
        results[name] = evaluate(kb, queries, args.k, **setting)
        log.info("%s: recall@%d=%.3f mrr=%.3f", name, args.k, results[name][f"recall@{args.k}"],
                 results[name]["mrr@10"])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    log.info("wrote %s", args.out)


if __name__ == "__main__":
    main()
