"""The classifier tool: Study list -> ToolResult list (calibrated findings, Grad-CAM boxes, overlay, refusals)."""

from __future__ import annotations

import logging
import time

import numpy as np
from PIL import Image

from tools.classifier.data import LABELS
from tools.classifier.gate import refusal_reason
from tools.classifier.model import to_uint8_input
from tools.classifier.predict import MODEL_ID, Classifier, grad_cam, load_classifier, peak_box, predict
from tools.result import Box, Finding, Region, ToolResult, encode_png
from tools.study import Study

log = logging.getLogger(__name__)
THRESHOLD = 0.5  # operating point on the calibrated probability (not tuned on validation)
REPORTED = ("pneumonia", "covid19_pattern", "nodule", "no_finding")
CAM_LABELS = ("pneumonia", "covid19_pattern", "nodule")
DISCLAIMER = "decision support only: probabilities from a model trained on small public datasets; see model card"


def _refusal(study: Study, clf: Classifier | None, reason: str, latency_ms: float = 0.0) -> ToolResult:
    return ToolResult(tool="classifier", model_id=MODEL_ID, weights_sha256=clf.sha256 if clf else None,
                      study_id=study.id, status="refused", warnings=[f"refused: {reason}"],
                      latency_ms=round(latency_ms, 1), device=str(clf.device) if clf else "cpu")


def overlay_png_b64(frame: np.ndarray, cam: np.ndarray | None) -> str:
    grey = (np.clip(frame, 0, 1) * 255).astype(np.uint8)
    rgb = np.repeat(grey[..., None], 3, axis=-1).astype(np.float32)
    if cam is not None:
        heat = np.asarray(Image.fromarray((cam * 255).astype(np.uint8)).resize(grey.shape[::-1], Image.BILINEAR))
        alpha = (heat.astype(np.float32) / 255.0)[..., None] * 0.5
        colour = np.zeros_like(rgb)
        colour[..., 0] = 255.0
        colour[..., 1] = heat * 0.6
        rgb = rgb * (1 - alpha) + colour * alpha
    return encode_png(rgb.astype(np.uint8))


def _findings(clf: Classifier, image: np.ndarray, probs: np.ndarray, rows: int, cols: int,
              heatmaps: bool) -> tuple[list[Finding], list[Region], np.ndarray | None]:
    p = {label: float(probs[j]) for j, label in enumerate(LABELS)}
    positive = [lab for lab in CAM_LABELS if p[lab] >= THRESHOLD]
    cams = grad_cam(clf, image, [LABELS.index(lab) for lab in positive]) if heatmaps and positive else {}
    findings, regions = [], []
    for label in REPORTED:
        attributes: dict[str, str | float | int | bool] = {}
        if label == "pneumonia":
            attributes = {"p_viral_given_pneumonia": round(p["pneumonia_viral"], 4),
                          "subtype": "viral" if p["pneumonia_viral"] >= THRESHOLD else "bacterial"}
        box = None
        cam = cams.get(LABELS.index(label))
        if cam is not None:
            x0, y0, x1, y1 = peak_box(cam, rows, cols)
            box = Box(x0=x0, y0=y0, x1=x1, y1=y1)
            regions.append(Region(label=f"{label} (Grad-CAM peak)", box=box))
        findings.append(Finding(label=label, probability=round(p[label], 4), calibrated=True,
                                positive=p[label] >= THRESHOLD, threshold=THRESHOLD, box=box, attributes=attributes))
    top = max(cams.items(), key=lambda kv: probs[kv[0]])[1] if cams else None
    return findings, regions, top


def run(studies: list[Study], **options: object) -> list[ToolResult]:
    """Classify frontal chest X-rays, batched. Options: batch_size (int, default 32), heatmaps (bool, default
    True: Grad-CAM box and overlay for each positive finding), weights (path), device ('cpu'|'cuda')."""
    start = time.perf_counter()
    clf = load_classifier(options.get("weights"), options.get("device"))  # type: ignore[arg-type]
    heatmaps = bool(options.get("heatmaps", True))
    results: list[ToolResult | None] = [None] * len(studies)
    accepted = []
    for i, study in enumerate(studies):
        reason = refusal_reason(study)
        if reason:
            results[i] = _refusal(study, clf, reason)
        else:
            accepted.append(i)
    if accepted:
        images = np.stack([to_uint8_input(studies[i].frame()) for i in accepted])
        pred = predict(clf, images, batch_size=int(options.get("batch_size", 32)))  # type: ignore[arg-type]
        shared_ms = (time.perf_counter() - start) * 1000 / len(accepted)
        for k, i in enumerate(accepted):
            t0 = time.perf_counter()
            study = studies[i]
            score = float(pred.ood_score[k])
            if score > clf.ood.threshold:
                results[i] = _refusal(study, clf, f"image is unlike the training chest X-rays (feature distance "
                                      f"{score:.2f} > threshold {clf.ood.threshold:.2f}); not read", shared_ms)
                continue
            frame = study.frame()
            findings, regions, cam = _findings(clf, images[k], pred.probabilities[k], *frame.shape, heatmaps)
            warnings = [DISCLAIMER]
            if study.pixels.shape[0] > 1:
                warnings.append(f"multi-frame input: frame {study.pixels.shape[0] // 2} read")
            results[i] = ToolResult(
                tool="classifier", model_id=MODEL_ID, weights_sha256=clf.sha256, study_id=study.id,
                findings=findings, regions=regions, overlay_png_b64=overlay_png_b64(frame, cam) if heatmaps else None,
                latency_ms=round(shared_ms + (time.perf_counter() - t0) * 1000, 1), device=str(clf.device),
                warnings=warnings,
            )
    return [r for r in results if r is not None]
