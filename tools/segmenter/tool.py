"""The segmenter tool: Study list -> ToolResult list (masks, overlay, measurements, quality warnings)."""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path

import numpy as np
from PIL import Image

from tools.result import Finding, Region, ToolResult
from tools.segmenter.measure import CARDIOMEGALY_CTR, measure
from tools.segmenter.model import STRUCTURES
from tools.segmenter.overlay import overlay_png_b64
from tools.segmenter.predict import MODEL_ID, Prediction, load_model, predict
from tools.study import Study

log = logging.getLogger(__name__)
SUPPORTED_MODALITIES = ("CR", "DX", "OT")


def mask_stem(study: Study, source_name: str | None) -> str:
    """Folder name for --save-masks: the input file's stem when given, else a short study id."""
    if source_name:
        stem = Path(source_name).name.split(".")[0]
        stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", stem).strip("._")
        if stem:
            return stem
    return f"study-{study.id[:12]}"


def save_masks(directory: Path, stem: str, masks: dict[str, np.ndarray]) -> Path:
    target = directory / stem
    target.mkdir(parents=True, exist_ok=True)
    for name, mask in masks.items():
        Image.fromarray(mask.astype(np.uint8) * 255).save(target / f"{name}.png")
    return target


def _refusal(study: Study, reason: str) -> ToolResult:
    return ToolResult(tool="segmenter", model_id=MODEL_ID, study_id=study.id, status="refused", warnings=[reason])


def _result(study: Study, pred: Prediction, sha: str, device: str, latency_ms: float) -> ToolResult:
    frame = study.frame()
    m = measure(pred.masks, study.pixel_spacing_mm, study.metadata.view_position, pred.confidence)
    findings = []
    if m.ctr is not None:
        view = (study.metadata.view_position or "").upper()
        findings.append(Finding(
            label="cardiomegaly",
            score=round(m.ctr, 4),
            positive=m.ctr > CARDIOMEGALY_CTR,
            threshold=CARDIOMEGALY_CTR,
            attributes={"criterion": "cardiothoracic ratio > 0.5", "view_position": view or "unknown",
                        "ap_overestimates": view.startswith("AP")},
        ))
    warnings = list(m.warnings)
    if study.pixel_spacing_mm is None:
        warnings.append("pixel spacing unknown: lengths in px and areas in px2")
    return ToolResult(
        tool="segmenter",
        model_id=MODEL_ID,
        weights_sha256=sha,
        study_id=study.id,
        findings=findings,
        measurements=m.measurements,
        regions=[Region.from_mask(name, pred.masks[name]) for name in STRUCTURES],
        overlay_png_b64=overlay_png_b64(frame, pred.masks),
        latency_ms=round(latency_ms, 1),
        device=device,
        warnings=warnings,
    )


def run(studies: list[Study], **options: object) -> list[ToolResult]:
    """Segment lungs, heart and clavicles on frontal chest X-rays, batched; options: save_masks (dir),
    source_name / source_names (input file names for the mask folders), batch_size."""
    start = time.perf_counter()
    loaded = load_model()
    accepted = [s for s in studies if s.modality in SUPPORTED_MODALITIES and not s.is_volume]
    preds = predict([s.frame() for s in accepted], loaded, batch_size=int(options.get("batch_size", 8)))  # type: ignore[arg-type]
    per_image_ms = (time.perf_counter() - start) * 1000 / max(len(accepted), 1)
    by_id = {id(s): p for s, p in zip(accepted, preds, strict=True)}
    names = options.get("source_names") or [options.get("source_name")] * len(studies)
    out_dir = options.get("save_masks")
    results = []
    for study, name in zip(studies, names, strict=True):  # type: ignore[arg-type]
        pred = by_id.get(id(study))
        if pred is None:
            reason = (f"segmenter expects a frontal chest radiograph (CR/DX/OT 2-D image); got modality "
                      f"{study.modality} with {study.shape[0]} frame(s)")
            results.append(_refusal(study, reason))
            continue
        t0 = time.perf_counter()
        result = _result(study, pred, loaded.sha256, loaded.device.type, 0.0)
        result.latency_ms = round(per_image_ms + (time.perf_counter() - t0) * 1000, 1)
        if out_dir:
            save_masks(Path(str(out_dir)), mask_stem(study, name if isinstance(name, str) else None), pred.masks)
        results.append(result)
    return results
