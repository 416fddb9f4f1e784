"""Input checks before the classifier: only frontal chest X-rays are accepted (the feature-distance check that
follows the model is in tools/classifier/ood.py)."""

from __future__ import annotations

import numpy as np

from tools.study import Study

ACCEPTED_MODALITIES = ("CR", "DX", "OT")
LATERAL_VIEWS = ("LL", "RL", "LAT", "LATERAL", "L", "RLD", "LLD")
# DICOM Body Part Examined defined terms (PS3.16 Annex L) that are clearly not a chest. Free text that is not
# a defined term is ignored rather than echoed: the tag is untrusted and the image checks still apply.
NON_CHEST_BODY_PARTS = frozenset(
    [
        "ABDOMEN",
        "ANKLE",
        "ARM",
        "BRAIN",
        "BREAST",
        "CSPINE",
        "ELBOW",
        "EXTREMITY",
        "FINGER",
        "FOOT",
        "FOREARM",
        "HAND",
        "HEAD",
        "HIP",
        "JAW",
        "KNEE",
        "LEG",
        "LSPINE",
        "NECK",
        "PELVIS",
        "SHOULDER",
        "SKULL",
        "SSPINE",
        "TSPINE",
        "TOE",
        "WRIST",
        "FEMUR",
        "HUMERUS",
        "TIBIA",
        "FIBULA",
    ]
)
CHROMA_LIMIT = 0.06  # mean (max - min) over RGB channels; grey radiographs saved as RGB sit near 0


def colourfulness(study: Study) -> float:
    if study.rgb is None:
        return 0.0
    rgb = study.rgb[study.rgb.shape[0] // 2]
    step = max(1, min(rgb.shape[:2]) // 256)
    sample = rgb[::step, ::step]
    return float((sample.max(axis=-1) - sample.min(axis=-1)).mean())


def refusal_reason(study: Study, tool: str = "classifier") -> str | None:
    """A reason a clinician understands when the study is not a frontal chest X-ray, else None."""
    meta = study.metadata
    modality = (meta.modality or "OT").upper()
    if modality not in ACCEPTED_MODALITIES:
        return f"not a chest radiograph: modality {modality}; the {tool} only reads frontal chest X-rays"
    view = (meta.view_position or "").strip().upper()
    if view in LATERAL_VIEWS:
        return f"lateral view (ViewPosition {view}); the {tool} only reads frontal (PA/AP) chest X-rays"
    body = (meta.body_part or "").strip().upper()
    if body in NON_CHEST_BODY_PARTS:
        return f"body part {body} is not chest; the {tool} only reads frontal chest X-rays"
    chroma = colourfulness(study)
    if chroma > CHROMA_LIMIT:
        return f"colour image (mean chroma {chroma:.2f}): not a radiograph"
    frame = study.frame()
    if float(np.std(frame)) < 0.02:
        return "image is nearly uniform: no readable content"
    return None
