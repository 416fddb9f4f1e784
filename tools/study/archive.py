"""Collect DICOM files from a folder or a zip archive, refusing unsafe or oversized archives."""

from __future__ import annotations

import io
import stat
import zipfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from tools.study.errors import StudyError, StudyErrorReason
from tools.study.limits import StudyLimits, human_bytes

ZIP_MAGIC = b"PK\x03\x04"
SKIPPED_NAMES = ("__MACOSX", ".DS_Store", "Thumbs.db")


def folder_members(folder: Path, limits: StudyLimits) -> Iterator[tuple[str, bytes]]:
    files = sorted(p for p in folder.rglob("*") if p.is_file() and not _skipped(p.relative_to(folder).parts))
    return file_members(files, limits, "The folder", base=folder)


def file_members(
    files: list[Path], limits: StudyLimits, what: str = "The upload", base: Path | None = None
) -> Iterator[tuple[str, bytes]]:
    """(name, bytes) of each file, after checking the count and total size against the limits up front."""
    if len(files) > limits.max_zip_members:
        raise StudyError(
            StudyErrorReason.TOO_LARGE, f"{what} holds {len(files)} files; the limit is {limits.max_zip_members}."
        )
    total = sum(p.stat().st_size for p in files)
    if total > limits.max_bytes:
        raise StudyError(
            StudyErrorReason.TOO_LARGE,
            f"{what} holds {human_bytes(total)}; the limit is {human_bytes(limits.max_bytes)}.",
        )
    return ((str(p.relative_to(base)) if base else p.name, p.read_bytes()) for p in files)


def zip_members(data: bytes, limits: StudyLimits) -> Iterator[tuple[str, bytes]]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = [i for i in archive.infolist() if not i.is_dir()]
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise StudyError(StudyErrorReason.UNREADABLE, "The zip archive is damaged and cannot be opened.") from exc
    _check_zip(infos, limits)
    for info in infos:
        if _skipped(PurePosixPath(info.filename).parts):
            continue
        try:
            yield info.filename, archive.read(info)
        except (zipfile.BadZipFile, OSError, ValueError, RuntimeError) as exc:
            raise StudyError(
                StudyErrorReason.UNREADABLE, f"The zip entry '{info.filename}' is damaged or encrypted."
            ) from exc


def _check_zip(infos: list[zipfile.ZipInfo], limits: StudyLimits) -> None:
    if len(infos) > limits.max_zip_members:
        raise StudyError(
            StudyErrorReason.TOO_LARGE, f"The zip holds {len(infos)} files; the limit is {limits.max_zip_members}."
        )
    total = 0
    for info in infos:
        name = PurePosixPath(info.filename.replace("\\", "/"))
        if name.is_absolute() or ".." in name.parts or (info.filename[1:2] == ":"):
            raise StudyError(
                StudyErrorReason.UNSAFE_ARCHIVE,
                f"The zip entry '{info.filename}' points outside the archive folder; the archive is refused.",
            )
        if stat.S_ISLNK(info.external_attr >> 16):
            raise StudyError(
                StudyErrorReason.UNSAFE_ARCHIVE, f"The zip entry '{info.filename}' is a symbolic link; refused."
            )
        if info.compress_size > 0 and info.file_size / info.compress_size > limits.max_zip_ratio:
            raise StudyError(
                StudyErrorReason.TOO_LARGE,
                f"The zip entry '{info.filename}' expands {info.file_size // info.compress_size}x: "
                "this looks like a zip bomb and is refused.",
            )
        total += info.file_size
    if total > limits.max_bytes:
        raise StudyError(
            StudyErrorReason.TOO_LARGE,
            f"The zip expands to {human_bytes(total)}; the limit is {human_bytes(limits.max_bytes)}.",
        )


def _skipped(parts: tuple[str, ...]) -> bool:
    return any(part in SKIPPED_NAMES or part.startswith(".") for part in parts)
