"""CaseLibrary: prior studies in SQLite, one FAISS inner-product index per embedding model, nearest-case search.

The default library lives in ``$MEDAGENT_CASES`` or ``$MEDAGENT_HOME/cases``; when it does not exist yet it is
seeded (offline, a file copy) from the demo library shipped in knowledge/cases/demo/.
"""

from __future__ import annotations

import io
import logging
import os
import re
import shutil
import threading
from collections.abc import Callable, Iterable
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image

from knowledge.cases.embedders import ImageEmbedder, TextImageEmbedder, load_image_embedder
from knowledge.cases.models import CaseRecord, SimilarCase, excerpt, thumbnail_ref
from knowledge.cases.store import CaseStore
from knowledge.vector_index import VectorIndex
from tools.home import medagent_home
from tools.study import Study, preview_image

log = logging.getLogger(__name__)
DEMO_DIR = Path(__file__).resolve().parent / "demo"
DB_NAME = "cases.sqlite"
THUMBNAIL_MAX = 256


def default_root() -> Path:
    configured = os.environ.get("MEDAGENT_CASES")
    return Path(configured) if configured else medagent_home() / "cases"


def thumbnail_png(study: Study, max_side: int = THUMBNAIL_MAX) -> bytes:
    """The de-identified representative frame as an 8-bit grey PNG, longest side <= max_side."""
    image = preview_image(study, max_side=max_side).convert("L")
    buf = io.BytesIO()
    image.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def frame_of(study: Study) -> np.ndarray:
    """The grey frame every embedder sees (the middle frame of a volume), float in [0, 1]."""
    return study.frame()


class NotSearchable(ValueError):
    """The study is not what the case library holds (frontal chest X-rays); ``reason`` is for the clinician."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def searchable_reason(study: Study) -> str | None:
    """Why a study must not be matched against chest X-ray cases (CT, lateral, non-chest, colour, blank), else
    None: the classifier's gate, since both read the same kind of image."""
    from tools.classifier.gate import refusal_reason

    reason = refusal_reason(study)
    return f"similar-case search refused: {reason}" if reason else None


