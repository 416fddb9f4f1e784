"""Evaluate the segmenter on the validation split: Dice and Hausdorff (mm) per structure, CTR error, latency.

    python scripts/eval_segmenter.py [--out tools/cards/segmenter/eval.json]

JSRT validation images go through the real loader (`load_study`) and the registered tool's inference at the full
512x512 resolution; metrics are against the SCR reference masks (0.7 mm pixels). The COVID-case validation patients
give an extra lungs-union Dice (their masks do not separate the lungs).
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from tools.segmenter.dataset import COVID_DIR, JSRT_DIR, covid_rows, covid_split, jsrt_masks, jsrt_split, read_grey
from tools.segmenter.measure import cardiothoracic_ratio
from tools.segmenter.metrics import dice, hausdorff
from tools.segmenter.model import STRUCTURES
from tools.segmenter.predict import MODEL_ID, LoadedModel, load_model, predict, weights_path
from tools.segmenter.tool import run
from tools.study import load_study

log = logging.getLogger("eval_segmenter")
JSRT_SPACING_MM = 0.7


def _summary(values: list[float]) -> dict[str, float | int | None]:
    """mean/median/min/max/std over finite values; `n_undefined` counts empty predictions (infinite distances)."""
    arr = np.asarray(values, dtype=float)
    finite = arr[np.isfinite(arr)]
    if not len(finite):
        return {"n_undefined": len(arr)}
    stats = {"mean": finite.mean(), "median": np.median(finite), "min": finite.min(), "max": finite.max(),
             "std": finite.std()}
    return {**{k: round(float(v), 4) for k, v in stats.items()}, "n_undefined": int(len(arr) - len(finite))}


def evaluate_jsrt() -> dict[str, object]:
    names = jsrt_split().val
    per: dict[str, dict[str, list[float]]] = {s: {"dice": [], "hd": [], "hd95": []} for s in STRUCTURES}
    ctr_err, ctr_pred, ctr_ref, times = [], [], [], []
    for name in tqdm(names, desc="JSRT val"):
        study = load_study(JSRT_DIR / "images" / f"{name}.png")
        t0 = time.perf_counter()
        result = run([study])[0]  # the full tool: inference, measurements, regions, overlay
        times.append((time.perf_counter() - t0) * 1000)
        masks = {r.label: r.mask() for r in result.regions}
        ref = dict(zip(STRUCTURES, jsrt_masks(name), strict=True))
        for s in STRUCTURES:
            per[s]["dice"].append(dice(masks[s], ref[s]))
            hd, hd95 = hausdorff(masks[s], ref[s], JSRT_SPACING_MM)
            per[s]["hd"].append(hd)
            per[s]["hd95"].append(hd95)
        cp, cr = cardiothoracic_ratio(masks), cardiothoracic_ratio(ref)
        ctr_pred.append(cp if cp is not None else float("nan"))
        ctr_ref.append(cr)
        ctr_err.append(abs(cp - cr) if cp is not None else float("nan"))
    lungs = [(a + b) / 2 for a, b in zip(per["right_lung"]["dice"], per["left_lung"]["dice"], strict=True)]
    clav = [(a + b) / 2 for a, b in zip(per["right_clavicle"]["dice"], per["left_clavicle"]["dice"], strict=True)]
    cardiomegaly_agree = float(np.mean([(p > 0.5) == (r > 0.5) for p, r in zip(ctr_pred, ctr_ref, strict=True)]))
    return {
        "n_images": len(names),
        "per_structure": {s: {"dice": _summary(v["dice"]), "hausdorff_mm": _summary(v["hd"]),
                              "hd95_mm": _summary(v["hd95"])} for s, v in per.items()},
        "dice_lungs_mean": round(float(np.mean(lungs)), 4),
        "dice_heart_mean": round(float(np.mean(per["heart"]["dice"])), 4),
        "dice_clavicles_mean": round(float(np.mean(clav)), 4),
        "ctr_mae": round(float(np.nanmean(ctr_err)), 4),
        "ctr_abs_error_max": round(float(np.nanmax(ctr_err)), 4),
        "ctr_not_computable": int(np.isnan(ctr_err).sum()),
        "cardiomegaly_flag_agreement": round(cardiomegaly_agree, 4),
        "tool_ms_per_512px_image": {**_summary(times), "p50": round(float(np.percentile(times, 50)), 1),
                                     "p90": round(float(np.percentile(times, 90)), 1)},
        "images": names,
    }


def evaluate_covid(loaded: LoadedModel) -> dict[str, object]:
    wanted = set(covid_split().val)
    rows = [r for r in covid_rows() if r["image"] in wanted]
    scores = []
    for r in tqdm(rows, desc="COVID val"):
        study = load_study(COVID_DIR / r["image"])
        pred = predict([study.frame()], loaded)[0]
        ref = read_grey(COVID_DIR / r["lung_mask"]) > 127
        if ref.shape != pred.masks["right_lung"].shape:
            log.warning("mask/image size mismatch for %s, skipped", r["image"])
            continue
        scores.append(dice(pred.masks["right_lung"] | pred.masks["left_lung"], ref))
    return {"n_images": len(scores), "n_patients": len({r["patientid"] for r in rows}),
            "dice_lungs_union": _summary(scores)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("tools/cards/segmenter/eval.json"))
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    torch.set_num_threads(args.threads)
    loaded = load_model()
    report = {
        "model_id": MODEL_ID,
        "weights": str(weights_path().name),
        "weights_sha256": loaded.sha256,
        "device": loaded.device.type,
        "torch_threads": args.threads,
        "jsrt_val": evaluate_jsrt(),
        "covid_val": evaluate_covid(loaded),
        "bars": {"dice_lungs": 0.97, "dice_heart": 0.93, "dice_clavicles": 0.88, "ctr_mae": 0.02},
    }
    j = report["jsrt_val"]
    report["bars_met"] = {
        "dice_lungs": j["dice_lungs_mean"] >= 0.97,
        "dice_heart": j["dice_heart_mean"] >= 0.93,
        "dice_clavicles": j["dice_clavicles_mean"] >= 0.88,
        "ctr_mae": j["ctr_mae"] <= 0.02,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    log.info("lungs %.4f heart %.4f clavicles %.4f CTR MAE %.4f -> %s", j["dice_lungs_mean"], j["dice_heart_mean"],
             j["dice_clavicles_mean"], j["ctr_mae"], args.out)


if __name__ == "__main__":
    main()
