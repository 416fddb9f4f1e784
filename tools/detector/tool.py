"""The detector tool: Study list -> ToolResult list (nodule candidates: box, score, probability, size, side, zone)."""

from __future__ import annotations

import logging
import time

from tools.classifier.gate import refusal_reason
from tools.detector.anatomy import LungMap
from tools.detector.overlay import overlay_png_b64
from tools.detector.predict import Candidate, LoadedModel, load_model, predict
from tools.result import Box, Finding, Measurement, ToolResult
from tools.study import Study

log = logging.getLogger(__name__)
LABEL = "lung nodule candidate"
DEFAULT_MIN_SCORE = 0.05


def _refusal(study: Study, reason: str, loaded: LoadedModel) -> ToolResult:
    return ToolResult(tool="detector", model_id=loaded.model_id, study_id=study.id, status="refused",
                      warnings=[reason])


def _probability_threshold(loaded: LoadedModel) -> float | None:
    """The operating threshold on the scale of ``probability`` (calibration is monotonic: the same candidates pass)."""
    if loaded.threshold is None:
        return None
    return round(loaded.calibration(loaded.threshold), 4) if loaded.calibration else loaded.threshold


def _finding(study: Study, cand: Candidate, loaded: LoadedModel, lungs: LungMap | None) -> Finding:
    half = cand.diameter_px / 2
    rows, cols = study.frame().shape
    box = Box(x0=max(cand.x - half, 0.0), y0=max(cand.y - half, 0.0), x1=min(cand.x + half, float(cols)),
              y1=min(cand.y + half, float(rows)))
    attributes: dict[str, str | float | int | bool] = {"centre_x": round(cand.x, 1), "centre_y": round(cand.y, 1)}
    if loaded.threshold is not None:
        attributes["score_threshold"] = round(loaded.threshold, 4)
    spacing = study.pixel_spacing_mm
    if spacing is not None:
        attributes["diameter_mm"] = round(cand.diameter_px * spacing[1], 1)
    else:
        attributes["diameter_px"] = round(cand.diameter_px, 1)
    if lungs is not None:
        attributes.update(lungs.locate(cand.x, cand.y))
    return Finding(
        label=LABEL,
        score=round(cand.score, 4),
        probability=round(loaded.calibration(cand.score), 4) if loaded.calibration else None,
        calibrated=loaded.calibration is not None,
        positive=loaded.threshold is not None and cand.score >= loaded.threshold,
        threshold=_probability_threshold(loaded),
        box=box,
        attributes=attributes,
    )


def _result(study: Study, found: list[Candidate], loaded: LoadedModel, lungs: LungMap | None,
            latency_ms: float) -> ToolResult:
    findings = [_finding(study, c, loaded, lungs) for c in found]
    warnings = []
    if lungs is None:
        warnings.append("lung masks unavailable: side and zone not given, and candidates outside the lungs were not "
                        "removed (the calibration and threshold assume they are)")
    if study.pixel_spacing_mm is None:
        warnings.append("pixel spacing unknown: nodule diameters in px")
    measurements = [Measurement(name="nodule_diameter", value=float(f.attributes.get("diameter_mm",
                                f.attributes.get("diameter_px", 0.0))),
                                unit="mm" if "diameter_mm" in f.attributes else "px", structure=f"candidate {i + 1}")
                    for i, f in enumerate(findings) if f.positive]
    return ToolResult(
        tool="detector",
        model_id=loaded.model_id,
        weights_sha256=loaded.sha256,
        study_id=study.id,
        findings=findings,
        measurements=measurements,
        overlay_png_b64=overlay_png_b64(study.frame(), findings),
        latency_ms=round(latency_ms, 1),
        device=loaded.device.type,
        warnings=warnings,
    )


def run(studies: list[Study], **options: object) -> list[ToolResult]:
    """Find lung nodule candidates on frontal chest X-rays, batched. Options: min_score (raw score floor, default
    0.05; every candidate above it is returned, sorted), anatomy (default True: side and zone from the segmenter's
    lung masks), batch_size."""
    start = time.perf_counter()
    min_score = float(options.get("min_score", DEFAULT_MIN_SCORE))  # type: ignore[arg-type]
    loaded = load_model()
    reasons = {id(s): refusal_reason(s, tool="detector") for s in studies}
    accepted = [s for s in studies if reasons[id(s)] is None]
    frames = [s.frame() for s in accepted]
    found = predict(frames, loaded, batch_size=int(options.get("batch_size", 8)))  # type: ignore[arg-type]
    lung_maps: list[LungMap | None] = [None] * len(accepted)
    if options.get("anatomy", True) and accepted:
        lung_maps = LungMap.for_frames(frames)
    per_image_ms = (time.perf_counter() - start) * 1000 / max(len(accepted), 1)
    by_id = {id(s): (f, m) for s, f, m in zip(accepted, found, lung_maps, strict=True)}
    results = []
    for study in studies:
        if id(study) not in by_id:
            results.append(_refusal(study, reasons[id(study)] or "not a frontal chest X-ray", loaded))
            continue
        t0 = time.perf_counter()
        cands, lungs = by_id[id(study)]
        kept = [c for c in cands if c.score >= min_score and (lungs is None or lungs.allows(c.x, c.y))]
        result = _result(study, kept, loaded, lungs, 0.0)
        result.latency_ms = round(per_image_ms + (time.perf_counter() - t0) * 1000, 1)
        results.append(result)
    return results

