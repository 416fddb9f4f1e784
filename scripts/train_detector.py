"""Train the lung nodule detector (CenterNet-style heatmap on ImageNet EfficientNet-Lite0) with patient-level k-fold CV.

    python scripts/train_detector.py [--folds 5] [--steps 500] [--size 384] [--paste 0.0] [--device cuda] [--jobs 6]

JSRT has one image per patient, so the seeded, stratified image-level folds are patient-level folds. For each fold a
model is trained on the other folds and predicts the held-out fold's full images: the out-of-fold candidates
(`--cv-out`) are what scripts/eval_detector.py scores (FROC). A final model is then trained on every image with the
same recipe and saved to `--out`, with the probability calibration (Platt) and the operating threshold fitted on the
out-of-fold candidates only. Seeded; `--jobs` trains folds in parallel processes (one GPU can hold them all). On the
2-core CPU the full run takes hours: use a GPU (about 5 minutes on one H100).
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from tools.detector import operating_point
from tools.detector.data import SOURCE_SIZE, assign_folds, cached_arrays, load_cases
from tools.detector.froc import ImageCandidates, Nodule, ScoredCandidate, froc
from tools.detector.model import INPUT_SIZE, CenterNetLite0, load_imagenet_encoder, normalise
from tools.detector.predict import MAX_CANDIDATES, LoadedModel, Member, predict
from tools.detector.targets import CropSampler, focal_loss

log = logging.getLogger("train_detector")
SIZE_LOSS_WEIGHT = 0.1


def train_model(train_idx: list[int], args: argparse.Namespace, seed: int, label: str) -> dict[str, torch.Tensor]:
    """One model on the given image indices; returns its state dict (CPU tensors)."""
    torch.manual_seed(seed)
    torch.set_num_threads(args.threads)
    cases = load_cases()
    images, lungs = cached_arrays(cases, args.size)
    device = torch.device(args.device)
    sub = [cases[i] for i in train_idx]
    sampler = CropSampler(images[train_idx], lungs[train_idx], sub, crop=args.size, seed=seed,
                          paste_probability=args.paste)
    positives = [i for i, c in enumerate(sub) if c.nodule]
    negatives = [i for i, c in enumerate(sub) if not c.nodule]
    rng = np.random.default_rng(seed)
    model = CenterNetLite0()
    load_imagenet_encoder(model)
    model.to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=args.steps, pct_start=0.1)
    n_pos = math.ceil(args.batch * args.positive_fraction)
    bar = tqdm(range(args.steps), desc=label, mininterval=10, disable=args.jobs > 1)
    for step in bar:
        idx = list(rng.choice(positives, n_pos)) + list(rng.choice(negatives, args.batch - n_pos))
        x, heat, log_size, weight = (t.to(device, non_blocking=True) for t in sampler.batch(idx))
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            heat_logits, size_pred = model(normalise(x))
        loss = focal_loss(heat_logits.float(), heat)
        size_err = ((size_pred.float() - log_size).abs() * weight).sum() / weight.sum().clamp_min(1.0)
        loss = loss + SIZE_LOSS_WEIGHT * size_err
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if step % 100 == 0 or step == args.steps - 1:
            log.info("%s step %d/%d loss %.4f", label, step + 1, args.steps, loss.item())
    return {k: v.detach().cpu() for k, v in model.state_dict().items()}


def out_of_fold(fold: int, folds: dict[str, int], args: argparse.Namespace) -> dict[bool, list[ImageCandidates]]:
    """Train on every fold but ``fold``; candidates on ``fold``'s images in 512x512 source pixels, without and with
    mirror test-time augmentation (keyed by the tta flag)."""
    cases = load_cases()
    train_idx = [i for i, c in enumerate(cases) if folds[c.name] != fold]
    test_idx = [i for i, c in enumerate(cases) if folds[c.name] == fold]
    state = train_model(train_idx, args, seed=args.seed + 1 + fold, label=f"fold {fold}")
    model = CenterNetLite0()
    model.load_state_dict(state)
    device = torch.device(args.device)
    loaded = LoadedModel(members=(Member(model=model.eval().to(device), input_size=args.size),), device=device,
                         sha256="", calibration=None, threshold=None)
    images, _ = cached_arrays(cases, args.size)
    frames = [images[i].astype(np.float32) / 255 for i in test_idx]
    scale = SOURCE_SIZE / args.size
    results: dict[bool, list[ImageCandidates]] = {}
    for tta in (False, True):
        results[tta] = []
        for i, found in zip(test_idx, predict(frames, loaded, max_candidates=MAX_CANDIDATES, tta=tta), strict=True):
            c = cases[i]
            nodules = [Nodule(x=c.x, y=c.y, radius=c.radius_px, subtlety=c.subtlety)] if c.nodule else []
            results[tta].append(ImageCandidates(
                name=c.name, fold=fold, nodules=nodules,
                candidates=[ScoredCandidate(x=f.x * scale, y=f.y * scale, score=f.score) for f in found],
            ))
    return results


def alternative_path(path: Path, tta: bool) -> Path:
    """Where the candidates of the other inference mode go (kept for the model card's comparison)."""
    return path.with_name(f"{path.stem}_{'no_tta' if tta else 'tta'}{path.suffix}")


def run_parallel(jobs: int, work: list[tuple[Callable, tuple]]) -> list:
    """Results of ``fn(*args)`` for each (fn, args), in order; in ``jobs`` spawned processes when jobs > 1."""
    if jobs <= 1:
        return [fn(*args) for fn, args in work]
    with ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn")) as pool:
        futures = [pool.submit(_in_worker, fn, args) for fn, args in work]
        return [f.result() for f in futures]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=500, help="optimiser steps per model")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--positive-fraction", type=float, default=0.5, help="share of nodule images per batch")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--size", type=int, default=INPUT_SIZE, help="model input size (px, square)")
    parser.add_argument("--paste", type=float, default=0.0,
                        help="chance per training crop of pasting a nodule of another training image into its lungs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--jobs", type=int, default=1, help="models trained at once (processes)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads per process")
    parser.add_argument("--tta", action=argparse.BooleanOptionalAction, default=True,
                        help="mirror test-time augmentation for the CV candidates, calibration and the saved weights")
    parser.add_argument("--skip-final", action="store_true", help="cross-validation only (no weights written)")
    parser.add_argument("--out", type=Path, default=Path("tools/weights/detector.pt"))
    parser.add_argument("--cv-out", type=Path, default=Path("var/detector/cv_candidates.json"))
    parser.add_argument("--final-only", action="store_true",
                        help="no cross-validation: train the final model and calibrate it on the existing --cv-out "
                             "(written by a CV run of the same recipe)")
    parser.add_argument("--finalise-only", action="store_true",
                        help="no training: apply the anatomical prior to --cv-out and calibrate --out from it")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if args.finalise_only:
        finalise(args.out, args.cv_out)
        return
    cases = load_cases()
    if args.final_only:
        if not args.cv_out.exists():
            parser.error(f"--final-only calibrates on the out-of-fold candidates: {args.cv_out} is missing")
        cached_arrays(cases, args.size)
        save_final(train_model(list(range(len(cases))), args, args.seed, "final"), args)
        return
    start = time.time()
    cached_arrays(cases, args.size)  # build the cache once, before the workers read it
    folds = assign_folds(cases, k=args.folds)
    log.info("%d images (%d with a nodule), %d folds, %d steps per model on %s", len(cases),
             sum(c.nodule for c in cases), args.folds, args.steps, args.device)

    work = [(out_of_fold, (f, folds, args)) for f in range(args.folds)]
    if not args.skip_final:
        work.append((train_model, (list(range(len(cases))), args, args.seed, "final")))
    outputs = run_parallel(args.jobs, work)
    cv = [image for fold_result in outputs[: args.folds] for image in fold_result[args.tta]]
    other = [image for fold_result in outputs[: args.folds] for image in fold_result[not args.tta]]

    curve = froc(cv)
    summary = {f"sensitivity_at_{fp}_fp": round(curve.sensitivity_at(fp), 4) for fp in (0.5, 1, 2, 4)}
    log.info("cross-validated FROC: %s (%.0fs)", summary, time.time() - start)
    modes = ((cv, args.cv_out, args.tta), (other, alternative_path(args.cv_out, args.tta), not args.tta))
    for images, path, tta in modes:
        operating_point.write_cv(path, {"folds": args.folds, "steps": args.steps, "seed": args.seed,
                                        "input_size": args.size, "tta": tta, "batch": args.batch,
                                        "paste": args.paste}, images)
        log.info("wrote %s (tta=%s): FROC %s", path, tta, {fp: round(froc(images).sensitivity_at(fp), 4)
                                                          for fp in (0.5, 1, 2, 4)})
    if not args.skip_final:
        save_final(outputs[-1], args)


def save_final(state: dict[str, torch.Tensor], args: argparse.Namespace) -> None:
    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": {k: v.half() if v.is_floating_point() else v for k, v in state.items()},
                "input_size": args.size, "tta": args.tta, "train_args": {k: str(v) for k, v in vars(args).items()}},
               args.out)
    finalise(args.out, args.cv_out)


def finalise(weights: Path, cv_path: Path) -> None:
    operating_point.finalise(torch.load(weights, map_location="cpu", weights_only=True), cv_path, weights)


def _in_worker(fn: Callable, args: tuple) -> object:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")  # spawned workers log too
    return fn(*args)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
