"""PNG and JPEG (8- and 16-bit, grey or colour) into a `Study`."""

from __future__ import annotations

import io
import logging
import warnings as py_warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from tools.study.dicom_pixels import LUMA_WEIGHTS, min_max
from tools.study.dicom_study import content_id
from tools.study.errors import StudyError, StudyErrorReason
from tools.study.limits import StudyLimits
from tools.study.model import SafeMetadata, Study

log = logging.getLogger(__name__)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPEG_MAGIC = b"\xff\xd8\xff"
SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I")
NO_SPACING = "Pixel spacing is unknown (PNG/JPEG carry none): measurements are given in pixels."


def raster_format(head: bytes) -> str | None:
    if head.startswith(PNG_MAGIC):
        return "png"
    if head.startswith(JPEG_MAGIC):
        return "jpeg"
    return None


def load_raster(data: bytes, *, name: str, limits: StudyLimits) -> Study:
    fmt = raster_format(data[:8])
    if fmt is None:
        raise StudyError(StudyErrorReason.NOT_AN_IMAGE, f"'{name}' is not a PNG or JPEG image.")
    try:
        with py_warnings.catch_warnings():
            py_warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            width, height = image.size
            if width * height > limits.max_pixels:
                raise StudyError(
                    StudyErrorReason.TOO_LARGE,
                    f"'{name}' is {width} x {height} pixels, over the limit of {limits.max_pixels:,}.",
                )
            image.load()
            image = ImageOps.exif_transpose(image)
    except StudyError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise StudyError(StudyErrorReason.TOO_LARGE, f"'{name}' is too large to decode safely.") from exc
    except (OSError, SyntaxError, ValueError, UnidentifiedImageError) as exc:
        text = str(exc).lower()
        reason = StudyErrorReason.TRUNCATED if "truncat" in text or "broken" in text else StudyErrorReason.UNREADABLE
        raise StudyError(reason, f"'{name}' is a damaged {fmt.upper()} file and cannot be decoded.") from exc
    pixels, rgb, voi_source, bits = _normalise(image)
    study = Study(
        id=content_id(pixels),
        source_format=fmt,  # type: ignore[arg-type]
        metadata=SafeMetadata(
            modality="OT", rows=pixels.shape[1], columns=pixels.shape[2], frames=1, bits_stored=bits,
            photometric="RGB" if rgb is not None else "MONOCHROME2",
        ),
        pixels=pixels,
        rgb=rgb,
        voi_source=voi_source,  # type: ignore[arg-type]
        warnings=[NO_SPACING],
    )
    log.info("loaded study %s: %s %s", study.id[:12], fmt, study.shape)
    return study


def _normalise(image: Image.Image) -> tuple[np.ndarray, np.ndarray | None, str, int]:
    if image.mode in SIXTEEN_BIT_MODES:
        values = np.asarray(image, dtype=np.float32)
        # 16-bit files rarely fill their range (12-bit detectors): stretch what is there.
        return min_max(values)[np.newaxis].astype(np.float32), None, "min-max", 16
    if image.mode in ("L", "1", "LA"):
        grey = np.asarray(image.convert("L"), dtype=np.float32) / 255.0
        return grey[np.newaxis], None, "8-bit raster", 8
    rgb = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    if np.allclose(rgb[..., 0], rgb[..., 1]) and np.allclose(rgb[..., 1], rgb[..., 2]):
        return rgb[..., 0][np.newaxis], None, "8-bit raster", 8  # grey stored as RGB
    return (rgb @ LUMA_WEIGHTS)[np.newaxis].astype(np.float32), rgb[np.newaxis], "8-bit raster", 8
