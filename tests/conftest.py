"""Shared fixtures: the real data folder, real DICOM samples, and an isolated MEDAGENT_HOME."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

# Isolate state before any project module reads it; a fixed salt makes pseudonyms reproducible in tests.
os.environ.setdefault("MEDAGENT_HOME", tempfile.mkdtemp(prefix="medagent-test-home-"))
os.environ.setdefault("MEDAGENT_DEID_SALT", "test-salt")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# The app's default corpus takes minutes to embed on 2 cores; tests use the curated facts (seconds).
os.environ.setdefault("MEDAGENT_KNOWLEDGE_CORPUS", "curated")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

DATA_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SAMPLES = DATA_DIR / "dicom-samples"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    assert DATA_DIR.is_dir(), f"the real data folder is missing at {DATA_DIR}"
    return DATA_DIR


@pytest.fixture(scope="session")
def samples(data_dir: Path) -> Path:
    return data_dir / "dicom-samples"


@pytest.fixture(scope="session")
def testdata():
    """Real DICOM files from the pydicom-data package (offline)."""
    from pydicom.data import get_testdata_file

    def get(name: str) -> Path:
        path = get_testdata_file(name, download=False)
        assert path, f"pydicom-data lacks {name}"
        return Path(path)

    return get
