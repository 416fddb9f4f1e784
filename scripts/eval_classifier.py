"""Evaluate the committed classifier on the patient-grouped validation split: per-source metrics, bootstrap CI,
ECE before/after temperature scaling, shortcut (source identification) probe, OOD refusal rates; JSON + plots."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score, roc_curve
from sklearn.model_selection import cross_val_score

from tools.classifier.cache import cached_images, load_grey
from tools.classifier.calibration import ece, fit_temperature, reliability, sigmoid
from tools.classifier.data import LABELS, all_records, covid_ood_records, label_matrix, patient_split
from tools.classifier.predict import load_classifier, predict, weights_path

log = logging.getLogger("eval_classifier")
ROOT = Path(__file__).resolve().parents[1]
THRESHOLD = 0.5


def binary_metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    pred = p >= THRESHOLD
    pos, neg = y == 1, y == 0
    return {"n": len(y), "n_pos": int(pos.sum()), "auroc": float(roc_auc_score(y, p)),
            "accuracy": float((pred == pos).mean()), "sensitivity": float(pred[pos].mean()),
            "specificity": float((~pred[neg]).mean()), "threshold": THRESHOLD}


def bootstrap_auroc(y: np.ndarray, p: np.ndarray, groups: np.ndarray, n: int = 2000, seed: int = 0) -> list[float]:
    """95% CI by resampling patients (clusters) with replacement."""
    rng = np.random.default_rng(seed)
    uniq = np.unique(groups)
    members = {g: np.flatnonzero(groups == g) for g in uniq}
    stats = []
    for _ in range(n):
        idx = np.concatenate([members[g] for g in rng.choice(uniq, len(uniq))])
        if len(np.unique(y[idx])) == 2:
            stats.append(roc_auc_score(y[idx], p[idx]))
    return [float(np.percentile(stats, 2.5)), float(np.percentile(stats, 97.5))]


def cross_fitted_ece(z: np.ndarray, y: np.ndarray, seed: int = 0) -> float:
    """ECE after temperature scaling where each half of validation is calibrated with T fitted on the other."""
    rng = np.random.default_rng(seed)
    half = rng.permutation(len(y)) < len(y) // 2
    probs = np.empty(len(y))
    for a in (half, ~half):
        probs[a] = sigmoid(z[a] / fit_temperature(z[~a], y[~a]))
    return ece(probs, y)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", type=Path, default=ROOT / "tools" / "cards" / "classifier")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    clf = load_classifier(device="cpu")
    ckpt = torch.load(weights_path(), map_location="cpu", weights_only=False)
    seed = int(ckpt["config"]["seed"])

    records = all_records()
    is_val = patient_split(records, seed=seed)
    images = cached_images([r.path for r in records])
    y_all = label_matrix(records)
    vidx = np.flatnonzero(is_val)
    log.info("predicting %d validation images", len(vidx))
    pred = predict(clf, images[vidx])
    log.info("done")
    y = y_all[vidx]
    src = np.array([records[i].source for i in vidx])
    pat = np.array([records[i].patient for i in vidx])
    prob, logit = pred.probabilities, pred.logits
    col = {label: j for j, label in enumerate(LABELS)}
    m: dict[str, object] = {"weights_sha256": clf.sha256, "n_validation": len(vidx),
                            "split": ckpt["config"]["split"], "temperatures": dict(zip(LABELS, clf.temperature.tolist(),
                                                                                       strict=True))}
    curves = {}

    ped = src == "pediatric"
    j = col["pneumonia"]
    m["pediatric_pneumonia"] = binary_metrics(y[ped, j], prob[ped, j])
    curves["paediatric pneumonia"] = (y[ped, j], prob[ped, j])
    jv = col["pneumonia_viral"]
    sel = ped & ~np.isnan(y[:, jv])
    m["pediatric_viral_vs_bacterial"] = binary_metrics(y[sel, jv], prob[sel, jv])

    nih = src == "nih"
    nih_pn = nih & ((y[:, j] == 1) | (y[:, col["no_finding"]] == 1))
    yn, pn = y[nih_pn, j], prob[nih_pn, j]
    m["nih_pneumonia_vs_no_finding"] = {**binary_metrics(yn, pn),
                                        "auroc_95ci_patient_bootstrap": bootstrap_auroc(yn, pn, pat[nih_pn])}
    curves["NIH pneumonia vs no finding"] = (yn, pn)
    jn = col["nodule"]
    if len(np.unique(y[nih, jn])) == 2:
        m["nih_nodule"] = binary_metrics(y[nih, jn], prob[nih, jn])

    cov = src == "covid"
    jc = col["covid19_pattern"]
    m["covid_within_source"] = binary_metrics(y[cov, jc], prob[cov, jc])
    curves["COVID vs other (covid set only)"] = (y[cov, jc], prob[cov, jc])
    m["covid_all_sources"] = {**binary_metrics(y[:, jc], prob[:, jc]),
                              "note": "negatives include other sources: inflated by source identification"}
    sel = cov & ~np.isnan(y[:, jv])
    if len(np.unique(y[sel, jv])) == 2:
        m["covid_set_viral_vs_bacterial"] = binary_metrics(y[sel, jv], prob[sel, jv])
    m["covid_set_pneumonia"] = {"mean_prob": float(prob[cov, j].mean()), "n": int(cov.sum())}

    jsrt = src == "jsrt"
    m["jsrt_nodule"] = binary_metrics(y[jsrt, jn], prob[jsrt, jn])
    curves["JSRT nodule"] = (y[jsrt, jn], prob[jsrt, jn])
    sel = ~np.isnan(y[:, jn])
    m["nodule_all_sources"] = binary_metrics(y[sel, jn], prob[sel, jn])

    # calibration: per label and pooled over all annotated (sample, label) pairs
    cal: dict[str, object] = {}
    pooled_raw, pooled_cal, pooled_y = [], [], []
    for label, jj in col.items():
        ok = ~np.isnan(y[:, jj])
        raw, cali, yy = sigmoid(logit[ok, jj]), prob[ok, jj], y[ok, jj]
        cal[label] = {"n": int(ok.sum()), "ece_before": ece(raw, yy), "ece_after": ece(cali, yy),
                      "ece_after_cross_fitted": cross_fitted_ece(logit[ok, jj], yy)}
        pooled_raw.append(raw)
        pooled_cal.append(cali)
        pooled_y.append(yy)
    pr, pc, py = map(np.concatenate, (pooled_raw, pooled_cal, pooled_y))
    cal["pooled"] = {"n": len(py), "ece_before": ece(pr, py), "ece_after": ece(pc, py)}
    cal["note"] = ("temperatures are fitted on this validation split; ece_after_cross_fitted fits T on one half "
                   "and measures on the other (honest estimate)")
    m["calibration"] = cal

    # shortcut probe: how well the penultimate features identify the source (logistic regression, 5-fold CV)
    feats = pred.features
    probe = LogisticRegression(max_iter=2000, C=0.1)
    acc = cross_val_score(probe, feats, src, cv=5).mean()
    m["shortcut_source_identification_accuracy"] = {"accuracy": float(acc), "chance_majority": float(ped.mean()),
                                                    "sources": sorted(set(src.tolist()))}

    # OOD: refusal rates by the feature-distance check alone
    ood_rows = covid_ood_records(Path(records[0].path).parents[3])
    ood: dict[str, object] = {"threshold": clf.ood.threshold,
                              "validation_cxr_refused": float((pred.ood_score > clf.ood.threshold).mean())}
    for kind in ("lateral", "ct"):
        paths = [p for k, p in ood_rows if k == kind]
        scores = predict(clf, np.stack([load_grey(p) for p in paths])).ood_score
        ood[f"covid_set_{kind}_refused_by_feature_distance"] = {"n": len(paths),
                                                                "rate": float((scores > clf.ood.threshold).mean())}
    ood["note"] = "DICOM CT/MR and lateral ViewPosition and colour inputs are also refused by the metadata gate"
    m["ood"] = ood

    (args.out / "metrics.json").write_text(json.dumps(m, indent=2))
    plot_roc(curves, args.out / "roc.png")
    plot_reliability(pr, pc, py, args.out / "reliability.png")
    m["reliability_pooled_after"] = reliability(pc, py)
    (args.out / "metrics.json").write_text(json.dumps(m, indent=2))
    log.info("wrote %s", args.out / "metrics.json")


def plot_roc(curves: dict[str, tuple[np.ndarray, np.ndarray]], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(5, 5), dpi=80)
    for name, (yy, pp) in curves.items():
        fpr, tpr, _ = roc_curve(yy, pp)
        ax.plot(fpr, tpr, label=f"{name} (AUROC {roc_auc_score(yy, pp):.3f}, n={len(yy)})")
    ax.plot([0, 1], [0, 1], "k:", lw=0.8)
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="Validation ROC (patient split)")
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_reliability(raw: np.ndarray, cal: np.ndarray, y: np.ndarray, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(5, 5), dpi=80)
    for name, p in (("before temperature", raw), ("after temperature", cal)):
        bins = reliability(p, y)
        ax.plot([b["mean_prob"] for b in bins], [b["frac_pos"] for b in bins], "o-",
                label=f"{name} (ECE {ece(p, y):.3f})")
    ax.plot([0, 1], [0, 1], "k:", lw=0.8)
    ax.set(xlabel="predicted probability", ylabel="observed frequency", title="Reliability, all labels pooled")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


if __name__ == "__main__":
    main()
