"""Where the product keeps its state and finds the shared data, all overridable by environment."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def medagent_home() -> Path:
    """State folder (traces, indexes, secrets); MEDAGENT_HOME or ~/.medagent."""
    home = Path(os.environ.get("MEDAGENT_HOME", Path.home() / ".medagent"))
    home.mkdir(parents=True, exist_ok=True)
    return home


def shared_data_dir() -> Path:
    """The real data set folder: MEDAGENT_DATA_DIR, else ../shared/data beside the project."""
    configured = os.environ.get("MEDAGENT_DATA_DIR")
    return Path(configured) if configured else PROJECT_ROOT.parent / "shared" / "data"
