"""`load_study`: the one entry point from a path on disk to a de-identified `Study`."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path

from pydicom.dataset import Dataset

from tools.study.archive import ZIP_MAGIC, file_members, folder_members, zip_members
from tools.study.deid import installation_salt, pseudonymous_uid
from tools.study.dicom_reader import looks_like_dicom, read_dataset, reject_non_image
from tools.study.dicom_study import study_from_instances
from tools.study.errors import StudyError, StudyErrorReason
from tools.study.limits import StudyLimits, human_bytes
from tools.study.model import Study
from tools.study.raster import load_raster, raster_format

log = logging.getLogger(__name__)


def load_study(
    path: str | Path | Sequence[str | Path],
    *,
    limits: StudyLimits | None = None,
    series: str | None = None,
    salt: bytes | None = None,
) -> Study:
    """Load a DICOM file, a folder or .zip of DICOM files (one series), several DICOM files of one series (a list
    of paths, as a browser uploads a series), or a PNG/JPEG image.

    ``series`` picks one series by its pseudonymous Series Instance UID when a folder or zip holds
    several (the `StudyError` for that case lists the choices). Raises only `StudyError`.
    """
    limits = limits or StudyLimits()
    salt = installation_salt() if salt is None else salt
    if not isinstance(path, str | Path):
        return _files_study([Path(p) for p in path], limits, salt, series)
    path = Path(path)
    name = path.name
    try:
        if path.is_dir():
            return _series_study(folder_members(path, limits), limits, salt, series, name)
        if not path.is_file():
            raise StudyError(StudyErrorReason.NOT_FOUND, f"No file or folder at '{name}'.")
        size = path.stat().st_size
        if size == 0:
            raise StudyError(StudyErrorReason.EMPTY, f"'{name}' is empty (0 bytes).")
        if size > limits.max_bytes:
            raise StudyError(
                StudyErrorReason.TOO_LARGE,
                f"'{name}' is {human_bytes(size)}; the upload limit is {human_bytes(limits.max_bytes)}.",
            )
        return load_bytes(path.read_bytes(), name=name, limits=limits, series=series, salt=salt)
    except StudyError as err:
        log.warning("study rejected (%s)", err.reason.value)
        raise
    except MemoryError as exc:
        raise StudyError(StudyErrorReason.TOO_LARGE, f"'{name}' needs more memory than is available.") from exc


def _files_study(paths: list[Path], limits: StudyLimits, salt: bytes, series: str | None) -> Study:
    if len(paths) == 1:
        return load_study(paths[0], limits=limits, series=series, salt=salt)
    name = f"{len(paths)} files"
    try:
        if not paths:
            raise StudyError(StudyErrorReason.NOT_FOUND, "No file was given.")
        missing = [p.name for p in paths if not p.is_file()]
        if missing:
            raise StudyError(StudyErrorReason.NOT_FOUND, f"No file at '{missing[0]}'.")
        study = _series_study(file_members(sorted(paths), limits), limits, salt, series, name)
    except StudyError as err:
        if err.reason is StudyErrorReason.NOT_AN_IMAGE:
            err = StudyError(
                StudyErrorReason.NOT_AN_IMAGE,
                f"{err.message} Several files are read as one DICOM series; upload a PNG or JPEG on its own.",
            )
        log.warning("study rejected (%s)", err.reason.value)
        raise err from None
    return study


def load_bytes(
    data: bytes, *, name: str, limits: StudyLimits, series: str | None = None, salt: bytes
) -> Study:
    head = data[:132]
    if head.startswith(ZIP_MAGIC):
        return _series_study(zip_members(data, limits), limits, salt, series, name)
    if raster_format(head):
        return load_raster(data, name=name, limits=limits)
    dataset = read_dataset(data, name=name) if looks_like_dicom(head) or len(data) > 8 else None
    if dataset is None:
        raise StudyError(StudyErrorReason.NOT_AN_IMAGE, f"'{name}' is not a DICOM, PNG, JPEG or zip file.")
    reject_non_image(dataset, name)
    return _guarded(lambda: study_from_instances([dataset], limits, salt))


def _series_study(
    members: Iterable[tuple[str, bytes]], limits: StudyLimits, salt: bytes, series: str | None, name: str
) -> Study:
    by_series: dict[str, list[Dataset]] = defaultdict(list)
    skipped = 0
    for member_name, data in members:
        try:
            dataset = read_dataset(data, name=member_name)
        except StudyError as err:
            if err.reason is StudyErrorReason.NOT_DICOM:
                skipped += 1
                continue
            raise
        if "PixelData" not in dataset:
            skipped += 1  # DICOMDIR, reports and the like travel with series exports
            continue
        reject_non_image(dataset, member_name)
        uid = pseudonymous_uid(str(dataset.get("SeriesInstanceUID", "unknown")), salt)
        by_series[uid].append(dataset)
    if not by_series:
        raise StudyError(StudyErrorReason.NOT_AN_IMAGE, f"'{name}' holds no DICOM images.")
    if series is not None:
        if series not in by_series:
            raise StudyError(
                StudyErrorReason.MULTIPLE_SERIES, f"Series '{series}' is not in '{name}'.", choices=_choices(by_series)
            )
        chosen = by_series[series]
    elif len(by_series) > 1:
        raise StudyError(
            StudyErrorReason.MULTIPLE_SERIES,
            f"'{name}' holds {len(by_series)} series; choose one (by its series id) and load it.",
            choices=_choices(by_series),
        )
    else:
        chosen = next(iter(by_series.values()))
    study = _guarded(lambda: study_from_instances(chosen, limits, salt))
    if skipped:
        study.warnings.append(f"{skipped} file(s) without an image were skipped.")
    return study


def _choices(by_series: dict[str, list[Dataset]]) -> list[str]:
    return [
        f"{uid} ({items[0].get('Modality', '?')!s}, {len(items)} image(s))" for uid, items in sorted(by_series.items())
    ]


def _guarded(build):  # type: ignore[no-untyped-def]
    """Decoding untrusted input: anything that is not already a StudyError becomes one."""
    try:
        return build()
    except StudyError:
        raise
    except MemoryError:
        raise
    except Exception as exc:
        log.debug("unexpected decoder failure", exc_info=True)
        raise StudyError(
            StudyErrorReason.UNREADABLE, "The image could not be decoded: the file is damaged or non-standard."
        ) from exc
