"""Experiment: can a second-stage re-scorer of the detector's candidates (false-positive reduction) raise the
cross-validated FROC? Writes tools/cards/detector/rescoring.json; the model card reports it.

    python scripts/eval_detector_rescoring.py [--patch-steps 300] [--skip-patch-cnn]

Input: the out-of-fold candidates of scripts/train_detector.py (var/detector/cv_candidates.json, before the
anatomical prior). Every re-scorer is cross-fitted on the same patient-level folds: the candidates of fold f are
re-scored by a model fitted only on the other folds' candidates (themselves out-of-fold), so no image is ever scored
by anything that saw it. Re-scorers:

- ``features``: logistic regression and gradient boosting on the detector's score and rank, the position relative to
  the segmenter's lungs and heart (signed distance, height within the lung, lateral position) and multi-scale
  blob (Laplacian of Gaussian) and local-contrast responses at the centre;
- ``features+imagenet``: the same plus 32 principal components of frozen ImageNet EfficientNet-Lite0 features of a
  96 px window around the candidate;
- ``patch-cnn``: an ImageNet Lite0 classifier fine-tuned on 72 px windows (reference nodules with jitter, scale,
  flips, rotations and gamma as positives; the other folds' false-positive candidates as negatives), mirror TTA;
  alone and fused with the detector's score (logistic regression on the two logits, cross-fitted).
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np
import timm
import torch
import torch.nn.functional as F
from PIL import Image
from scipy import ndimage
from sklearn.decomposition import PCA
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from tools.backbone import load_imagenet_features, load_imagenet_lite0, standardise
from tools.detector.anatomy import LungMap
from tools.detector.calibration import score_logit
from tools.detector.data import SOURCE_SIZE, load_cases
from tools.detector.froc import ImageCandidates, ScoredCandidate, froc, match

log = logging.getLogger("eval_detector_rescoring")
FP_RATES = (0.5, 1, 2, 4, 8)
BLOB_SIGMAS = (2, 3, 4.5, 6.5, 9, 13)  # source px
PRIOR_DISTANCE = 0.02 * SOURCE_SIZE  # as the tool's anatomical prior: within 2 % of the width of lungs or heart
WINDOW = 64  # half-size (source px) of the stored window around each point
PATCH_HALF = 36  # half-size (source px) of the patch CNN's input window (about 50 mm across)
PATCH_INPUT = 96


def read_frames(images: list[ImageCandidates]) -> list[np.ndarray]:
    cases = {c.name: c for c in load_cases()}
    frames = []
    for image in images:
        with Image.open(cases[image.name].image_path) as im:
            frames.append(np.asarray(im.convert("L"), dtype=np.float32) / 255)
    return frames


def handcrafted(images: list[ImageCandidates], frames: list[np.ndarray],
                maps: list[LungMap]) -> tuple[np.ndarray, np.ndarray]:
    """(features per candidate, distance outside lungs+heart in px) in candidate order."""
    rows, outside = [], []
    for image, frame, lung_map in zip(images, frames, maps, strict=True):
        lung = lung_map.right | lung_map.left
        signed = np.where(lung, ndimage.distance_transform_edt(lung), -ndimage.distance_transform_edt(~lung))
        heart = lung_map.heart
        heart_signed = np.where(heart, ndimage.distance_transform_edt(heart), -ndimage.distance_transform_edt(~heart))
        beyond = ndimage.distance_transform_edt(~(lung | heart))
        blobs = [-ndimage.gaussian_laplace(frame, s) * s * s for s in BLOB_SIGMAS]
        smooth = [ndimage.gaussian_filter(frame, s) for s in (1, 4, 16)]
        boxes = {side: _extent(mask) for side, mask in (("right", lung_map.right), ("left", lung_map.left))}
        scores = np.array([c.score for c in image.candidates])
        for rank, c in enumerate(image.candidates):
            r, q = int(np.clip(round(c.y), 0, frame.shape[0] - 1)), int(np.clip(round(c.x), 0, frame.shape[1] - 1))
            side = "right" if c.x < frame.shape[1] / 2 else "left"  # the patient's right is the image's left
            top, bottom, first, last = boxes[side]
            lateral = (c.x - first) / max(last - first, 1)
            blob = [b[r, q] for b in blobs]
            rows.append([
                float(score_logit(c.score)), rank, c.score / scores.max(), int((scores >= 0.05).sum()),
                signed[r, q] / SOURCE_SIZE, heart_signed[r, q] / SOURCE_SIZE, (c.y - top) / max(bottom - top, 1),
                lateral if side == "right" else 1 - lateral, c.y / frame.shape[0],
                abs(c.x - frame.shape[1] / 2) / (frame.shape[1] / 2), *blob, max(blob), int(np.argmax(blob)),
                smooth[0][r, q] - smooth[1][r, q], smooth[1][r, q] - smooth[2][r, q], frame[r, q],
            ])
            outside.append(beyond[r, q])
    return np.asarray(rows, dtype=float), np.asarray(outside)


def _extent(mask: np.ndarray) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(mask)
    if not len(ys):
        return 0, mask.shape[0] - 1, 0, mask.shape[1] - 1
    return int(ys.min()), int(ys.max()), int(xs.min()), int(xs.max())


def windows(frames: list[np.ndarray], points: list[tuple[int, float, float]]) -> torch.Tensor:
    """(N, 1, 2W, 2W) windows around (frame index, x, y), zero outside the image."""
    padded = [np.pad(f, WINDOW) for f in frames]
    out = []
    for k, x, y in points:
        r, q = round(y) + WINDOW, round(x) + WINDOW
        out.append(padded[k][r - WINDOW : r + WINDOW, q - WINDOW : q + WINDOW])
    return torch.from_numpy(np.stack(out))[:, None]


def resample(w: torch.Tensor, half: float | np.ndarray, shift: np.ndarray | None = None) -> torch.Tensor:
    """Windows cut to ``half`` source px around their centre (+ shift px) and resized to PATCH_INPUT."""
    n = len(w)
    half = np.broadcast_to(np.asarray(half, dtype=np.float32), (n,))
    shift = np.zeros((n, 2), np.float32) if shift is None else shift
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = torch.from_numpy(half / WINDOW)
    theta[:, :, 2] = torch.from_numpy((shift / WINDOW).astype(np.float32))
    grid = F.affine_grid(theta, [n, 1, PATCH_INPUT, PATCH_INPUT], align_corners=False)
    return F.grid_sample(w, grid, align_corners=False)


@torch.inference_mode()
def imagenet_features(w: torch.Tensor) -> np.ndarray:
    encoder = timm.create_model("efficientnet_lite0", features_only=True, pretrained=False, in_chans=1,
                                out_indices=(2, 3, 4))
    load_imagenet_features(encoder)
    encoder.eval()
    out = []
    for i in range(0, len(w), 128):
        feats = encoder(standardise(F.interpolate(w[i : i + 128], size=(128, 128), mode="bilinear")))
        out.append(torch.cat([feats[2].mean((2, 3)), feats[1].mean((2, 3)), feats[2][:, :, 1:3, 1:3].mean((2, 3))],
                             1).numpy())
    return np.concatenate(out)


def train_patch_cnn(nodules: torch.Tensor, radii: np.ndarray, negatives: torch.Tensor, steps: int,
                    seed: int) -> torch.nn.Module:
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    model = timm.create_model("efficientnet_lite0", pretrained=False, in_chans=1, num_classes=1)
    load_imagenet_lite0(model, skip_source=("_fc",), skip_target=("classifier",))
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=1e-3, total_steps=steps, pct_start=0.1)
    batch = 64
    for step in range(steps):
        pos = rng.choice(len(nodules), batch // 2)
        neg = rng.choice(len(negatives), batch // 2)
        shift = rng.uniform(-1, 1, (batch // 2, 2)) * radii[pos, None] * 0.5
        x = torch.cat([
            resample(nodules[pos], PATCH_HALF * rng.uniform(0.85, 1.15, batch // 2), shift),
            resample(negatives[neg], PATCH_HALF * rng.uniform(0.85, 1.15, batch // 2),
                     rng.uniform(-2, 2, (batch // 2, 2))),
        ])
        if rng.random() < 0.5:
            x = torch.flip(x, [3])
        x = torch.rot90(x, int(rng.integers(4)), [2, 3]).clamp(0, 1) ** float(rng.uniform(0.8, 1.25))
        y = torch.cat([torch.ones(batch // 2), torch.zeros(batch // 2)])
        loss = F.binary_cross_entropy_with_logits(model(standardise(x))[:, 0], y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if step % 100 == 0:
            log.info("patch cnn seed %d step %d loss %.4f", seed, step, loss.item())
    return model.eval()


@torch.inference_mode()
def patch_probabilities(model: torch.nn.Module, w: torch.Tensor) -> np.ndarray:
    out = []
    for i in range(0, len(w), 256):
        x = standardise(resample(w[i : i + 256], PATCH_HALF))
        out.append(((torch.sigmoid(model(x)[:, 0]) + torch.sigmoid(model(torch.flip(x, [3]))[:, 0])) / 2).numpy())
    return np.concatenate(out)


def cross_fit(make, x: np.ndarray, y: np.ndarray, folds: np.ndarray) -> np.ndarray:
    scores = np.zeros(len(y))
    for f in np.unique(folds):
        model = make().fit(x[folds != f], y[folds != f])
        scores[folds == f] = model.predict_proba(x[folds == f])[:, 1]
    return scores


def sensitivities(images: list[ImageCandidates], scores: np.ndarray, keep: np.ndarray) -> dict[str, float]:
    out, k = [], 0
    for image in images:
        n = len(image.candidates)
        out.append(image.model_copy(update={"candidates": [
            ScoredCandidate(x=c.x, y=c.y, score=float(scores[k + j]))
            for j, c in enumerate(image.candidates) if keep[k + j]
        ]}))
        k += n
    curve = froc(out)
    return {f"sensitivity_at_{fp}_fp": round(curve.sensitivity_at(fp), 4) for fp in FP_RATES}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cv", type=Path, default=Path("var/detector/cv_candidates.json"))
    parser.add_argument("--out", type=Path, default=Path("tools/cards/detector/rescoring.json"))
    parser.add_argument("--patch-steps", type=int, default=300)
    parser.add_argument("--skip-patch-cnn", action="store_true", help="the fine-tuned patch CNN takes ~30 min here")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    torch.set_num_threads(args.threads)
    start = time.time()
    images = [ImageCandidates.model_validate(im) for im in json.loads(args.cv.read_text())["images"]]
    frames = read_frames(images)
    maps = LungMap.for_frames(frames)
    if any(m is None for m in maps):
        raise SystemExit("needs the segmenter's weights (tools/weights/segmenter.pt)")
    features, outside = handcrafted(images, frames, maps)  # type: ignore[arg-type]
    is_hit = np.array([h is not None for im in images for h in match(im)])
    folds = np.array([im.fold for im in images for _ in im.candidates])
    points = [(k, c.x, c.y) for k, im in enumerate(images) for c in im.candidates]
    cand_windows = windows(frames, points)
    lr = lambda c: lambda: make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=3000))  # noqa: E731
    gbm = lambda: HistGradientBoostingClassifier(max_iter=200, learning_rate=0.05, max_leaf_nodes=8,  # noqa: E731
                                                 min_samples_leaf=20, l2_regularization=1.0, random_state=0)
    components = PCA(32, random_state=0).fit_transform(imagenet_features(cand_windows))  # unsupervised, no labels
    rescored = {
        "detector score (as committed)": features[:, 0],
        "features, logistic regression": cross_fit(lr(0.3), features, is_hit, folds),
        "features, gradient boosting": cross_fit(gbm, features, is_hit, folds),
        "features+imagenet, logistic regression": cross_fit(lr(0.05), np.hstack([features, components]), is_hit,
                                                            folds),
        "features+imagenet, gradient boosting": cross_fit(gbm, np.hstack([features, components]), is_hit, folds),
    }
    if not args.skip_patch_cnn:
        patch = np.zeros(len(is_hit))
        refs = [(k, n.x, n.y, n.radius, im.fold) for k, im in enumerate(images) for n in im.nodules]
        ref_windows = windows(frames, [(k, x, y) for k, x, y, _, _ in refs])
        radii = np.array([r[3] for r in refs])
        ref_folds = np.array([r[4] for r in refs])
        for f in np.unique(folds):
            model = train_patch_cnn(ref_windows[ref_folds != f], radii[ref_folds != f],
                                    cand_windows[(folds != f) & ~is_hit], args.patch_steps, seed=int(f))
            patch[folds == f] = patch_probabilities(model, cand_windows[folds == f])
            log.info("patch cnn fold %d done (%.0fs)", f, time.time() - start)
        both = np.c_[features[:, 0], score_logit(patch)]
        rescored["patch cnn alone"] = patch
        rescored["patch cnn + detector score, logistic regression"] = cross_fit(LogisticRegression, both, is_hit,
                                                                                 folds)
    results = {}
    for name, scores in rescored.items():
        results[name] = {prior: sensitivities(images, scores, keep)
                         for prior, keep in (("all candidates", np.ones(len(scores), bool)),
                                             ("anatomical prior", outside <= PRIOR_DISTANCE))}
        log.info("%s: %s", name, results[name])
    args.out.write_text(json.dumps({
        "cv_candidates": str(args.cv), "n_candidates": len(is_hit), "n_hits": int(is_hit.sum()),
        "patch_steps": None if args.skip_patch_cnn else args.patch_steps, "results": results,
        "seconds": round(time.time() - start),
    }, indent=2))
    log.info("wrote %s", args.out)


if __name__ == "__main__":
    main()
