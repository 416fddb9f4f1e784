"""Build the detector's ensemble checkpoint from trained networks and their out-of-fold candidates.

    python scripts/build_detector_ensemble.py --member W1.pt CV1.json --member W2.pt CV2.json \
        [--out tools/weights/detector.pt] [--cv-out var/detector/cv_candidates.json]

Each member is a final network written by scripts/train_detector.py together with the out-of-fold candidates of its
cross-validation run (the same patient-level folds for every member). The members' out-of-fold candidates are fused
per image exactly as the tool fuses the networks' candidates at inference (tools/detector/ensemble.py) and written to
--cv-out; the anatomical prior, the Platt calibration and the operating threshold are then fitted on the fused
candidates (tools/detector/operating_point.py) and saved with the members' weights. scripts/eval_detector.py scores
the fused candidates (--cv-out with the _prior suffix). The committed recipe is in tools/cards/detector.md.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import torch

from tools.detector import operating_point
from tools.detector.ensemble import FUSION_RADIUS_FRACTION, fuse_cv_runs
from tools.detector.predict import MAX_CANDIDATES

log = logging.getLogger("build_detector_ensemble")
MEMBER_KEYS = ("state_dict", "input_size", "tta", "train_args")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--member", nargs=2, action="append", required=True, type=Path, metavar=("WEIGHTS", "CV"),
                        help="a network from train_detector.py and the out-of-fold candidates of its CV run")
    parser.add_argument("--out", type=Path, default=Path("tools/weights/detector.pt"))
    parser.add_argument("--cv-out", type=Path, default=Path("var/detector/cv_candidates.json"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if len(args.member) < 2:
        parser.error("an ensemble needs at least two --member")
    members, settings, runs = [], [], []
    for weights, cv in args.member:
        payload = torch.load(weights, map_location="cpu", weights_only=True)
        if "state_dict" not in payload:
            parser.error(f"{weights} is not a single network written by train_detector.py")
        members.append({k: payload[k] for k in MEMBER_KEYS if k in payload})
        run_settings, images = operating_point.read_cv(cv)
        settings.append({"weights": weights.name, "cv": cv.name, **run_settings})
        runs.append(images)
    fused = fuse_cv_runs(runs, MAX_CANDIDATES)
    operating_point.write_cv(args.cv_out, {"folds": settings[0]["folds"], "members": settings,
                                           "fusion_radius_fraction": FUSION_RADIUS_FRACTION}, fused)
    operating_point.finalise({"members": members, "fusion_radius_fraction": FUSION_RADIUS_FRACTION}, args.cv_out,
                             args.out)


if __name__ == "__main__":
    main()
