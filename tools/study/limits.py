"""Configurable resource limits that protect the loader from oversized or hostile input."""

from __future__ import annotations

import os

from pydantic import BaseModel, Field

_MIB = 1024 * 1024


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return int(raw) if raw and raw.isdigit() else default


class StudyLimits(BaseModel):
    """Defaults fit a large CT series on a workstation; override with MEDAGENT_MAX_* variables."""

    max_bytes: int = Field(default_factory=lambda: _env_int("MEDAGENT_MAX_BYTES", 1024 * _MIB))
    max_pixels: int = Field(default_factory=lambda: _env_int("MEDAGENT_MAX_PIXELS", 300_000_000))
    max_frames: int = Field(default_factory=lambda: _env_int("MEDAGENT_MAX_FRAMES", 2000))
    max_zip_members: int = Field(default_factory=lambda: _env_int("MEDAGENT_MAX_ZIP_MEMBERS", 4000))
    max_zip_ratio: int = Field(default_factory=lambda: _env_int("MEDAGENT_MAX_ZIP_RATIO", 200))


def human_bytes(n: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} bytes"
