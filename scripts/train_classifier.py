"""Train the chest X-ray classifier (tools/weights/classifier.pt), seeded and reproducible on CPU.

Steps: records from ../shared/data -> patient-grouped stratified 80/20 split -> every image decoded once to a
grey uint8 INPUT_SIZE^2 cache (var/cache/classifier) -> frozen ImageNet trunk features cached once -> head
(blocks[5:], conv_head, classifier) fine-tuned with a masked multi-label BCE -> per-label temperature on
validation -> OOD feature model fitted on training features, threshold = validation percentile -> save.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from tools.classifier.cache import CACHE, cached_images
from tools.classifier.calibration import fit_temperature
from tools.classifier.data import LABELS, all_records, label_matrix, patient_split
from tools.classifier.model import (
    CAM_BLOCKS,
    INPUT_SIZE,
    TRUNK_BLOCKS,
    blocks,
    build_model,
    freeze_trunk,
    head_features,
    head_logits,
    load_imagenet,
    to_tensor,
    trunk,
)
from tools.classifier.ood import fit_ood

log = logging.getLogger("train_classifier")
ROOT = Path(__file__).resolve().parents[1]


@torch.no_grad()
def cached_trunk(model: torch.nn.Module, images: np.ndarray, batch: int = 32) -> torch.Tensor:
    """Frozen-trunk outputs, cached in two stages (blocks[0:CAM_BLOCKS], then up to TRUNK_BLOCKS)."""
    key = hashlib.sha256(images[:: max(len(images) // 64, 1)].tobytes()).hexdigest()[:16]
    stage1 = CACHE / f"trunk_{INPUT_SIZE}_{len(images)}_{key}.npy"
    if stage1.exists():
        feats = torch.from_numpy(np.load(stage1))
    else:
        out = []
        for i in tqdm(range(0, len(images), batch), desc="trunk features", mininterval=5):
            out.append(trunk(model, to_tensor(images[i : i + batch]), upto=CAM_BLOCKS).half())
        feats = torch.cat(out)
        np.save(stage1, feats.numpy())
    if TRUNK_BLOCKS == CAM_BLOCKS:
        return feats
    stage2 = CACHE / f"trunk{TRUNK_BLOCKS}_{INPUT_SIZE}_{len(images)}_{key}.npy"
    if stage2.exists():
        return torch.from_numpy(np.load(stage2))
    out = []
    for i in tqdm(range(0, len(feats), 128), desc="trunk features (stage 2)", mininterval=5):
        out.append(blocks(model, feats[i : i + 128].float(), CAM_BLOCKS, TRUNK_BLOCKS).half())
    deep = torch.cat(out)
    np.save(stage2, deep.numpy())
    return deep


def masked_bce(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean over labels of the mean BCE over the samples that annotate that label (NaN = not annotated)."""
    valid = ~torch.isnan(targets)
    y = torch.nan_to_num(targets, nan=0.0)
    loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, y, reduction="none") * valid
    per_label = loss.sum(0) / valid.sum(0).clamp_min(1)
    return per_label[valid.any(0)].mean()


@torch.no_grad()
def run_head(model: torch.nn.Module, feats: torch.Tensor, batch: int = 128) -> tuple[np.ndarray, np.ndarray]:
    model.eval()
    logits, pooled = [], []
    for i in range(0, len(feats), batch):
        f = head_features(model, feats[i : i + batch].float())
        pooled.append(f)
        logits.append(head_logits(model, f))
    return torch.cat(logits).numpy(), torch.cat(pooled).numpy()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=ROOT / "tools" / "weights" / "classifier.pt")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    start = time.time()

    records = all_records()
    is_val = patient_split(records, seed=args.seed)
    y = torch.from_numpy(label_matrix(records))
    log.info("%d records (%d train, %d validation)", len(records), (~is_val).sum(), is_val.sum())
    images = cached_images([r.path for r in records])

    model = build_model()
    load_imagenet(model)
    model.eval()
    feats = cached_trunk(model, images)
    params = freeze_trunk(model)
    train_idx = np.flatnonzero(~is_val)
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=1e-4)
    steps = args.epochs * int(np.ceil(len(train_idx) / args.batch))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=steps, pct_start=0.15)
    gen = torch.Generator().manual_seed(args.seed)
    for epoch in range(args.epochs):
        model.train()
        order = train_idx[torch.randperm(len(train_idx), generator=gen).numpy()]
        total = 0.0
        bar = tqdm(range(0, len(order), args.batch), desc=f"epoch {epoch + 1}/{args.epochs}", mininterval=10)
        for i in bar:
            idx = order[i : i + args.batch]
            x = feats[idx].float()
            loss = masked_bce(head_logits(model, head_features(model, x)), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        val_logits, _ = run_head(model, feats[is_val])
        val_loss = masked_bce(torch.from_numpy(val_logits), y[is_val]).item()
        log.info("epoch %d train loss %.4f val loss %.4f", epoch + 1, total / len(train_idx), val_loss)

    val_logits, val_pooled = run_head(model, feats[is_val])
    _, train_pooled = run_head(model, feats[~is_val])
    yv = y[is_val].numpy()
    temperatures = []
    for j, label in enumerate(LABELS):
        ok = ~np.isnan(yv[:, j])
        temperatures.append(fit_temperature(val_logits[ok, j], yv[ok, j]) if ok.sum() > 10 else 1.0)
        log.info("temperature %s: %.3f", label, temperatures[-1])
    ood = fit_ood(train_pooled)
    ood.threshold = float(np.percentile(ood.score(val_pooled), 99.0))
    log.info("OOD threshold (validation p99): %.3f", ood.threshold)

    state = {k: (v.half() if v.is_floating_point() else v) for k, v in model.state_dict().items()}
    checkpoint = {
        "state_dict": state,
        "labels": list(LABELS),
        "input_size": INPUT_SIZE,
        "temperature": temperatures,
        "ood": ood.to_dict(),
        "config": {**{k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
                   "split": "StratifiedGroupKFold(5) fold 0 by patient", "n_train": int((~is_val).sum()),
                   "n_val": int(is_val.sum()), "train_seconds": round(time.time() - start, 1)},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(checkpoint, args.out)
    log.info("saved %s (%.1f MB) in %.0f s; config %s", args.out, args.out.stat().st_size / 1e6,
             time.time() - start, json.dumps(checkpoint["config"]))


if __name__ == "__main__":
    main()
