"""Turn one DICOM instance, or the instances of one series, into a de-identified `Study`."""

from __future__ import annotations

import hashlib
import logging

import numpy as np
from pydicom.dataset import Dataset

from tools.study.deid import cap_age, deidentify
from tools.study.dicom_pixels import DecodedPixels, apply_window, decode, frame_count
from tools.study.errors import StudyError, StudyErrorReason
from tools.study.limits import StudyLimits
from tools.study.model import SafeMetadata, Study

log = logging.getLogger(__name__)

IMAGER_SPACING_CAVEAT = (
    "Pixel spacing comes from Imager Pixel Spacing (measured at the detector, not calibrated for "
    "geometric magnification): sizes in mm may be overestimated by about 10-20% on projection radiographs."
)
UNEVEN_SLICES_TOLERANCE = 0.1  # relative deviation from the median slice gap


def content_id(pixels: np.ndarray) -> str:
    digest = hashlib.sha256()
    digest.update(str(pixels.shape).encode())
    digest.update(np.ascontiguousarray(pixels, dtype=np.float32).tobytes())
    return digest.hexdigest()


def study_from_instances(datasets: list[Dataset], limits: StudyLimits, salt: bytes) -> Study:
    """Build a Study from the instances of one series (a single instance is a series of one)."""
    ordered, slice_spacing, warnings = order_slices(datasets)
    first = ordered[0]
    decoded = decode(first, limits) if len(ordered) == 1 else _stack(ordered, limits)
    clean = deidentify(first, salt)
    metadata = safe_metadata(clean, frames=decoded.pixels.shape[0])
    spacing, spacing_source, spacing_warning = pixel_spacing(first)
    warnings += decoded.warnings + ([spacing_warning] if spacing_warning else [])
    if str(first.get("BurnedInAnnotation", "")).upper() == "YES":
        warnings.append(
            "BurnedInAnnotation = YES: the pixels may show identifying text; it is not removed from the image."
        )
    study = Study(
        id=content_id(decoded.pixels),
        source_format="dicom",
        metadata=metadata,
        pixels=decoded.pixels,
        modality_values=decoded.modality_values,
        rgb=decoded.rgb,
        pixel_spacing_mm=spacing,
        spacing_source=spacing_source,
        slice_spacing_mm=slice_spacing,
        voi_source=decoded.voi_source,  # type: ignore[arg-type]
        window=decoded.window,
        warnings=warnings,
    )
    log.info("loaded study %s: %s %s", study.id[:12], metadata.modality, study.shape)
    return study


def _stack(ordered: list[Dataset], limits: StudyLimits) -> DecodedPixels:
    total = sum(int(ds.get("Rows", 0) or 0) * int(ds.get("Columns", 0) or 0) for ds in ordered)
    if total > limits.max_pixels or len(ordered) > limits.max_frames:
        raise StudyError(
            StudyErrorReason.TOO_LARGE,
            f"The series has {len(ordered)} slices ({total:,} pixels), over the configured limits.",
        )
    parts = [decode(ds, limits) for ds in ordered]
    shapes = {p.pixels.shape[1:] for p in parts}
    if len(shapes) != 1 or any(p.pixels.shape[0] != 1 for p in parts):
        raise StudyError(
            StudyErrorReason.UNREADABLE, "The series mixes image sizes or multi-frame files; load one file at a time."
        )
    values = [p.modality_values for p in parts]
    modality_values = np.concatenate(values) if all(v is not None for v in values) else None  # type: ignore[arg-type]
    # One VOI for the whole volume (the first slice's), so slices stay comparable.
    first = parts[0]
    if modality_values is not None and first.window is not None:
        center, width = first.window
        function = str(ordered[0].get("VOILUTFunction", "LINEAR")).strip()
        pixels = np.clip(apply_window(modality_values, center, width, function), 0, 1).astype(np.float32)
        if str(ordered[0].PhotometricInterpretation).strip() == "MONOCHROME1":
            pixels = 1.0 - pixels
    else:
        pixels = np.concatenate([p.pixels for p in parts])
    rgb = np.concatenate([p.rgb for p in parts]) if all(p.rgb is not None for p in parts) else None  # type: ignore[misc]
    return DecodedPixels(pixels, modality_values, rgb, first.voi_source, first.window, first.warnings)


