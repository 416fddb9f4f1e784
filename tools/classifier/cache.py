"""Decode training/validation images once to grey uint8 INPUT_SIZE^2 arrays cached under var/cache/classifier."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from tools.classifier.model import INPUT_SIZE, to_uint8_input

CACHE = Path(__file__).resolve().parents[2] / "var" / "cache" / "classifier"


def load_grey(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return to_uint8_input(np.asarray(im.convert("L")))


def cached_images(paths: list[Path]) -> np.ndarray:
    key = hashlib.sha256(("\n".join(map(str, paths)) + f"|{INPUT_SIZE}").encode()).hexdigest()[:16]
    target = CACHE / f"images_{INPUT_SIZE}_{key}.npy"
    if target.exists():
        return np.load(target)
    images = np.stack([load_grey(p) for p in tqdm(paths, desc="decode", mininterval=5)])
    CACHE.mkdir(parents=True, exist_ok=True)
    np.save(target, images)
    return images
