"""Batched inference: Study frames -> per-structure probabilities and clean boolean masks at input resolution."""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

from tools.checkpoint import load_state, read_checkpoint
from tools.runtime import loads_in_normal_mode, prepare_input, prepare_model, resized_batch
from tools.segmenter.model import INPUT_SIZE, STRUCTURES, UNetLite0, normalise

log = logging.getLogger(__name__)

DEFAULT_WEIGHTS = Path(__file__).resolve().parents[1] / "weights" / "segmenter.pt"
WEIGHTS_ENV = "MEDAGENT_SEGMENTER_WEIGHTS"
MODEL_ID = "segmenter-effnetlite0-unet-384"
THRESHOLD = 0.5
# The agent segments a study for its own answer and again, through the detector's lung prior, for a nodule question:
# a few frames' predictions are kept so that the second call reuses the masks instead of recomputing them.
CACHE_FRAMES = 4


@dataclass(frozen=True)
class LoadedModel:
    model: UNetLite0
    device: torch.device
    sha256: str
    input_size: int


@dataclass
class Prediction:
    masks: dict[str, np.ndarray]  # bool (H, W) at the input's resolution
    confidence: dict[str, float]  # mean probability inside each predicted mask (0 when empty)


def weights_path() -> Path:
    return Path(os.environ.get(WEIGHTS_ENV, DEFAULT_WEIGHTS))


@lru_cache(maxsize=2)
@loads_in_normal_mode
def load_model(path: Path | None = None, device: str | None = None) -> LoadedModel:
    path = path or weights_path()
    payload = read_checkpoint(path, "segmenter", WEIGHTS_ENV, "scripts/train_segmenter.py")
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if tuple(payload["structures"]) != STRUCTURES:
        raise ValueError(f"weights at {path} are for structures {payload['structures']}, expected {STRUCTURES}")
    model = UNetLite0()
    load_state(model, payload)
    prepare_model(model, dev)
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    log.info("loaded segmenter %s (%s) on %s", path, sha[:12], dev)
    return LoadedModel(model=model, device=dev, sha256=sha, input_size=int(payload.get("input_size", INPUT_SIZE)))


class _PredictionCache:
    """The last CACHE_FRAMES predictions, keyed by the weights and the frame's exact pixels; thread-safe (the agent
    runs tools in worker threads). Cached masks are read-only, so no caller can alter another caller's result."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[tuple[object, ...], Prediction] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def key(frame: np.ndarray, loaded: LoadedModel) -> tuple[object, ...]:
        pixels = np.ascontiguousarray(frame)
        digest = hashlib.blake2b(memoryview(pixels).cast("B"), digest_size=16).hexdigest()
        return loaded.sha256, loaded.input_size, id(loaded.model), pixels.shape, pixels.dtype.str, digest

    def get(self, key: tuple[object, ...]) -> Prediction | None:
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
            return found

    def put(self, key: tuple[object, ...], prediction: Prediction) -> None:
        for mask in prediction.masks.values():
            mask.setflags(write=False)
        with self._lock:
            self._items[key] = prediction
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


_cache = _PredictionCache(CACHE_FRAMES)


def clear_cache() -> None:
    """Forget the kept predictions (benchmarks call this to time the uncached path)."""
    _cache.clear()


def _fill_holes(mask: np.ndarray) -> np.ndarray:
    """Background pixels not connected to the image border become foreground (faster than binary_fill_holes)."""
    labels, n = ndimage.label(~mask)
    if n <= 1:
        return mask
    edge = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    return mask | ~np.isin(labels, edge[edge > 0]) & (labels > 0)


def _largest_component(mask: np.ndarray) -> np.ndarray:
    labels, n = ndimage.label(mask)
    if n == 0:
        return mask
    if n > 1:
        sizes = np.bincount(labels.ravel())[1:]
        mask = labels == (int(np.argmax(sizes)) + 1)
    return _fill_holes(mask)


def predict(frames: list[np.ndarray], loaded: LoadedModel, batch_size: int = 8) -> list[Prediction]:
    """frames: 2-D float arrays in [0, 1] of any size. Each structure keeps its largest connected component. Frames
    segmented recently with the same weights are answered from the cache."""
    keys = [_PredictionCache.key(frame, loaded) for frame in frames]
    found = [_cache.get(key) for key in keys]
    missing = [i for i, pred in enumerate(found) if pred is None]
    for i, pred in zip(missing, _segment([frames[i] for i in missing], loaded, batch_size), strict=True):
        _cache.put(keys[i], pred)
        found[i] = pred
    return [pred for pred in found if pred is not None]


@torch.inference_mode()
def _segment(frames: list[np.ndarray], loaded: LoadedModel, batch_size: int) -> list[Prediction]:
    out: list[Prediction] = []
    size = loaded.input_size
    for start in range(0, len(frames), batch_size):
        chunk = frames[start : start + batch_size]
        x = resized_batch(chunk, size, loaded.device)
        logits = loaded.model(prepare_input(normalise(x)))
        for frame, logit in zip(chunk, logits, strict=True):
            prob = torch.sigmoid(F.interpolate(logit[None], size=frame.shape, mode="bilinear", align_corners=False))[0]
            prob_np = prob.float().cpu().numpy()
            masks, conf = {}, {}
            for name, p in zip(STRUCTURES, prob_np, strict=True):
                mask = _largest_component(p > THRESHOLD)
                masks[name] = mask
                conf[name] = float(p[mask].mean()) if mask.any() else 0.0
            out.append(Prediction(masks=masks, confidence=conf))
    return out
