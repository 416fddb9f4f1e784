"""Compare two detector cross-validation runs on the same images: sensitivity at each FP rate and a paired bootstrap
interval of the difference (the same resampled images scored by both runs).

    python scripts/compare_detector_runs.py BASELINE.json CANDIDATE.json [--out comparison.json]

Inputs are out-of-fold candidate files written by scripts/train_detector.py (--cv-out). Paired resampling matters:
two runs share the hard and the easy images, so their difference varies far less than either sensitivity.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np

from tools.detector.froc import ImageCandidates, paired_difference
from tools.detector.operating_point import read_cv

log = logging.getLogger("compare_detector_runs")
FP_RATES = (0.5, 1.0, 2.0, 4.0)
BOOTSTRAP = 2000
SEED = 0


def read_run(path: Path) -> tuple[dict, list[ImageCandidates]]:
    """The run's settings (everything but the images) and its out-of-fold candidates."""
    settings, images = read_cv(path)
    return {"file": path.name, **settings}, images


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("baseline", type=Path)
    parser.add_argument("candidate", type=Path)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    baseline_settings, baseline = read_run(args.baseline)
    candidate_settings, candidate = read_run(args.candidate)
    result = {"baseline": baseline_settings, "candidate": candidate_settings, "bootstrap": BOOTSTRAP,
              "sensitivity_at_fp_per_image": paired_difference(baseline, candidate, FP_RATES,
                                                               np.random.default_rng(SEED), BOOTSTRAP)}
    text = json.dumps(result, indent=2) + "\n"
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    log.info("%s", text)


if __name__ == "__main__":
    main()
