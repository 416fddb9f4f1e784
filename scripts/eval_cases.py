"""Case-retrieval evaluation on held-out patients: CLIP-style model vs classifier features vs random.

Library: every training-split image in ../shared/data (all four sources). Queries: every validation-split image
(the patients neither the CLIP model nor the classifier saw; tools.classifier.data.patient_split, seed 0).
A retrieved case agrees when its labels contain the query's diagnosis (knowledge/cases/labels.py).

Metrics per query source: precision@5 of label agreement, precision@1, kNN-vote accuracy (majority diagnosis of
the top 5, ties to the better-ranked), and the random baseline's exact expectation (the share of library cases
that agree). For the CLIP model also text-to-image precision@10 per diagnosis ("chest X-ray: <diagnosis>").

    .venv/bin/python scripts/eval_cases.py [--out knowledge/eval/cases_eval.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from knowledge.cases.embedders import ClassifierFeatureEmbedder, ClipEmbedder
from knowledge.cases.labels import agrees, all_cases
from tools.classifier.cache import cached_images
from tools.classifier.data import DATA_ROOT, all_records, patient_split

K = 5
SOURCES = {"pediatric": "paediatric (Kermany)", "nih": "NIH ChestX-ray14", "covid": "COVID-19 collection",
           "jsrt": "JSRT"}


def knn_vote(diags: list[str]) -> str:
    counts = Counter(diags)
    best = max(counts.values())
    return next(d for d in diags if counts[d] == best)


def per_query_p5(q_emb, l_emb, q_cases, l_cases) -> np.ndarray:  # type: ignore[no-untyped-def]
    top = np.argsort(-(q_emb @ l_emb.T), axis=1)[:, :K]
    return np.array([np.mean([agrees(q.diagnosis, l_cases[j].labels) for j in row]) for q, row in zip(q_cases, top,
                                                                                                      strict=True)])


def paired_bootstrap(a: np.ndarray, b: np.ndarray, patients: list[str], n: int = 2000, seed: int = 0) -> dict:
    """95% interval of mean(a) - mean(b), resampling patients (their queries move together)."""
    groups: dict[str, list[int]] = {}
    for i, p in enumerate(patients):
        groups.setdefault(p, []).append(i)
    keys = list(groups)
    diff_sum = np.array([float(np.sum(a[groups[k]] - b[groups[k]])) for k in keys])
    count = np.array([len(groups[k]) for k in keys])
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(keys), size=(n, len(keys)))
    stats = diff_sum[draws].sum(axis=1) / count[draws].sum(axis=1)
    return {"mean_difference": round(float(np.mean(a - b)), 4), "ci95": [round(float(np.percentile(stats, 2.5)), 4),
            round(float(np.percentile(stats, 97.5)), 4)], "resamples": n, "unit": "patient"}


def retrieval_metrics(q_emb, l_emb, q_cases, l_cases, q_sources) -> dict:  # type: ignore[no-untyped-def]
    top = np.argsort(-(q_emb @ l_emb.T), axis=1)[:, :K]
    out = {}
    for src in [*SOURCES, "all"]:
        idx = [i for i, s in enumerate(q_sources) if src in ("all", s)]
        if not idx:
            continue
        p5 = [np.mean([agrees(q_cases[i].diagnosis, l_cases[j].labels) for j in top[i]]) for i in idx]
        p1 = [agrees(q_cases[i].diagnosis, l_cases[top[i][0]].labels) for i in idx]
        vote = [knn_vote([l_cases[j].diagnosis for j in top[i]]) == q_cases[i].diagnosis for i in idx]
        out[src] = {"queries": len(idx), "precision_at_5": round(float(np.mean(p5)), 4),
                    "precision_at_1": round(float(np.mean(p1)), 4),
                    "knn5_vote_accuracy": round(float(np.mean(vote)), 4)}
    return out


def random_baseline(q_cases, l_cases, q_sources) -> dict:  # type: ignore[no-untyped-def]
    label_sets = [set(c.labels) for c in l_cases]
    share: dict[str, float] = {}
    for d in {c.diagnosis for c in q_cases}:
        share[d] = float(np.mean([d in s for s in label_sets]))
    diag_freq = Counter(c.diagnosis for c in l_cases)
    majority = diag_freq.most_common(1)[0][0]
    out = {}
    for src in [*SOURCES, "all"]:
        idx = [i for i, s in enumerate(q_sources) if src in ("all", s)]
        if idx:
            out[src] = {"queries": len(idx), "precision_at_5": round(float(np.mean([share[q_cases[i].diagnosis]
                                                                                   for i in idx])), 4),
                        "knn5_vote_accuracy_majority_class": round(float(np.mean([q_cases[i].diagnosis == majority
                                                                                  for i in idx])), 4)}
    return out


def text_search(clip: ClipEmbedder, l_emb: np.ndarray, l_cases) -> dict:  # type: ignore[no-untyped-def]
    diags = [d for d, n in Counter(c.diagnosis for c in l_cases).most_common() if n >= 10]
    q = clip.encode_texts([f"Chest X-ray. Finding: {d}." for d in diags])
    top = np.argsort(-(q @ l_emb.T), axis=1)[:, :10]
    res = {d: round(float(np.mean([d in l_cases[j].labels for j in top[i]])), 3) for i, d in enumerate(diags)}
    base = {d: round(float(np.mean([d in c.labels for c in l_cases])), 3) for d in diags}
    return {"precision_at_10": res, "random_precision": base,
            "mean_precision_at_10": round(float(np.mean(list(res.values()))), 4),
            "mean_random": round(float(np.mean(list(base.values()))), 4)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "knowledge/eval/cases_eval.json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    start = time.time()
    records = all_records(DATA_ROOT)
    is_val = patient_split(records, seed=args.seed)
    infos = all_cases(DATA_ROOT)
    cases = [infos[r.path] for r in records]
    images = cached_images([r.path for r in records])
    lib, qry = np.flatnonzero(~is_val), np.flatnonzero(is_val)
    q_cases, l_cases = [cases[i] for i in qry], [cases[i] for i in lib]
    q_sources = [records[i].source for i in qry]

    clip, clf = ClipEmbedder(), ClassifierFeatureEmbedder()
    result: dict = {"split": f"tools.classifier.data.patient_split(seed={args.seed}): library = train split, "
                             "queries = held-out patients",
                    "library_cases": len(lib), "queries": len(qry), "k": K, "agreement": "retrieved labels "
                    "contain the query diagnosis", "embedders": {}}
    per_query = {}
    for emb in (clip, clf):
        t0 = time.time()
        all_emb = np.concatenate([emb.encode_frames(list(images[i : i + 256])) for i in range(0, len(images), 256)])
        ms = (time.time() - t0) / len(images) * 1000
        res = retrieval_metrics(all_emb[qry], all_emb[lib], q_cases, l_cases, q_sources)
        res["embed_ms_per_image_cpu"] = round(ms, 1)
        per_query[emb.model_id] = per_query_p5(all_emb[qry], all_emb[lib], q_cases, l_cases)
        if emb is clip:
            res["text_to_image"] = text_search(clip, all_emb[lib], l_cases)
        result["embedders"][emb.model_id] = res
        print(emb.model_id, json.dumps(res["all"]), flush=True)
    result["embedders"]["random"] = random_baseline(q_cases, l_cases, q_sources)
    patients = [records[i].patient for i in qry]
    result["clip_minus_classifier_precision_at_5"] = {
        src: paired_bootstrap(*(per_query[m][idx] for m in (clip.model_id, clf.model_id)),
                              [patients[i] for i in idx])
        for src in [*SOURCES, "all"]
        if len(idx := [i for i, s in enumerate(q_sources) if src in ("all", s)])
    }
    scores = {m: r["all"]["precision_at_5"] for m, r in result["embedders"].items() if m != "random"}
    result["best_embedder_precision_at_5"] = max(scores, key=scores.get)
    result["seconds"] = round(time.time() - start)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({m: r.get("all") for m, r in result["embedders"].items()}, indent=2))
    print("best:", result["best_embedder_precision_at_5"])


if __name__ == "__main__":
    main()
