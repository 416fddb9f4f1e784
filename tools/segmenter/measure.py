"""Clinical measurements and quality flags from anatomy masks (pure numpy; no model here).

Conventions: image x grows to the viewer's right; on a frontal CXR the patient's right lung is on the image left.
Lengths are in mm and areas in cm^2 only when the pixel spacing is known; otherwise px and px^2.
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel

from tools.result import Measurement

CARDIOMEGALY_CTR = 0.5
MIN_LUNG_FRACTION = 0.01  # of the image area: below this a lung field counts as missing
BORDER_TOUCH_FRACTION = 0.04  # of the lung's boundary length lying on the image border: "cut off"
LOW_CONFIDENCE = 0.75  # mean foreground probability inside a predicted structure
ROTATION_ASYMMETRY = 0.10  # |d_r - d_l| / thoracic width (d: medial clavicle end to midline); ~95th pct on JSRT train


class MaskMeasurements(BaseModel):
    measurements: list[Measurement]
    ctr: float | None
    heart_width_px: float | None
    thoracic_width_px: float | None
    rotation_index: float | None
    warnings: list[str]


def horizontal_extent(mask: np.ndarray) -> tuple[int, int] | None:
    """(min x, max x + 1) of a mask, or None when empty."""
    cols = np.flatnonzero(mask.any(axis=0))
    return (int(cols[0]), int(cols[-1]) + 1) if len(cols) else None


def heart_width(heart: np.ndarray) -> float | None:
    """Maximal horizontal cardiac width: right-most minus left-most heart pixel (MRD + MLD), in px."""
    ext = horizontal_extent(heart)
    return float(ext[1] - ext[0]) if ext else None


def thoracic_width(right_lung: np.ndarray, left_lung: np.ndarray) -> float | None:
    """Maximal internal thoracic width: the largest, over rows, distance between the lungs' outer edges, in px."""
    rows = right_lung.any(axis=1) & left_lung.any(axis=1)
    if not rows.any():
        return None
    ys = np.flatnonzero(rows)
    cols = np.arange(right_lung.shape[1])
    right_outer = np.where(right_lung[ys], cols, right_lung.shape[1]).min(axis=1)
    left_outer = np.where(left_lung[ys], cols, -1).max(axis=1) + 1
    return float((left_outer - right_outer).max())


def cardiothoracic_ratio(masks: dict[str, np.ndarray]) -> float | None:
    hw = heart_width(masks["heart"])
    tw = thoracic_width(masks["right_lung"], masks["left_lung"])
    return hw / tw if hw and tw else None


def rotation_index(masks: dict[str, np.ndarray]) -> float | None:
    """Signed clavicle asymmetry: (d_r - d_l) / thoracic width, d = medial clavicle end's distance to the midline.

    The midline is the centre of the thoracic width (lungs' outer edges), a proxy for the spinous processes.
    """
    rc, lc = horizontal_extent(masks["right_clavicle"]), horizontal_extent(masks["left_clavicle"])
    rl, ll = horizontal_extent(masks["right_lung"]), horizontal_extent(masks["left_lung"])
    if not (rc and lc and rl and ll):
        return None
    mid = (rl[0] + ll[1]) / 2
    d_r, d_l = mid - rc[1], lc[0] - mid
    width = ll[1] - rl[0]
    return float((d_r - d_l) / width) if width > 0 else None


def _touches_border(mask: np.ndarray) -> float:
    """Fraction of the mask's boundary pixels that lie on the outermost image row/column."""
    if not mask.any():
        return 0.0
    border = np.zeros_like(mask)
    border[0, :] = border[-1, :] = border[:, 0] = border[:, -1] = True
    inner = mask.copy()
    inner[1:-1, 1:-1] = (
        mask[1:-1, 1:-1] & mask[:-2, 1:-1] & mask[2:, 1:-1] & mask[1:-1, :-2] & mask[1:-1, 2:]
    )
    inner[border] = False
    edge = mask & ~inner
    return float((edge & border).sum() / max(edge.sum(), 1))


