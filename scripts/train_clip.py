"""Train the CLIP-style case-retrieval model (knowledge/cases/weights/cxr-clip.pt), seeded, on this CPU.

Pairs: every training image in ../shared/data with its text (COVID-collection clinical notes; label sentences for
the paediatric, NIH and JSRT images; knowledge/cases/labels.py). Split: the classifier's patient-grouped
stratified split (tools/classifier/data.patient_split, same seed), so the held-out patients of
scripts/eval_cases.py were seen by neither this model nor the classifier.

Steps: images decoded once to 160x160 grey (the classifier's cache) -> frozen ImageNet stem + blocks[0:5] run
once and cached -> captions embedded once by the frozen MiniLM -> epochs train blocks[5:], the conv head and both
projections with a multi-positive symmetric InfoNCE (source-balanced batches).

    .venv/bin/python scripts/train_clip.py [--epochs 12] [--threads 1] [--out knowledge/cases/weights/cxr-clip.pt]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from knowledge.cases.clip import DEFAULT_WEIGHTS, MODEL_ID, CxrClip, grey_batch, multi_positive_clip_loss, save_clip
from knowledge.cases.labels import all_cases
from knowledge.embedder import load_embedder
from tools.classifier.cache import cached_images
from tools.classifier.data import DATA_ROOT, all_records, patient_split

log = logging.getLogger("train_clip")


@torch.no_grad()
def cached_trunk(model: CxrClip, images: np.ndarray, batch: int = 64) -> torch.Tensor:
    model.eval()
    out = []
    t0 = time.time()
    for i in range(0, len(images), batch):
        out.append(model.trunk(grey_batch(images[i : i + batch])).half())
        if i and i % (batch * 20) == 0:
            log.info("trunk %d/%d (%.0f s)", i, len(images), time.time() - t0)
    return torch.cat(out)


@torch.no_grad()
def embed_from_trunk(model: CxrClip, feats: torch.Tensor, batch: int = 256) -> np.ndarray:
    model.eval()
    out = [model.image_from_trunk(feats[i : i + batch].float()) for i in range(0, len(feats), batch)]
    return torch.cat(out).numpy()


def quick_p5(query: np.ndarray, library: np.ndarray, q_diag: list[str], lib_labels: list[list[str]]) -> float:
    sims = query @ library.T
    top = np.argsort(-sims, axis=1)[:, :5]
    return float(np.mean([[d in lib_labels[j] for j in row] for d, row in zip(q_diag, top, strict=True)]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=DEFAULT_WEIGHTS)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    start = time.time()

    records = all_records(DATA_ROOT)
    is_val = patient_split(records, seed=args.seed)
    infos = all_cases(DATA_ROOT)
    cases = [infos[r.path] for r in records]
    train_idx, val_idx = np.flatnonzero(~is_val), np.flatnonzero(is_val)
    log.info("records %d: train %d, val %d", len(records), len(train_idx), len(val_idx))

    images = cached_images([r.path for r in records])
    log.info("images decoded (%.0f s)", time.time() - start)

    captions = sorted({cases[i].text for i in train_idx})
    caption_id = {c: i for i, c in enumerate(captions)}
    text_vecs = torch.from_numpy(load_embedder().encode(captions, batch_size=64))
    train_cap = torch.tensor([caption_id[cases[i].text] for i in train_idx])
    log.info("%d distinct captions embedded (%.0f s)", len(captions), time.time() - start)

    model = CxrClip()
    model.load_imagenet()
    params = model.freeze_trunk()
    feats = cached_trunk(model, images)
    log.info("trunk cached %s (%.0f s)", tuple(feats.shape), time.time() - start)
    train_feats, val_feats = feats[train_idx], feats[val_idx]

    source = [records[i].source for i in train_idx]
    counts = {s: source.count(s) for s in set(source)}
    weights = torch.tensor([counts[s] ** -0.5 for s in source], dtype=torch.float64)
    gen = torch.Generator().manual_seed(args.seed)
    steps_per_epoch = max(1, len(train_idx) // args.batch)
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.05)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=args.epochs * steps_per_epoch,
                                                pct_start=0.1)
    val_diag = [cases[i].diagnosis for i in val_idx]
    train_labels = [cases[i].labels for i in train_idx]
    history = []
    for epoch in range(args.epochs):
        model.train()
        model.visual.conv_stem.eval()
        for m in model.visual.blocks[:5]:
            m.eval()
        total = 0.0
        for _ in range(steps_per_epoch):
            b = torch.multinomial(weights, args.batch, replacement=True, generator=gen)
            caps = train_cap[b]
            uniq, inverse = torch.unique(caps, return_inverse=True)
            img = model.image_from_trunk(train_feats[b].float())
            txt = model.encode_text(text_vecs[uniq])
            same = inverse[:, None] == torch.arange(len(uniq))[None, :]
            loss = multi_positive_clip_loss(img, txt, same, model.logit_scale.exp().clamp(max=100))
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss)
        val_emb = embed_from_trunk(model, val_feats)
        train_emb = embed_from_trunk(model, train_feats)
        p5 = quick_p5(val_emb, train_emb, val_diag, train_labels)
        history.append({"epoch": epoch + 1, "loss": total / steps_per_epoch, "val_p5": p5,
                        "elapsed_s": round(time.time() - start)})
        log.info("epoch %d loss %.4f val P@5 %.3f (%.0f s)", epoch + 1, total / steps_per_epoch, p5,
                 time.time() - start)

    meta = {
        "model_id": MODEL_ID, "seed": args.seed, "epochs": args.epochs, "batch": args.batch, "lr": args.lr,
        "threads": args.threads, "split": "tools.classifier.data.patient_split(seed) (StratifiedGroupKFold(5) fold 0)",
        "n_train": len(train_idx), "n_val": len(val_idx), "captions": len(captions), "history": history,
        "train_seconds": round(time.time() - start),
    }
    save_clip(model, args.out, meta)
    (args.out.parent / "cxr-clip.json").write_text(json.dumps(meta, indent=2) + "\n")
    log.info("saved %s (%.0f s)", args.out, time.time() - start)


if __name__ == "__main__":
    main()
