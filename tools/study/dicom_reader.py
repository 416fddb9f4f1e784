"""Reading DICOM datasets from bytes or files, with failures mapped to `StudyError`."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import pydicom
from pydicom.dataset import FileDataset

from tools.study.errors import StudyError, StudyErrorReason

DICM_OFFSET = 128

# Storage SOP classes that hold no image a reader looks at.
NON_IMAGE_SOP_PREFIXES = {
    "1.2.840.10008.5.1.4.1.1.66": "a DICOM Segmentation or raw-data object (labels, not an image)",
    "1.2.840.10008.5.1.4.1.1.88": "a DICOM Structured Report (text and codes, not an image)",
    "1.2.840.10008.5.1.4.1.1.11": "a DICOM Presentation State (display settings, not an image)",
    "1.2.840.10008.5.1.4.1.1.481": "a DICOM RT object (plan or structures, not an image)",
    "1.2.840.10008.5.1.4.1.1.104": "an encapsulated document (PDF/CDA), not an image",
    "1.2.840.10008.5.1.4.1.1.9": "a waveform (ECG or similar), not an image",
}


def looks_like_dicom(head: bytes) -> bool:
    return len(head) >= DICM_OFFSET + 4 and head[DICM_OFFSET : DICM_OFFSET + 4] == b"DICM"


def read_dataset(data: bytes | Path, *, name: str) -> FileDataset:
    """Parse one DICOM object; raise NOT_DICOM when it is not one, TRUNCATED/UNREADABLE when broken."""
    raw = data.read_bytes() if isinstance(data, Path) else data
    if not looks_like_dicom(raw[: DICM_OFFSET + 4]) and not _parses_without_preamble(raw):
        raise StudyError(
            StudyErrorReason.NOT_DICOM, f"'{name}' is not a DICOM file (no DICM marker and no DICOM header)."
        )
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            ds = pydicom.dcmread(io.BytesIO(raw), force=True)
            ds.ensure_file_meta()
            _touch_all(ds)
        if len(ds) == 0 or any("end of file" in str(w.message).lower() for w in caught):
            raise _truncated(name)
    except StudyError:
        raise
    except EOFError as exc:
        raise _truncated(name) from exc
    except Exception as exc:  # pydicom raises many types on corrupt headers
        text = str(exc).lower()
        if "end of file" in text or "truncat" in text or "bytes left" in text or "eof" in text:
            raise _truncated(name) from exc
        raise StudyError(
            StudyErrorReason.UNREADABLE, f"'{name}' is a damaged DICOM file: its header cannot be read."
        ) from exc
    if "TransferSyntaxUID" not in ds.file_meta:
        ds.file_meta.TransferSyntaxUID = pydicom.uid.ImplicitVRLittleEndian
    return ds


def non_image_description(ds: FileDataset) -> str | None:
    sop = str(ds.get("SOPClassUID", ""))
    for prefix, description in NON_IMAGE_SOP_PREFIXES.items():
        if sop.startswith(prefix):
            return description
    return None


def reject_non_image(ds: FileDataset, name: str) -> None:
    description = non_image_description(ds)
    if description:
        raise StudyError(
            StudyErrorReason.NON_IMAGE_OBJECT,
            f"'{name}' is {description}. Upload the image (or image series) it refers to.",
        )


def _truncated(name: str) -> StudyError:
    return StudyError(
        StudyErrorReason.TRUNCATED,
        f"'{name}' ends before its DICOM header does: the file is truncated. Export it again.",
    )


def _parses_without_preamble(raw: bytes) -> bool:
    """Some old files lack the 128-byte preamble; accept them only if they start with a group-8 tag."""
    first_elements = (b"\x00\x00", b"\x05\x00", b"\x08\x00", b"\x16\x00", b"\x18\x00")
    return len(raw) > 8 and raw[:2] in (b"\x08\x00", b"\x02\x00") and raw[2:4] in first_elements


def _touch_all(ds: FileDataset) -> None:
    """Force every element to parse now, so corruption surfaces here rather than later."""
    for elem in ds.iterall():
        _ = elem.value
