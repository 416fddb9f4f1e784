"""Score the detector's cross-validated candidates: FROC, per-subtlety sensitivity, calibration, plots.

    python scripts/eval_detector.py [--cv tools/cards/detector/cv_candidates.json] [--out tools/cards/detector]

Reads the out-of-fold candidates written by scripts/train_detector.py (each image scored by the fold model that
never saw it). A hit is a candidate centre inside the reference nodule's radius (JSRT diameter / 2 at 0.7 mm/px).
Confidence intervals: 2,000 bootstrap resamples of images. Calibration is cross-fitted: each fold's candidates get
a Platt scaling fitted on the other folds' candidates, so the reported ECE is not measured on its own fitting data.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from tools.classifier.calibration import ece, reliability
from tools.detector.calibration import fit_platt
from tools.detector.froc import FrocCurve, ImageCandidates, froc, labelled_scores
from tools.detector.operating_point import read_cv

log = logging.getLogger("eval_detector")
FP_RATES = (0.125, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0)
REPORTED_FP_RATES = (0.5, 1.0, 2.0, 4.0)
BOOTSTRAP = 2000
SEED = 0


def operating_points(curve: FrocCurve) -> dict[str, float]:
    return curve.sensitivities_at(FP_RATES)


def bootstrap_ci(images: list[ImageCandidates], rng: np.random.Generator) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {f"{fp:g}": [] for fp in REPORTED_FP_RATES}
    for _ in range(BOOTSTRAP):
        pick = [images[i] for i in rng.integers(len(images), size=len(images))]
        curve = froc(pick)
        for fp in REPORTED_FP_RATES:
            samples[f"{fp:g}"].append(curve.sensitivity_at(fp))
    return {k: [round(float(np.percentile(v, 2.5)), 4), round(float(np.percentile(v, 97.5)), 4)]
            for k, v in samples.items()}


def cross_fitted_calibration(images: list[ImageCandidates]) -> dict[str, object]:
    folds = sorted({im.fold for im in images if im.fold is not None})
    probs, labels, raw = [], [], []
    for f in folds:
        fit = fit_platt(*labelled_scores([im for im in images if im.fold != f]))
        scores, hits = labelled_scores([im for im in images if im.fold == f])
        probs.append(fit.many(scores))
        labels.append(hits)
        raw.append(scores)
    p, y, s = np.concatenate(probs), np.concatenate(labels).astype(float), np.concatenate(raw)
    return {"candidates": len(p), "ece_raw_score": round(ece(s, y), 4), "ece_calibrated": round(ece(p, y), 4),
            "reliability": reliability(p, y)}


def plot(curves: dict[str, FrocCurve], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for name, curve in curves.items():
        ax.step(curve.fp_per_image, curve.sensitivity, where="post", label=f"{name} (n={curve.n_nodules})")
    ax.axvline(2.0, color="grey", linestyle=":", linewidth=1)
    ax.axhline(0.70, color="grey", linestyle=":", linewidth=1)
    ax.set_xscale("log")
    ax.set_xlim(0.1, 10)
    ax.set_ylim(0, 1)
    ax.set_xlabel("false positives per image")
    ax.set_ylabel("sensitivity")
    ax.set_title("Nodule detector, JSRT 5-fold cross-validation")
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cv", type=Path, default=Path("var/detector/cv_candidates_prior.json"))
    parser.add_argument("--out", type=Path, default=Path("tools/cards/detector"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    settings, images = read_cv(args.cv)
    overall = froc(images)
    by_subtlety = {s: froc(images, subtlety=s) for s in range(1, 6)}
    metrics = {
        "data": {"images": len(images), "nodules": overall.n_nodules,
                 "negative_images": sum(not im.nodules for im in images), "folds": settings["folds"],
                 "hit_rule": "candidate centre inside the nodule radius"},
        "cv_run": settings,
        "sensitivity_at_fp_per_image": operating_points(overall),
        "sensitivity_ci95": bootstrap_ci(images, np.random.default_rng(SEED)),
        "cpm": round(float(np.mean([overall.sensitivity_at(fp) for fp in FP_RATES])), 4),
        "max_sensitivity": round(max(overall.sensitivity, default=0.0), 4),
        "sensitivity_at_2fp_by_subtlety": {str(s): {"nodules": c.n_nodules, "sensitivity": round(c.sensitivity_at(2.0),
                                                                                                    4)}
                                           for s, c in by_subtlety.items()},
        "calibration_cross_fitted": cross_fitted_calibration(images),
        "bar": {"sensitivity_at_2fp": 0.70, "met": overall.sensitivity_at(2.0) >= 0.70},
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "eval.json").write_text(json.dumps(metrics, indent=2) + "\n")
    plot({"all": overall, **{f"subtlety {s}": c for s, c in by_subtlety.items()}}, args.out / "froc.png")
    log.info("sensitivity at FP/image %s; CPM %.3f; wrote %s", metrics["sensitivity_at_fp_per_image"], metrics["cpm"],
             args.out / "eval.json")


if __name__ == "__main__":
    main()
