"""Load the committed classifier weights and run calibrated, batched inference, OOD scores and Grad-CAM."""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from tools.checkpoint import load_state
from tools.classifier.data import LABELS
from tools.classifier.model import CAM_BLOCKS, build_model, head_features, head_logits, to_tensor, trunk
from tools.classifier.ood import OodModel
from tools.runtime import fold_batch_norms, loads_in_normal_mode

log = logging.getLogger(__name__)
DEFAULT_WEIGHTS = Path(__file__).resolve().parents[1] / "weights" / "classifier.pt"
MODEL_ID = "cxr-classifier-efficientnet_lite0-v1"


@dataclass
class Classifier:
    model: torch.nn.Module
    temperature: np.ndarray
    ood: OodModel
    input_size: int
    sha256: str
    device: torch.device


@dataclass
class Prediction:
    probabilities: np.ndarray  # (N, L) calibrated
    logits: np.ndarray  # (N, L) raw
    ood_score: np.ndarray  # (N,)
    features: np.ndarray  # (N, 1280) pooled penultimate features


def weights_path() -> Path:
    return Path(os.environ.get("MEDAGENT_CLASSIFIER_WEIGHTS", DEFAULT_WEIGHTS))


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@lru_cache(maxsize=2)
@loads_in_normal_mode
def load_classifier(path: Path | None = None, device: str | None = None) -> Classifier:
    path = path or weights_path()
    if not path.exists():
        raise FileNotFoundError(f"classifier weights not found at {path}; run scripts/train_classifier.py")
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    if list(ckpt["labels"]) != list(LABELS):
        raise RuntimeError(f"weights labels {ckpt['labels']} differ from code labels {LABELS}")
    model = build_model()
    load_state(model, ckpt)
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    model.to(dev).eval()
    fold_batch_norms(model)  # inference only: the same outputs to 1e-4, fewer ops (tests/test_runtime.py)
    return Classifier(model=model, temperature=np.asarray(ckpt["temperature"], np.float64),
                      ood=OodModel.from_dict(ckpt["ood"]), input_size=int(ckpt["input_size"]),
                      sha256=sha256_file(path), device=dev)


@torch.no_grad()
def predict(clf: Classifier, images: np.ndarray, batch_size: int = 32) -> Prediction:
    """(N,S,S) uint8 grey images -> calibrated probabilities, raw logits and OOD feature scores."""
    logits, pooled = [], []
    for i in range(0, len(images), batch_size):
        x = to_tensor(images[i : i + batch_size]).to(clf.device)
        f = head_features(clf.model, trunk(clf.model, x))
        pooled.append(f.float().cpu())
        logits.append(head_logits(clf.model, f).float().cpu())
    z = torch.cat(logits).numpy().astype(np.float64)
    probs = 1.0 / (1.0 + np.exp(-z / clf.temperature))
    feats = torch.cat(pooled).numpy()
    return Prediction(probabilities=probs, logits=z, ood_score=clf.ood.score(feats), features=feats)


def grad_cam(clf: Classifier, image: np.ndarray, label_indices: list[int]) -> dict[int, np.ndarray]:
    """Grad-CAM maps on the output of blocks[0:CAM_BLOCKS] (stride 16, e.g. 10x10), scaled to [0,1]."""
    x = to_tensor(image[None]).to(clf.device)
    with torch.no_grad():
        t = trunk(clf.model, x, upto=CAM_BLOCKS)
    t = t.detach().requires_grad_(True)
    maps = {}
    with torch.enable_grad():
        logits = head_logits(clf.model, head_features(clf.model, t, start=CAM_BLOCKS))[0]
        for j in label_indices:
            (grad,) = torch.autograd.grad(logits[j], t, retain_graph=True)
            cam = torch.relu((grad.mean(dim=(2, 3), keepdim=True) * t).sum(dim=1))[0]
            cam = cam.detach().float().cpu().numpy()
            maps[j] = cam / cam.max() if cam.max() > 0 else cam
    return maps


def peak_box(cam: np.ndarray, rows: int, cols: int, level: float = 0.5) -> tuple[float, float, float, float]:
    """Box (x0, y0, x1, y1) in input pixels around the 4-connected cells of cam >= level * max that hold the peak."""
    mask = cam >= level * cam.max()
    peak = np.unravel_index(int(np.argmax(cam)), cam.shape)
    seen = {peak}
    stack = [peak]
    while stack:
        y, x = stack.pop()
        for ny, nx in ((y - 1, x), (y + 1, x), (y, x - 1), (y, x + 1)):
            inside = 0 <= ny < cam.shape[0] and 0 <= nx < cam.shape[1]
            if inside and mask[ny, nx] and (ny, nx) not in seen:
                seen.add((ny, nx))
                stack.append((ny, nx))
    ys, xs = zip(*seen, strict=True)
    sy, sx = rows / cam.shape[0], cols / cam.shape[1]
    return float(min(xs) * sx), float(min(ys) * sy), float((max(xs) + 1) * sx), float((max(ys) + 1) * sy)
