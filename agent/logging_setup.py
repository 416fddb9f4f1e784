"""One logging configuration for the CLI and the app (stderr, no PHI: callers log study ids only)."""

from __future__ import annotations

import logging


def configure_logging(verbose: bool = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        force=True,
    )
    for noisy in ("httpx", "urllib3", "matplotlib", "PIL", "pydicom"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
