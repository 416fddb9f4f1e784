"""Training/evaluation data for the segmenter: JSRT/SCR (5 structures) and COVID-case lung masks (union only).

Arrays are resized once to the model's input size and cached under var/cache (never committed). The split is by
patient and seeded: JSRT has one image per patient; the COVID cases are grouped by `patientid`.
"""

from __future__ import annotations

import csv
import hashlib
import logging
from pathlib import Path

import numpy as np
from PIL import Image
from pydantic import BaseModel

from tools.segmenter.model import INPUT_SIZE, STRUCTURES

log = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DATA_ROOT = PROJECT_ROOT.parent / "shared" / "data"
JSRT_DIR = DATA_ROOT / "cxr-jsrt-scr"
COVID_DIR = DATA_ROOT / "cxr-covid-cases"
CACHE_DIR = PROJECT_ROOT / "var" / "cache"
SPLIT_SEED = 20261125
VAL_FRACTION = 0.2
FRONTAL_VIEWS = {"PA", "AP", "AP Supine"}


class Split(BaseModel):
    train: list[str]
    val: list[str]


def _is_val(key: str, seed: int = SPLIT_SEED) -> bool:
    """Deterministic, order-independent patient-level assignment (hash of seed + patient key)."""
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < VAL_FRACTION


def jsrt_names() -> list[str]:
    return sorted(p.stem for p in (JSRT_DIR / "images").glob("*.png"))


def jsrt_split() -> Split:
    names = jsrt_names()
    return Split(train=[n for n in names if not _is_val(n)], val=[n for n in names if _is_val(n)])


def covid_rows() -> list[dict[str, str]]:
    with (COVID_DIR / "metadata.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    return [r for r in rows if r["lung_mask"] and r["modality"] == "X-ray" and r["view"] in FRONTAL_VIEWS]


def covid_split() -> Split:
    rows = covid_rows()
    train = [r["image"] for r in rows if not _is_val("covid-" + r["patientid"])]
    val = [r["image"] for r in rows if _is_val("covid-" + r["patientid"])]
    return Split(train=train, val=val)


def read_grey(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("L"), dtype=np.uint8)


def jsrt_masks(name: str) -> np.ndarray:
    """(5, 512, 512) bool reference masks in STRUCTURES order."""
    return np.stack([read_grey(JSRT_DIR / "masks" / s / f"{name}.png") > 127 for s in STRUCTURES])


def resize(array: np.ndarray, size: int = INPUT_SIZE) -> np.ndarray:
    """uint8 (H,W) -> uint8 (size,size), area-averaged (masks become soft 0..255 edges)."""
    return np.asarray(Image.fromarray(array).resize((size, size), Image.Resampling.BOX))


def _build(kind: str, size: int) -> dict[str, np.ndarray]:
    if kind == "jsrt":
        names = jsrt_names()
        images = np.stack([resize(read_grey(JSRT_DIR / "images" / f"{n}.png"), size) for n in names])
        masks = np.stack([np.stack([resize(m.astype(np.uint8) * 255, size) for m in jsrt_masks(n)]) for n in names])
        return {"names": np.array(names), "images": images, "masks": masks}
    rows = covid_rows()
    images = np.stack([resize(read_grey(COVID_DIR / r["image"]), size) for r in rows])
    masks = np.stack([resize((read_grey(COVID_DIR / r["lung_mask"]) > 127).astype(np.uint8) * 255, size) for r in rows])
    return {"names": np.array([r["image"] for r in rows]), "images": images, "masks": masks[:, None]}


def cached(kind: str, size: int = INPUT_SIZE) -> dict[str, np.ndarray]:
    """Resized arrays for 'jsrt' (masks N,5,S,S) or 'covid' (lung-union masks N,1,S,S), uint8, cached as .npz."""
    path = CACHE_DIR / f"segmenter-{kind}-{size}.npz"
    if not path.exists():
        log.info("building cache %s", path)
        CACHE_DIR.mkdir(parents=True, exist_ok=True)
        np.savez(path, **_build(kind, size))
    with np.load(path) as data:
        return {k: data[k] for k in data.files}
