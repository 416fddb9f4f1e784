"""FAISS vector index keyed by fact vid: exact inner product when small, HNSW when large; atomic saves."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import faiss
import numpy as np

log = logging.getLogger(__name__)
# Below this many vectors an exact IndexFlatIP is both exact and fast enough; above it HNSW. Measured on the shared
# 2-core CPU (knowledge/eval/bench.json): flat costs ~1.3 ms per 1k vectors per query, HNSW ~1 ms at 100k, so a
# 20 ms budget crosses over near 15-20k vectors.
HNSW_THRESHOLD = int(os.environ.get("MEDAGENT_HNSW_THRESHOLD", "20000"))
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 96


def gpu_available() -> bool:
    try:
        return hasattr(faiss, "get_num_gpus") and faiss.get_num_gpus() > 0
    except Exception:  # faiss-cpu builds without GPU symbols
        return False


def make_index(dim: int, n: int, kind: str | None = None) -> faiss.Index:
    """IDMap over flat IP or HNSW (inner product on normalised vectors = cosine)."""
    kind = kind or ("hnsw" if n >= HNSW_THRESHOLD else "flat")
    if kind == "hnsw":
        base = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        base.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        base.hnsw.efSearch = HNSW_EF_SEARCH
    else:
        base = faiss.IndexFlatIP(dim)
    return faiss.IndexIDMap2(base)


def index_kind(index: faiss.Index) -> str:
    base = faiss.downcast_index(index.index) if hasattr(index, "index") else index
    return "hnsw" if isinstance(base, faiss.IndexHNSW) else "flat"


class VectorIndex:
    """Owns one FAISS index file; add/remove by id; saves by write-temp-then-rename."""

    def __init__(self, path: Path, dim: int) -> None:
        self.path = path
        self.dim = dim
        self.index: faiss.Index = make_index(dim, 0)
        self._search_index: faiss.Index | None = None

    @property
    def ntotal(self) -> int:
        return int(self.index.ntotal)

    def load(self) -> bool:
        if not self.path.exists():
            return False
        self.index = faiss.read_index(str(self.path))
        self._search_index = None
        return True

    def rebuild(self, ids: np.ndarray, vectors: np.ndarray, kind: str | None = None) -> None:
        self.index = make_index(self.dim, len(ids), kind)
        if len(ids):
            self.index.add_with_ids(vectors, ids)
        self._search_index = None

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if len(ids):
            self.index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), ids.astype(np.int64))
        self._search_index = None

    def remove(self, ids: np.ndarray) -> bool:
        """Remove by id; returns False when the index type cannot (HNSW): the caller then rebuilds."""
        if index_kind(self.index) == "hnsw":
            return False
        self.index.remove_ids(ids.astype(np.int64))
        self._search_index = None
        return True

    def save(self) -> None:
        """A crash mid-write leaves the previous file in place: write beside it, fsync, then rename."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(self.path.suffix + f".tmp{os.getpid()}")
        faiss.write_index(self.index, str(tmp))
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)

    def search(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        if self.ntotal == 0:
            return np.zeros((len(query), 0), np.float32), np.zeros((len(query), 0), np.int64)
        index = self._gpu_or_cpu()
        scores, ids = index.search(np.ascontiguousarray(query, dtype=np.float32), min(k, self.ntotal))
        return scores, ids

    def _gpu_or_cpu(self) -> faiss.Index:
        if self._search_index is None:
            self._search_index = self.index
            if gpu_available() and index_kind(self.index) == "flat":
                try:
                    res = faiss.StandardGpuResources()
                    self._search_index = faiss.index_cpu_to_gpu(res, 0, self.index)
                except Exception as err:  # pragma: no cover - only where faiss-gpu exists
                    log.warning("GPU index unavailable, using CPU: %s", err)
        return self._search_index
