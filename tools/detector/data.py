"""JSRT nodule data for training and evaluation: index rows, cached resized arrays, patient-level folds.

Arrays (images and SCR lung masks at the model's input size) are cached under var/cache (never committed: JSRT
forbids redistribution). JSRT has one image per patient, so an image-level split is a patient-level split.
"""

from __future__ import annotations

import csv
import hashlib
import logging
from pathlib import Path

import numpy as np
from PIL import Image
from pydantic import BaseModel

from tools.detector.model import INPUT_SIZE

log = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parents[2]
JSRT_DIR = PROJECT_ROOT.parent / "shared" / "data" / "cxr-jsrt-scr"
CACHE_DIR = PROJECT_ROOT / "var" / "cache"
SOURCE_SIZE = 512
SPACING_MM = 0.7
FOLD_SEED = 20261207


class Case(BaseModel):
    """One JSRT image; the nodule fields are None for the negatives. Coordinates in the 512x512 source image."""

    name: str
    nodule: bool
    x: float | None = None
    y: float | None = None
    size_mm: float | None = None
    subtlety: int | None = None

    @property
    def radius_px(self) -> float:
        """The hit radius in source pixels: half the diameter, at 0.7 mm/px."""
        return float(self.size_mm or 0.0) / 2 / SPACING_MM

    @property
    def image_path(self) -> Path:
        return JSRT_DIR / "images" / f"{self.name}.png"


def load_cases(root: Path = JSRT_DIR) -> list[Case]:
    with (root / "index.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    cases = []
    for r in rows:
        positive = r["nodule"].strip().lower() == "true"
        cases.append(Case(
            name=Path(r["image"]).stem,
            nodule=positive,
            x=float(r["nodule_x"]) if positive else None,
            y=float(r["nodule_y"]) if positive else None,
            size_mm=float(r["nodule_size_mm"]) if positive else None,
            subtlety=int(r["subtlety"]) if positive else None,
        ))
    return sorted(cases, key=lambda c: c.name)


def assign_folds(cases: list[Case], k: int = 5, seed: int = FOLD_SEED) -> dict[str, int]:
    """Seeded, stratified (nodule vs negative) assignment of each patient to one of k folds."""
    folds: dict[str, int] = {}
    for positive in (True, False):
        group = sorted((c.name for c in cases if c.nodule == positive),
                       key=lambda n: hashlib.sha256(f"{seed}:{n}".encode()).hexdigest())
        for i, name in enumerate(group):
            folds[name] = i % k
    return folds


def _resize(path: Path, size: int, resample: Image.Resampling) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("L").resize((size, size), resample), dtype=np.uint8)


def cached_arrays(cases: list[Case], size: int = INPUT_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 (N,size,size), lung masks bool (N,size,size)) in the order of ``cases``, cached in var/cache."""
    key = hashlib.sha256(("|".join(c.name for c in cases) + f"|{size}").encode()).hexdigest()[:12]
    path = CACHE_DIR / f"detector-jsrt-{size}-{key}.npz"
    if path.exists():
        data = np.load(path)
        return data["images"], data["lungs"]
    log.info("caching %d JSRT images at %d px to %s", len(cases), size, path)
    images = np.stack([_resize(c.image_path, size, Image.Resampling.BOX) for c in cases])
    lungs = np.stack([
        (_resize(JSRT_DIR / "masks" / "right_lung" / f"{c.name}.png", size, Image.Resampling.NEAREST) > 127)
        | (_resize(JSRT_DIR / "masks" / "left_lung" / f"{c.name}.png", size, Image.Resampling.NEAREST) > 127)
        for c in cases
    ])
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, images=images, lungs=lungs)
    return images, lungs
