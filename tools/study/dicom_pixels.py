"""DICOM pixel pipeline: decode, modality LUT, VOI LUT/window, MONOCHROME1, colour, to [0, 1]."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from pydicom.dataset import Dataset
from pydicom.pixels import apply_color_lut, apply_modality_lut, apply_voi_lut, get_decoder
from pydicom.uid import UID

from tools.study.errors import StudyError, StudyErrorReason
from tools.study.limits import StudyLimits

GRAYSCALE = ("MONOCHROME1", "MONOCHROME2")
COLOUR = ("RGB", "YBR_FULL", "YBR_FULL_422", "YBR_ICT", "YBR_RCT", "PALETTE COLOR")
LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114], dtype=np.float32)
DECODER_PACKAGES = "pip install pylibjpeg pylibjpeg-libjpeg pylibjpeg-openjpeg pylibjpeg-rle"


@dataclass
class DecodedPixels:
    pixels: np.ndarray  # (frames, rows, cols) float32 in [0, 1]
    modality_values: np.ndarray | None
    rgb: np.ndarray | None
    voi_source: str
    window: tuple[float, float] | None
    warnings: list[str] = field(default_factory=list)


def frame_count(ds: Dataset) -> int:
    try:
        return max(1, int(ds.get("NumberOfFrames", 1) or 1))
    except (TypeError, ValueError):
        return 1


def check_pixel_module(ds: Dataset, limits: StudyLimits) -> None:
    """Reject what cannot or must not be decoded, before any large allocation happens."""
    if "PixelData" not in ds and "FloatPixelData" not in ds and "DoubleFloatPixelData" not in ds:
        if "Rows" in ds and "Columns" in ds:
            raise StudyError(
                StudyErrorReason.TRUNCATED,
                "The file describes an image but its pixel data is missing: it looks truncated. Export it again.",
            )
        raise StudyError(
            StudyErrorReason.NO_PIXEL_DATA,
            "This DICOM file has no image in it (no Pixel Data): it may be a report, a "
            "presentation state or a worklist object. Upload the image file instead.",
        )
    photometric = str(ds.get("PhotometricInterpretation", "")).strip()
    if photometric not in GRAYSCALE + COLOUR:
        raise StudyError(
            StudyErrorReason.UNSUPPORTED_PHOTOMETRIC,
            f"The image uses the photometric interpretation '{photometric or 'missing'}', which this "
            "system cannot display correctly; supported: " + ", ".join(GRAYSCALE + COLOUR) + ".",
        )
    rows, cols = int(ds.get("Rows", 0) or 0), int(ds.get("Columns", 0) or 0)
    frames = frame_count(ds)
    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    if rows <= 0 or cols <= 0:
        raise StudyError(StudyErrorReason.UNREADABLE, "The image header gives no valid size (Rows/Columns).")
    if frames > limits.max_frames:
        raise StudyError(
            StudyErrorReason.TOO_LARGE, f"The file has {frames} frames; the limit is {limits.max_frames}."
        )
    if rows * cols * frames * samples > limits.max_pixels:
        raise StudyError(
            StudyErrorReason.TOO_LARGE,
            f"The image is {frames} x {rows} x {cols} pixels, over the limit of {limits.max_pixels:,} pixels.",
        )
    meta = ds.get("file_meta")
    syntax = UID(str(meta.TransferSyntaxUID)) if meta is not None and "TransferSyntaxUID" in meta else None
    if syntax is not None and syntax.is_compressed:
        try:
            decoder = get_decoder(syntax)
        except NotImplementedError as exc:
            raise StudyError(
                StudyErrorReason.DECODER_MISSING,
                f"The image is compressed with {syntax.name}, which no installed decoder supports.",
            ) from exc
        if not decoder.is_available:
            raise StudyError(
                StudyErrorReason.DECODER_MISSING,
                f"The image is compressed with {syntax.name} and no decoder for it is installed: "
                f"run `{DECODER_PACKAGES}`.",
            )


def decode(ds: Dataset, limits: StudyLimits) -> DecodedPixels:
    check_pixel_module(ds, limits)
    try:
        raw = ds.pixel_array
    except Exception as exc:  # decoders raise many types; the clinician needs one answer
        raise _decode_error(exc, _syntax_name(ds)) from exc
    frames = frame_count(ds)
    photometric = str(ds.PhotometricInterpretation).strip()
    if photometric in COLOUR:
        return _colour(ds, raw, frames, photometric)
    return _grayscale(ds, raw, frames, photometric)


def _decode_error(exc: Exception, syntax_name: str) -> StudyError:
    text = str(exc).lower()
    truncation_words = ("length", "truncat", "insufficient", "end of", "less than expected")
    if any(word in text for word in truncation_words):
        return StudyError(
            StudyErrorReason.TRUNCATED,
            "The image data is shorter than its header says: the file looks truncated (an interrupted "
            "transfer or copy). Export it again from the PACS.",
        )
    if "all available plugins" in text:
        return StudyError(
            StudyErrorReason.UNREADABLE,
            f"Every installed decoder failed on this {syntax_name}-compressed image: the compressed data is "
            "damaged or uses a variant they do not support.",
        )
    return StudyError(StudyErrorReason.UNREADABLE, "The image data in this DICOM file could not be decoded.")


def _syntax_name(ds: Dataset) -> str:
    meta = ds.get("file_meta")
    return str(meta.TransferSyntaxUID.name) if meta is not None and "TransferSyntaxUID" in meta else "unknown"


def _as_frames(arr: np.ndarray, frames: int, colour: bool) -> np.ndarray:
    grayscale_ndim = 3 if frames > 1 else 2
    expected = grayscale_ndim + (1 if colour else 0)
    if arr.ndim != expected:
        raise StudyError(StudyErrorReason.UNREADABLE, f"Decoded pixel array has an unexpected shape {arr.shape}.")
    return arr if frames > 1 else arr[np.newaxis]


def _grayscale(ds: Dataset, raw: np.ndarray, frames: int, photometric: str) -> DecodedPixels:
    warnings: list[str] = []
    values = np.asarray(apply_modality_lut(raw, ds), dtype=np.float32)
    values = _as_frames(values, frames, colour=False)
    if not np.isfinite(values).all():
        raise StudyError(StudyErrorReason.UNREADABLE, "The image contains invalid (non-finite) pixel values.")
    window: tuple[float, float] | None = None
    if "VOILUTSequence" in ds and len(ds.VOILUTSequence) > 0:
        # The LUT is indexed by (integer) modality values.
        indices = np.rint(values).astype(np.int64)
        voi = np.asarray(apply_voi_lut(indices, ds, index=0, prefer_lut=True), dtype=np.float32)
        lut = np.asarray(ds.VOILUTSequence[0].LUTData, dtype=np.float32)
        out = voi / max(float(lut.max()), 1.0)
        source = "VOI LUT Sequence"
    elif _first(ds.get("WindowCenter")) is not None and (_first(ds.get("WindowWidth")) or 0) > 0:
        center, width = float(_first(ds.WindowCenter)), float(_first(ds.WindowWidth))
        out = apply_window(values, center, width, str(ds.get("VOILUTFunction", "LINEAR")).strip())
        window, source = (center, width), "WindowCenter/WindowWidth"
        if _vm(ds.get("WindowCenter")) > 1:
            warnings.append("Several display windows are defined; the first one was applied.")
    else:
        out = min_max(values)
        source = "min-max"
    out = np.clip(out, 0.0, 1.0).astype(np.float32)
    if photometric == "MONOCHROME1":
        out = 1.0 - out
    return DecodedPixels(out, values, None, source, window, warnings)


def _colour(ds: Dataset, raw: np.ndarray, frames: int, photometric: str) -> DecodedPixels:
    if photometric == "PALETTE COLOR":
        raw = apply_color_lut(raw, ds)
        scale = float(2 ** int(ds.RedPaletteColorLookupTableDescriptor[2]) - 1)
    else:
        # pydicom converts YBR_* to RGB while decoding (as_rgb=True by default).
        scale = float(2 ** int(ds.get("BitsStored", 8)) - 1)
    rgb = _as_frames(np.asarray(raw, dtype=np.float32), frames, colour=True) / max(scale, 1.0)
    rgb = np.clip(rgb, 0.0, 1.0).astype(np.float32)
    return DecodedPixels(rgb @ LUMA_WEIGHTS, None, rgb, "min-max", None, [])


def apply_window(values: np.ndarray, center: float, width: float, function: str = "LINEAR") -> np.ndarray:
    """DICOM PS3.3 C.11.2.1.2 windowing to [0, 1] (LINEAR, LINEAR_EXACT, SIGMOID)."""
    if function == "SIGMOID":
        return 1.0 / (1.0 + np.exp(-4.0 * (values - center) / width))
    if function == "LINEAR_EXACT":
        return (values - (center - width / 2.0)) / width
    if width <= 1:
        return (values >= center - 0.5).astype(np.float32)
    return (values - (center - 0.5)) / (width - 1.0) + 0.5


def min_max(values: np.ndarray) -> np.ndarray:
    lo, hi = float(values.min()), float(values.max())
    return (values - lo) / (hi - lo) if hi > lo else np.zeros_like(values)


def _first(value: object) -> float | None:
    if value is None or value == "":
        return None
    try:
        return float(value[0]) if _vm(value) > 1 else float(value)  # type: ignore[index,arg-type]
    except (TypeError, ValueError):
        return None


def _vm(value: object) -> int:
    return len(value) if isinstance(value, list | tuple) or type(value).__name__ == "MultiValue" else 1