def _safe(model_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", model_id)


class CaseLibrary:
    """Thread-safe for concurrent readers; writers hold a lock. ``embedders``: the first finds similar images,
    any with a text side (the CLIP models) also answers text queries."""

    def __init__(self, root: Path, embedders: list[ImageEmbedder]) -> None:
        if not embedders:
            raise ValueError("a case library needs at least one image embedder")
        self.root = Path(root)
        self.embedders = embedders
        self.store = CaseStore(self.root / DB_NAME)
        self.indexes = {e.model_id: VectorIndex(self.root / f"index-{_safe(e.model_id)}.faiss", e.dim)
                        for e in embedders}
        self._lock = threading.RLock()
        self._load_indexes()

    # opening ------------------------------------------------------------------
    @classmethod
    def open(cls, path: Path | str | None = None, embedders: list[ImageEmbedder] | None = None,
             seed_demo: bool = True) -> CaseLibrary:
        """Open (or create) a library. An absent default library starts as a copy of the shipped demo library."""
        root = Path(path) if path else default_root()
        if seed_demo and not (root / DB_NAME).exists() and (DEMO_DIR / DB_NAME).exists():
            root.mkdir(parents=True, exist_ok=True)
            tmp = root / (DB_NAME + f".tmp{os.getpid()}")
            shutil.copyfile(DEMO_DIR / DB_NAME, tmp)
            os.replace(tmp, root / DB_NAME)
            log.info("case library seeded from the demo library at %s", root)
        return cls(root, embedders or default_embedders())

    def _load_indexes(self) -> None:
        counts = self.store.models()
        for e in self.embedders:
            index = self.indexes[e.model_id]
            have = counts.get(e.model_id, 0)
            if have != self.store.count():
                have = self._embed_thumbnails(e)
            if not index.load() or index.ntotal != have:
                ids, vecs = self.store.vectors(e.model_id, e.dim)
                index.rebuild(ids, vecs)
                index.save()

    def _embed_thumbnails(self, embedder: ImageEmbedder, batch_size: int = 32) -> int:
        """Cases stored without this embedder's vectors (a library built with another model) are embedded from
        their stored thumbnails (<= 256 px; every embedder here reads 160-224 px), then committed."""
        todo = self.store.missing_vectors(embedder.model_id)
        log.warning("embedding %d stored thumbnails with %s", len(todo), embedder.model_id)
        with self._lock:
            for i in range(0, len(todo), batch_size):
                chunk = todo[i : i + batch_size]
                frames = [np.asarray(Image.open(io.BytesIO(png)).convert("L"), dtype=np.float32) / 255.0
                          for _, png in chunk]
                vecs = embedder.encode_frames(frames)
                self.store.insert_vectors(embedder.model_id, [v for v, _ in chunk], vecs)
            self.store.commit()
        return self.store.models().get(embedder.model_id, 0)

    # writing ------------------------------------------------------------------
    def add_studies(self, items: Iterable[tuple[Study, dict]], progress: Callable[[int], None] | None = None,
                    batch_size: int = 16) -> list[str]:
        """Add (study, fields) pairs; fields: diagnosis, labels, report, source, license, optional patient and
        case_id. Studies already in the library (same de-identified pixels) are skipped. Returns added case ids."""
        added: list[str] = []
        batch: list[tuple[Study, dict]] = []
        with self._lock:
            try:
                for item in items:
                    batch.append(item)
                    if len(batch) >= batch_size:
                        added += self._add_batch(batch)
                        if progress:
                            progress(len(batch))
                        batch = []
                if batch:
                    added += self._add_batch(batch)
                    if progress:
                        progress(len(batch))
                self.store.commit()
            except BaseException:
                self.store.rollback()
                self._load_indexes_from_store()
                raise
            for e in self.embedders:
                self.indexes[e.model_id].save()
        return added

    def _add_batch(self, batch: list[tuple[Study, dict]]) -> list[str]:
        seen = self.store.existing_study_ids([s.id for s, _ in batch])
        fresh, ids_here = [], set()
        for s, f in batch:
            if s.id in seen or s.id in ids_here:
                log.info("skipping a study already in the library (%s)", s.id[:12])
                continue
            ids_here.add(s.id)
            fresh.append((s, f))
        if not fresh:
            return []
        frames = [frame_of(s) for s, _ in fresh]
        vectors = {e.model_id: e.encode_frames(frames) for e in self.embedders}
        out = []
        for i, (study, f) in enumerate(fresh):
            labels = list(dict.fromkeys([f["diagnosis"], *f.get("labels", [])]))
            case = CaseRecord(
                case_id=f.get("case_id") or study.id[:16], source=f["source"], license=f["license"],
                patient=f.get("patient"), diagnosis=f["diagnosis"], labels=labels, report=f.get("report", ""),
                thumbnail_png=thumbnail_png(study, f.get("thumbnail_max", THUMBNAIL_MAX)), study_id=study.id,
            )
            vid = self.store.insert(case, {m: v[i] for m, v in vectors.items()})
            for m, v in vectors.items():
                self.indexes[m].add(np.array([vid], np.int64), v[i : i + 1])
            out.append(case.case_id)
        return out

    def _load_indexes_from_store(self) -> None:
        for e in self.embedders:
            ids, vecs = self.store.vectors(e.model_id, e.dim)
            self.indexes[e.model_id].rebuild(ids, vecs)

    # searching ----------------------------------------------------------------
    @property
    def image_embedder(self) -> ImageEmbedder:
        return self.embedders[0]

    @property
    def text_embedder(self) -> TextImageEmbedder | None:
        return next((e for e in self.embedders if isinstance(e, TextImageEmbedder)), None)

    def similar_cases(self, study: Study, k: int = 5, check: bool = True) -> list[SimilarCase]:
        """The k stored cases whose images are nearest to the study's representative frame.

        Raises NotSearchable for studies that are not frontal chest X-rays (``check=False`` skips the gate)."""
        if check and (reason := searchable_reason(study)):
            raise NotSearchable(reason)
        vec = self.image_embedder.encode_frames([frame_of(study)])
        return self.search_vector(vec[0], k, self.image_embedder.model_id)

    def search_text(self, text: str, k: int = 5) -> list[SimilarCase]:
        """Text-to-image search ("right lower lobe consolidation"); needs a CLIP-style embedder."""
        embedder = self.text_embedder
        if embedder is None:
            raise RuntimeError("text search needs a CLIP-style embedder (clip or openclip:PATH)")
        return self.search_vector(embedder.encode_texts([text])[0], k, embedder.model_id)

    def search_vector(self, vector: np.ndarray, k: int, model_id: str) -> list[SimilarCase]:
        with self._lock:
            scores, ids = self.indexes[model_id].search(np.asarray(vector, np.float32)[None], k)
            hits = [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0]
            rows = self.store.rows([i for i, _ in hits])
        return [
            SimilarCase(rank=r, case_id=rows[i]["case_id"], similarity=round(s, 4), diagnosis=rows[i]["diagnosis"],
                        labels=rows[i]["labels"], report_excerpt=excerpt(rows[i]["report"]), source=rows[i]["source"],
                        license=rows[i]["license"], thumbnail=thumbnail_ref(rows[i]["case_id"]), embedder=model_id)
            for r, (i, s) in enumerate(hits, start=1) if i in rows
        ]

    def thumbnail(self, case_id: str) -> Image.Image | None:
        data = self.store.thumbnail(case_id)
        return Image.open(io.BytesIO(data)) if data else None

    def stats(self) -> dict:
        return {
            "root": str(self.root), "cases": self.store.count(),
            "embedders": {e.model_id: {"dim": e.dim, "indexed": self.indexes[e.model_id].ntotal,
                                       "text_search": isinstance(e, TextImageEmbedder)} for e in self.embedders},
            "image_embedder": self.image_embedder.model_id,
            "sources": self.store.by_source(), "diagnoses": self.store.diagnoses(),
        }

    def close(self) -> None:
        self.store.close()


def default_embedders() -> list[ImageEmbedder]:
    """The configured image embedder first, then the CLIP model (for text search) when it is not the first."""
    from knowledge.cases.embedders import configured_name

    first = load_image_embedder(configured_name())
    out = [first]
    if not isinstance(first, TextImageEmbedder):
        try:
            out.append(load_image_embedder("clip"))
        except FileNotFoundError as err:
            log.warning("no CLIP weights, text search disabled: %s", err)
    return out


@lru_cache(maxsize=1)
def default_library() -> CaseLibrary:
    return CaseLibrary.open()


def similar_cases(study: Study, k: int = 5, library: CaseLibrary | None = None) -> list[SimilarCase]:
    """The agent's entry point: nearest prior cases to ``study`` (default library: the user's, seeded from the demo)."""
    return (library or default_library()).similar_cases(study, k)