def order_slices(datasets: list[Dataset]) -> tuple[list[Dataset], float | None, list[str]]:
    """Sort by position along the slice normal (ImagePositionPatient); fall back to InstanceNumber."""
    if len(datasets) == 1:
        thickness = datasets[0].get("SpacingBetweenSlices") or datasets[0].get("SliceThickness")
        return datasets, _float_or_none(thickness) if frame_count(datasets[0]) > 1 else None, []
    positions = [_position_along_normal(ds) for ds in datasets]
    if any(p is None for p in positions):
        ordered = sorted(datasets, key=lambda ds: int(ds.get("InstanceNumber", 0) or 0))
        return ordered, None, ["Slices lack Image Position (Patient): ordered by Instance Number, spacing unknown."]
    pairs = sorted(zip(positions, range(len(datasets)), strict=True))
    ordered = [datasets[i] for _, i in pairs]
    gaps = np.diff([p for p, _ in pairs])
    warnings: list[str] = []
    median_gap = float(np.median(gaps)) if len(gaps) else None
    uneven = median_gap and np.any(np.abs(gaps - median_gap) > UNEVEN_SLICES_TOLERANCE * median_gap)
    if median_gap is not None and median_gap > 0 and uneven:
        warnings.append("Slice gaps are uneven (missing or duplicate slices?): slice spacing is the median gap.")
    if median_gap == 0:
        warnings.append("Several slices share one position: the series may hold duplicates.")
    return ordered, (round(median_gap, 4) if median_gap else None), warnings


def _position_along_normal(ds: Dataset) -> float | None:
    try:
        position = np.asarray([float(v) for v in ds.ImagePositionPatient])
        orientation = np.asarray([float(v) for v in ds.ImageOrientationPatient])
    except (AttributeError, TypeError, ValueError):
        return None
    if position.shape != (3,) or orientation.shape != (6,):
        return None
    normal = np.cross(orientation[:3], orientation[3:])
    return float(position @ normal)


def pixel_spacing(ds: Dataset) -> tuple[tuple[float, float] | None, str | None, str | None]:
    for keyword in ("PixelSpacing", "ImagerPixelSpacing"):
        value = ds.get(keyword)
        try:
            row, col = float(value[0]), float(value[1])  # type: ignore[index]
        except (TypeError, ValueError, IndexError):
            continue
        if row > 0 and col > 0 and np.isfinite(row) and np.isfinite(col):
            caveat = IMAGER_SPACING_CAVEAT if keyword == "ImagerPixelSpacing" else None
            return (row, col), keyword, caveat
    return None, None, "Pixel spacing is unknown: measurements are given in pixels, not millimetres."


def safe_metadata(clean: Dataset, *, frames: int) -> SafeMetadata:
    """Whitelist of fields read from an already de-identified dataset."""
    signed = clean.get("PixelRepresentation")
    return SafeMetadata(
        modality=_text(clean.get("Modality")) or "OT",
        sop_class=_sop_name(clean),
        body_part=_text(clean.get("BodyPartExamined")),
        view_position=_text(clean.get("ViewPosition")),
        laterality=_text(clean.get("ImageLaterality")) or _text(clean.get("Laterality")),
        photometric=_text(clean.get("PhotometricInterpretation")),
        rows=int(clean.Rows),
        columns=int(clean.Columns),
        frames=frames,
        bits_stored=int(clean.BitsStored) if clean.get("BitsStored") is not None else None,
        signed=bool(int(signed)) if signed is not None else None,
        transfer_syntax=clean.file_meta.TransferSyntaxUID.name if "TransferSyntaxUID" in clean.file_meta else None,
        patient_sex=_text(clean.get("PatientSex")),
        patient_age=cap_age(_text(clean.get("PatientAge"))),
        manufacturer=_text(clean.get("Manufacturer")),
        pseudonymous_study_uid=_text(clean.get("StudyInstanceUID")),
        pseudonymous_series_uid=_text(clean.get("SeriesInstanceUID")),
        deidentification_method=str(clean.get("DeidentificationMethod", "")) or None,
    )


def _sop_name(ds: Dataset) -> str | None:
    sop = ds.get("SOPClassUID")
    if sop is None:
        return None
    name = getattr(sop, "name", str(sop))
    return str(name)


def _text(value: object) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text[:64] or None


def _float_or_none(value: object) -> float | None:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
