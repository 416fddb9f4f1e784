"""Image embedders for the case library: one interface, three implementations.

* ``clip``: the CLIP-style model trained here (knowledge/cases/clip.py, scripts/train_clip.py); also embeds text,
  so it enables text-to-image search.
* ``classifier``: the pooled 1280-d penultimate features of the chest X-ray classifier (tools/classifier).
* ``openclip:<folder>``: any open_clip model a user has locally (e.g. BiomedCLIP): the folder holds
  ``open_clip_config.json`` and ``open_clip_pytorch_model.bin`` (or ``.safetensors``), as the Hugging Face hub
  stores them. Nothing is downloaded.

Every embedder returns L2-normalised float32 rows, compared by inner product (cosine similarity).
"""

from __future__ import annotations

import os
import threading
from functools import lru_cache
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import torch

from tools.classifier.model import to_uint8_input

# Chosen by scripts/eval_cases.py (see the card, knowledge/cases/CARD.md): the better precision@5 on held-out patients.
DEFAULT_IMAGE_EMBEDDER = "clip"


class ImageEmbedder(Protocol):
    model_id: str
    dim: int

    def encode_frames(self, frames: list[np.ndarray]) -> np.ndarray:
        """Grey frames (float in [0,1] or uint8, any size) -> (N, dim) L2-normalised float32."""
        ...


@runtime_checkable
class TextImageEmbedder(ImageEmbedder, Protocol):
    def encode_texts(self, texts: list[str]) -> np.ndarray:
        """Texts -> (N, dim) L2-normalised float32 in the image space."""
        ...


def _normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.clip(np.linalg.norm(x, axis=1, keepdims=True), 1e-12, None)


def _grey_inputs(frames: list[np.ndarray]) -> np.ndarray:
    return np.stack([to_uint8_input(f) for f in frames])


class ClipEmbedder:
    """The CLIP-style model trained here: image tower and (frozen MiniLM + projection) text tower."""

    def __init__(self, path: Path | None = None) -> None:
        from knowledge.cases.clip import EMBED_DIM, grey_batch, load_clip, weights_path

        self.path = path or weights_path()
        self.model, ckpt = load_clip(self.path)
        self.model_id = ckpt["model_id"]
        self.dim = EMBED_DIM
        self._grey_batch = grey_batch
        self._lock = threading.Lock()

    @torch.no_grad()
    def encode_frames(self, frames: list[np.ndarray], batch_size: int = 32) -> np.ndarray:
        images = _grey_inputs(frames)
        out = [self.model.encode_image(self._grey_batch(images[i : i + batch_size])) for i in
               range(0, len(images), batch_size)]
        return _normalise(torch.cat(out).numpy()) if out else np.zeros((0, self.dim), np.float32)

    @torch.no_grad()
    def encode_texts(self, texts: list[str]) -> np.ndarray:
        from knowledge.embedder import load_embedder

        with self._lock:
            sentence = load_embedder().encode(texts)
        return _normalise(self.model.encode_text(torch.from_numpy(sentence)).numpy())


class ClassifierFeatureEmbedder:
    """Baseline: the classifier's pooled penultimate features (no text side)."""

    def __init__(self) -> None:
        from tools.classifier.predict import MODEL_ID, load_classifier

        self.clf = load_classifier(device="cpu")
        self.model_id = MODEL_ID + ":penultimate"
        self.dim = 1280

    def encode_frames(self, frames: list[np.ndarray]) -> np.ndarray:
        from tools.classifier.predict import predict

        if not frames:
            return np.zeros((0, self.dim), np.float32)
        return _normalise(predict(self.clf, _grey_inputs(frames)).features)


class OpenClipEmbedder:
    """Any open_clip model from a local folder (BiomedCLIP and the like); image and text."""

    def __init__(self, folder: Path) -> None:
        import json

        import open_clip

        folder = Path(folder)
        if not (folder / "open_clip_config.json").exists():
            raise FileNotFoundError(f"no open_clip_config.json in {folder}")
        if not any(any(folder.glob(pattern)) for pattern in ("*.safetensors", "*.bin", "*.pth")):
            raise FileNotFoundError(f"no open_clip weights (.safetensors, .bin, .pth) in {folder}")
        self.model, self.preprocess = open_clip.create_model_from_pretrained(f"local-dir:{folder}")
        self.tokenizer = open_clip.get_tokenizer(f"local-dir:{folder}")
        self.model.eval()
        self.model_id = f"open_clip:{folder.name}"
        self.dim = int(json.loads((folder / "open_clip_config.json").read_text())["model_cfg"]["embed_dim"])

    @torch.no_grad()
    def encode_frames(self, frames: list[np.ndarray]) -> np.ndarray:
        from PIL import Image

        batch = []
        for f in frames:
            grey = f if f.dtype == np.uint8 else (np.clip(f, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)  # model resizes
            batch.append(self.preprocess(Image.fromarray(grey).convert("RGB")))
        return _normalise(self.model.encode_image(torch.stack(batch)).numpy())

    @torch.no_grad()
    def encode_texts(self, texts: list[str]) -> np.ndarray:
        return _normalise(self.model.encode_text(self.tokenizer(texts)).numpy())


def configured_name() -> str:
    return os.environ.get("MEDAGENT_CASE_EMBEDDER", DEFAULT_IMAGE_EMBEDDER)


@lru_cache(maxsize=4)
def load_image_embedder(name: str | None = None) -> ImageEmbedder:
    """'clip' | 'classifier' | 'openclip:/path/to/folder' (default: MEDAGENT_CASE_EMBEDDER, else the eval's pick)."""
    name = name or configured_name()
    if name == "clip":
        return ClipEmbedder()
    if name == "classifier":
        return ClassifierFeatureEmbedder()
    if name.startswith("openclip:"):
        return OpenClipEmbedder(Path(name.split(":", 1)[1]))
    raise ValueError(f"unknown case embedder {name!r}: clip | classifier | openclip:/local/folder")