def measure(
    masks: dict[str, np.ndarray],
    spacing_mm: tuple[float, float] | None,
    view_position: str | None,
    confidence: dict[str, float] | None = None,
) -> MaskMeasurements:
    """All measurements and quality warnings for one image's boolean masks (keys: the five structures)."""
    out: list[Measurement] = []
    warnings: list[str] = []
    h, w = masks["right_lung"].shape
    pixel_area_cm2 = spacing_mm[0] * spacing_mm[1] / 100.0 if spacing_mm else None
    view = (view_position or "").upper()

    areas: dict[str, float] = {}
    for side in ("right_lung", "left_lung"):
        px = float(masks[side].sum())
        areas[side] = px
        if pixel_area_cm2:
            out.append(Measurement(name="lung_area", value=round(px * pixel_area_cm2, 2), unit="cm2", structure=side))
        else:
            out.append(Measurement(name="lung_area", value=px, unit="px2", structure=side,
                                   note="pixel spacing unknown: area in pixels"))
        name = side.replace("_", " ")
        if px < MIN_LUNG_FRACTION * h * w:
            warnings.append(f"quality: {name} field missing (segmented area {px:.0f} px, under "
                            f"{MIN_LUNG_FRACTION:.0%} of the image)")
        elif (frac := _touches_border(masks[side])) > BORDER_TOUCH_FRACTION:
            warnings.append(f"quality: {name} field cut off at the image border ({frac:.0%} of its outline lies "
                            "on the border); areas and CTR may be underestimated")
    if areas["right_lung"] > 0 and areas["left_lung"] > 0:
        out.append(Measurement(name="lung_area_ratio_right_left", value=round(areas["right_lung"] /
                               areas["left_lung"], 3), unit="ratio"))

    hw = heart_width(masks["heart"])
    tw = thoracic_width(masks["right_lung"], masks["left_lung"])
    col_mm = spacing_mm[1] if spacing_mm else None
    for label, value, structure in (("heart_width", hw, "heart"), ("thoracic_width", tw, None)):
        if value is None:
            continue
        if col_mm:
            out.append(Measurement(name=label, value=round(value * col_mm, 1), unit="mm", structure=structure))
        else:
            out.append(Measurement(name=label, value=value, unit="px", structure=structure,
                                   note="pixel spacing unknown: width in pixels"))
    ctr = hw / tw if hw and tw else None
    if ctr is not None:
        note = "max horizontal cardiac width / max internal thoracic width (from the masks)"
        if view.startswith("AP"):
            note += "; AP projection magnifies the heart: CTR is overestimated and the 0.5 cut-off is for PA"
        elif view != "PA":
            note += f"; view position {view or 'unknown'}: the 0.5 cut-off is defined for PA"
        out.append(Measurement(name="cardiothoracic_ratio", value=round(ctr, 4), unit="ratio", note=note))
    else:
        warnings.append("quality: cardiothoracic ratio not computable (heart or a lung field not segmented)")

    rot = rotation_index(masks)
    if rot is not None:
        out.append(Measurement(name="clavicle_asymmetry_index", value=round(rot, 3), unit="ratio",
                               note="(d_right - d_left) / thoracic width, d: medial clavicle end to thoracic midline"))
        if abs(rot) > ROTATION_ASYMMETRY:
            side = "right" if rot > 0 else "left"
            warnings.append(f"quality: patient rotation suspected: clavicle heads asymmetric about the midline "
                            f"(index {rot:+.2f}, {side} medial end farther); CTR and widths less reliable")
    else:
        warnings.append("quality: rotation not assessable (a clavicle or lung field not segmented)")

    for structure, conf in (confidence or {}).items():
        out.append(Measurement(name="mask_confidence", value=round(conf, 3), unit="probability", structure=structure))
        if conf < LOW_CONFIDENCE:
            warnings.append(f"quality: low mask confidence for {structure.replace('_', ' ')} (mean probability "
                            f"{conf:.2f} < {LOW_CONFIDENCE}); check the overlay")
    return MaskMeasurements(measurements=out, ctr=ctr, heart_width_px=hw, thoracic_width_px=tw,
                            rotation_index=rot, warnings=warnings)
