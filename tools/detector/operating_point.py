"""Fitting a detector checkpoint's operating point on its out-of-fold candidates: the anatomical prior, the Platt
calibration and the score threshold of the "positive" flag. Used by scripts/train_detector.py (one network) and
scripts/build_detector_ensemble.py (fused networks) alike, so both are calibrated on exactly what the tool returns."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from tools.detector.anatomy import LungMap
from tools.detector.calibration import fit_platt
from tools.detector.data import load_cases
from tools.detector.froc import ImageCandidates, froc, labelled_scores

log = logging.getLogger(__name__)
OPERATING_FP_PER_IMAGE = 0.5  # the "positive" flag: the score reached at this many false positives per image (CV)


def apply_anatomical_prior(images: list[ImageCandidates]) -> list[ImageCandidates]:
    """Drop the candidates outside the segmenter's (dilated) lungs and heart, as the tool does at inference."""
    cases = {c.name: c for c in load_cases()}
    frames = []
    for image in images:
        with Image.open(cases[image.name].image_path) as im:
            frames.append(np.asarray(im.convert("L"), dtype=np.float32) / 255)
    maps = LungMap.for_frames(frames)
    if any(m is None for m in maps):
        raise RuntimeError("the anatomical prior needs the segmenter's weights (tools/weights/segmenter.pt)")
    return [image.model_copy(update={"candidates": [c for c in image.candidates if m.allows(c.x, c.y)]})
            for image, m in zip(images, maps, strict=True)]


def read_cv(path: Path) -> tuple[dict, list[ImageCandidates]]:
    """An out-of-fold candidates file: its settings (everything but the images) and its images."""
    data = json.loads(path.read_text())
    return {k: v for k, v in data.items() if k != "images"}, [ImageCandidates.model_validate(im)
                                                              for im in data["images"]]


def write_cv(path: Path, settings: dict, images: list[ImageCandidates]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({**settings, "images": [im.model_dump() for im in images]}))


def finalise(payload: dict, cv_path: Path, weights: Path) -> None:
    """Apply the anatomical prior to the out-of-fold candidates at ``cv_path`` (saved beside them as *_prior.json,
    what eval_detector.py scores), fit the Platt calibration and the operating threshold on them into ``payload``
    and save it to ``weights``."""
    settings, images = read_cv(cv_path)
    cv = apply_anatomical_prior(images)
    prior_path = cv_path.with_name(f"{cv_path.stem}_prior{cv_path.suffix}")
    write_cv(prior_path, {**settings, "lung_prior": True}, cv)
    curve = froc(cv)
    calibration = fit_platt(*labelled_scores(cv))
    threshold = curve.threshold_at(OPERATING_FP_PER_IMAGE)
    payload.update({
        "calibration": {"a": calibration.a, "b": calibration.b, "fitted_on": "out-of-fold CV candidates"},
        "threshold": threshold,
        "lung_prior": True,
        "operating_point": {"fp_per_image": OPERATING_FP_PER_IMAGE,
                            "cv_sensitivity": round(curve.sensitivity_at(OPERATING_FP_PER_IMAGE), 4)},
        "cv": {f"sensitivity_at_{fp}_fp": round(curve.sensitivity_at(fp), 4) for fp in (0.5, 1, 2, 4)},
    })
    weights.parent.mkdir(parents=True, exist_ok=True)
    torch.save(payload, weights)
    log.info("wrote %s (sha256 %s) and %s: FROC with the prior %s, threshold %.4f, calibration a=%.3f b=%.3f",
             weights, hashlib.sha256(weights.read_bytes()).hexdigest()[:12], prior_path, payload["cv"], threshold,
             calibration.a, calibration.b)
