"""Typed study-loading errors with messages a clinician can act on."""

from __future__ import annotations

from enum import StrEnum


class StudyErrorReason(StrEnum):
    NOT_AN_IMAGE = "not_an_image"
    NOT_DICOM = "not_dicom"
    TRUNCATED = "truncated"
    NO_PIXEL_DATA = "no_pixel_data"
    NON_IMAGE_OBJECT = "non_image_object"
    UNSUPPORTED_PHOTOMETRIC = "unsupported_photometric"
    DECODER_MISSING = "decoder_missing"
    TOO_LARGE = "too_large"
    UNSAFE_ARCHIVE = "unsafe_archive"
    MULTIPLE_SERIES = "multiple_series"
    EMPTY = "empty"
    NOT_FOUND = "not_found"
    UNREADABLE = "unreadable"


class StudyError(Exception):
    """A study could not be loaded; `reason` is machine-readable, `message` is for the clinician."""

    def __init__(self, reason: StudyErrorReason, message: str, *, choices: list[str] | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.choices = choices or []

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"error": self.reason.value, "message": self.message}
        if self.choices:
            out["choices"] = self.choices
        return out
