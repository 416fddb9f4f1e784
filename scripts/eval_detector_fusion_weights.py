"""Would weighting the ensemble's networks help? A nested cross-validation of the fusion weight.

    python scripts/eval_detector_fusion_weights.py --member CV1.json --member CV2.json \
        [--out tools/cards/detector/fusion_weights_nested.json]

The committed detector averages its two networks' scores with equal weights. Picking another weight on the same
out-of-fold candidates that measure it would flatter the result, so the weight is chosen the way a fresh fit would
choose it: for each outer fold, the first member's weight w (the second gets 1 - w) is picked from GRID by the
sensitivity at 2 FP/image on the other folds' fused candidates (ties: the weight nearest 0.5), and the held-out
fold's candidates are fused with it. The pooled held-out candidates give the nested FROC, compared with equal
weights by a paired image bootstrap. Candidates are fused and then filtered by the anatomical prior, as in
scripts/build_detector_ensemble.py.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np

from tools.detector.ensemble import fuse_cv_runs
from tools.detector.froc import ImageCandidates, froc, paired_difference
from tools.detector.operating_point import apply_anatomical_prior, read_cv
from tools.detector.predict import MAX_CANDIDATES

log = logging.getLogger("eval_detector_fusion_weights")
GRID = (0.3, 0.4, 0.5, 0.6, 0.7)
SELECTION_FP_PER_IMAGE = 2.0
FP_RATES = (0.5, 1.0, 2.0, 4.0)
BOOTSTRAP = 2000
SEED = 0


def sensitivities(images: list[ImageCandidates]) -> dict[str, float]:
    return froc(images).sensitivities_at(FP_RATES)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--member", action="append", required=True, type=Path,
                        help="a member's out-of-fold candidates (train_detector.py --cv-out); exactly two")
    parser.add_argument("--out", type=Path, default=Path("tools/cards/detector/fusion_weights_nested.json"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if len(args.member) != 2:
        parser.error("the weight grid is for two members")
    runs = [read_cv(path)[1] for path in args.member]
    fused = {}
    for w in GRID:
        fused[w] = apply_anatomical_prior(fuse_cv_runs(runs, MAX_CANDIDATES, weights=(w, 1 - w)))
        log.info("weight %.1f: %s", w, sensitivities(fused[w]))
    order = [im.name for im in fused[0.5]]
    folds = sorted({im.fold for im in fused[0.5]})
    chosen: dict[str, ImageCandidates] = {}
    per_fold = []
    for fold in folds:
        inner = {w: froc([im for im in fused[w] if im.fold != fold]).sensitivity_at(SELECTION_FP_PER_IMAGE)
                 for w in GRID}
        best = max(GRID, key=lambda w: (inner[w], -abs(w - 0.5)))
        per_fold.append({"fold": fold, "inner_sensitivity_at_2fp": {f"{w:g}": round(s, 4) for w, s in inner.items()},
                         "chosen_first_member_weight": best})
        chosen.update({im.name: im for im in fused[best] if im.fold == fold})
    nested = [chosen[name] for name in order]
    result = {
        "members": [path.name for path in args.member],
        "grid_first_member_weight": list(GRID),
        "selection": f"sensitivity at {SELECTION_FP_PER_IMAGE:g} FP/image on the other folds",
        "per_fold": per_fold,
        "in_sample_sensitivity_by_weight": {f"{w:g}": sensitivities(images) for w, images in fused.items()},
        "nested_vs_equal_weights": paired_difference(fused[0.5], nested, FP_RATES, np.random.default_rng(SEED),
                                                     BOOTSTRAP),
        "bootstrap": BOOTSTRAP,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    log.info("nested: %s (equal weights %s)", sensitivities(nested), sensitivities(fused[0.5]))


if __name__ == "__main__":
    main()
