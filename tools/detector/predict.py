"""Batched inference: frames -> nodule candidates (centre, diameter, raw score) in each frame's pixel coordinates."""

from __future__ import annotations

import hashlib
import logging
import math
import os
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from tools.checkpoint import load_state, read_checkpoint
from tools.detector.calibration import Calibration
from tools.detector.ensemble import FUSION_RADIUS_FRACTION, fuse
from tools.detector.model import INPUT_SIZE, STRIDE, CenterNetLite0, normalise
from tools.runtime import loads_in_normal_mode, prepare_input, prepare_model, resized_batch

log = logging.getLogger(__name__)

DEFAULT_WEIGHTS = Path(__file__).resolve().parents[1] / "weights" / "detector.pt"
WEIGHTS_ENV = "MEDAGENT_DETECTOR_WEIGHTS"
MODEL_ID_PREFIX = "detector-effnetlite0-centernet"
MAX_CANDIDATES = 20
SCORE_FLOOR = 0.01  # candidates below this raw score are never decoded


@dataclass(frozen=True)
class Member:
    """One trained network of the detector; ``tta`` is mirror test-time augmentation."""

    model: CenterNetLite0
    input_size: int
    tta: bool = False


@dataclass(frozen=True)
class LoadedModel:
    """The detector: one network, or several whose candidates are fused (tools/detector/ensemble.py)."""

    members: tuple[Member, ...]
    device: torch.device
    sha256: str
    calibration: Calibration | None  # fitted on the (fused) scores, so it applies to what predict returns
    threshold: float | None  # documented operating point on the raw score (see the model card)
    info: dict[str, object] = field(default_factory=dict)

    @property
    def model_id(self) -> str:
        return f"{MODEL_ID_PREFIX}-{'+'.join(str(m.input_size) for m in self.members)}"


@dataclass(frozen=True)
class Candidate:
    x: float  # centre, frame pixels
    y: float
    diameter_px: float  # along the frame's columns
    score: float


def weights_path() -> Path:
    return Path(os.environ.get(WEIGHTS_ENV, DEFAULT_WEIGHTS))


def _member(entry: dict, device: torch.device) -> Member:
    model = CenterNetLite0()
    load_state(model, entry)
    return Member(model=prepare_model(model, device), input_size=int(entry.get("input_size", INPUT_SIZE)),
                  tta=bool(entry.get("tta", False)))


@lru_cache(maxsize=4)
@loads_in_normal_mode
def load_model(path: Path | None = None, device: str | None = None) -> LoadedModel:
    """A checkpoint holds either one network (``state_dict``, as train_detector.py writes it) or an ensemble
    (``members``, as build_detector_ensemble.py writes it), with the calibration and threshold of what it returns."""
    path = path or weights_path()
    payload = read_checkpoint(path, "detector", WEIGHTS_ENV, "scripts/train_detector.py")
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    members = tuple(_member(entry, dev) for entry in payload.get("members", [payload]))
    cal = payload.get("calibration")
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    log.info("loaded detector %s (%s, %d network(s)) on %s", path, sha[:12], len(members), dev)
    return LoadedModel(
        members=members, device=dev, sha256=sha,
        calibration=Calibration(a=float(cal["a"]), b=float(cal["b"])) if cal else None,
        threshold=float(payload["threshold"]) if payload.get("threshold") is not None else None,
        info={k: v for k, v in payload.items() if k not in ("state_dict", "members")},
    )


def _peaks(heat: torch.Tensor, k: int, floor: float) -> list[tuple[float, float, float]]:
    """Local maxima (3x3) of a (H, W) probability map: (col, row, score) with sub-cell centroid refinement."""
    hmax = F.max_pool2d(heat[None, None], 3, stride=1, padding=1)[0, 0]
    keep = (heat == hmax) & (heat >= floor)
    scores = heat[keep]
    if scores.numel() == 0:
        return []
    rows, cols = torch.nonzero(keep, as_tuple=True)
    order = torch.argsort(scores, descending=True)[:k]
    h, w = heat.shape
    out = []
    for i in order.tolist():
        r, c = int(rows[i]), int(cols[i])
        r0, r1, c0, c1 = max(r - 1, 0), min(r + 2, h), max(c - 1, 0), min(c + 2, w)
        patch = heat[r0:r1, c0:c1]
        ys, xs = torch.meshgrid(torch.arange(r0, r1, dtype=heat.dtype), torch.arange(c0, c1, dtype=heat.dtype),
                                indexing="ij")
        total = patch.sum()
        out.append((float((patch * xs).sum() / total), float((patch * ys).sum() / total), float(scores[i])))
    return out


def _heatmaps(model: CenterNetLite0, x: torch.Tensor, tta: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """(centre probability, log-diameter) maps (N, H/4, W/4) on the CPU; with ``tta`` the mean over the image and
    its horizontal mirror (mapped back)."""
    heat_logits, log_size = model(x)
    heat, size = torch.sigmoid(heat_logits.float()), log_size.float()
    if tta:
        flip_logits, flip_size = model(torch.flip(x, dims=[3]))
        heat = (heat + torch.flip(torch.sigmoid(flip_logits.float()), dims=[3])) / 2
        size = (size + torch.flip(flip_size.float(), dims=[3])) / 2
    return heat.cpu()[:, 0], size.cpu()[:, 0]


def _member_candidates(chunk: list[np.ndarray], member: Member, device: torch.device, max_candidates: int,
                       tta: bool | None) -> list[list[Candidate]]:
    size = member.input_size
    heat, log_size = _heatmaps(member.model, prepare_input(normalise(resized_batch(chunk, size, device))),
                               member.tta if tta is None else tta)
    out = []
    for frame, h, ls in zip(chunk, heat, log_size, strict=True):
        sy, sx = frame.shape[0] / size, frame.shape[1] / size
        found = []
        for col, row, score in _peaks(h, max_candidates, SCORE_FLOOR):
            d_in = math.exp(float(ls[round(row), round(col)]))
            found.append(Candidate(x=(col + 0.5) * STRIDE * sx, y=(row + 0.5) * STRIDE * sy,
                                   diameter_px=d_in * sx, score=score))
        out.append(found)
    return out


@torch.inference_mode()
def predict(frames: list[np.ndarray], loaded: LoadedModel, batch_size: int = 8,
            max_candidates: int = MAX_CANDIDATES, tta: bool | None = None) -> list[list[Candidate]]:
    """frames: 2-D float arrays in [0, 1] of any size -> candidates per frame, sorted by score (highest first).
    ``tta`` (mirror averaging) defaults to what each network was calibrated with. An ensemble's candidates are
    fused per frame (mean score over networks, see tools/detector/ensemble.py)."""
    out: list[list[Candidate]] = []
    for start in range(0, len(frames), batch_size):
        chunk = frames[start : start + batch_size]
        per_member = [_member_candidates(chunk, m, loaded.device, max_candidates, tta) for m in loaded.members]
        for frame, found in zip(chunk, zip(*per_member, strict=True), strict=True):
            if len(found) == 1:
                out.append(found[0])
                continue
            fused = fuse(found, FUSION_RADIUS_FRACTION * frame.shape[1])
            out.append([replace(c, score=score) for c, score in fused[:max_candidates]])
    return out
