"""SQLite case store: cases (provenance, labels, text, thumbnail) and their embeddings per model, plus a manifest.

Same habits as knowledge/store.py: one file, WAL, foreign keys, integer ``vid`` row ids that are also the FAISS
ids, vectors kept as float32 BLOBs so an index can always be rebuilt from the store, and nothing visible to
readers until ``commit``.
"""

from __future__ import annotations

import json

import numpy as np

from knowledge.cases.models import CaseRecord
from knowledge.store import SqliteStore

SCHEMA = """
CREATE TABLE IF NOT EXISTS cases (
  vid INTEGER PRIMARY KEY AUTOINCREMENT, case_id TEXT UNIQUE NOT NULL, source TEXT NOT NULL, license TEXT NOT NULL,
  patient TEXT, diagnosis TEXT NOT NULL, labels TEXT NOT NULL, report TEXT NOT NULL DEFAULT '', thumbnail BLOB NOT NULL,
  study_id TEXT, added_at TEXT DEFAULT CURRENT_TIMESTAMP);
CREATE INDEX IF NOT EXISTS cases_source ON cases(source);
CREATE INDEX IF NOT EXISTS cases_study ON cases(study_id);
CREATE TABLE IF NOT EXISTS vectors (
  vid INTEGER NOT NULL REFERENCES cases(vid) ON DELETE CASCADE, model_id TEXT NOT NULL, vector BLOB NOT NULL,
  PRIMARY KEY (vid, model_id));
CREATE TABLE IF NOT EXISTS manifest (key TEXT PRIMARY KEY, value TEXT);
"""
COLUMNS = "c.vid, c.case_id, c.source, c.license, c.patient, c.diagnosis, c.labels, c.report, c.study_id"


class CaseStore(SqliteStore):
    schema = SCHEMA

    def insert(self, case: CaseRecord, vectors: dict[str, np.ndarray]) -> int:
        cur = self.db.execute(
            "INSERT INTO cases(case_id, source, license, patient, diagnosis, labels, report, thumbnail, study_id) "
            "VALUES (?,?,?,?,?,?,?,?,?)",
            (case.case_id, case.source, case.license, case.patient, case.diagnosis, json.dumps(case.labels),
             case.report, case.thumbnail_png, case.study_id),
        )
        vid = int(cur.lastrowid)
        self.db.executemany(
            "INSERT INTO vectors(vid, model_id, vector) VALUES (?,?,?)",
            [(vid, m, np.asarray(v, dtype=np.float32).tobytes()) for m, v in vectors.items()],
        )
        return vid

    def missing_vectors(self, model_id: str) -> list[tuple[int, bytes]]:
        """(vid, thumbnail PNG) of the cases that have no vector from ``model_id``."""
        return [(r[0], bytes(r[1])) for r in self.db.execute(
            "SELECT vid, thumbnail FROM cases WHERE vid NOT IN (SELECT vid FROM vectors WHERE model_id = ?) "
            "ORDER BY vid", (model_id,))]

    def insert_vectors(self, model_id: str, vids: list[int], vectors: np.ndarray) -> None:
        self.db.executemany(
            "INSERT OR REPLACE INTO vectors(vid, model_id, vector) VALUES (?,?,?)",
            [(v, model_id, np.asarray(x, dtype=np.float32).tobytes()) for v, x in zip(vids, vectors, strict=True)],
        )

    def existing_study_ids(self, study_ids: list[str]) -> set[str]:
        out: set[str] = set()
        for i in range(0, len(study_ids), 500):
            chunk = study_ids[i : i + 500]
            q = f"SELECT study_id FROM cases WHERE study_id IN ({','.join('?' * len(chunk))})"
            out.update(r[0] for r in self.db.execute(q, chunk))
        return out

    def count(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM cases").fetchone()[0])

    def models(self) -> dict[str, int]:
        return dict(self.db.execute("SELECT model_id, COUNT(*) FROM vectors GROUP BY model_id").fetchall())

    def vectors(self, model_id: str, dim: int) -> tuple[np.ndarray, np.ndarray]:
        rows = self.db.execute(
            "SELECT vid, vector FROM vectors WHERE model_id = ? ORDER BY vid", (model_id,)
        ).fetchall()
        ids = np.array([r[0] for r in rows], dtype=np.int64)
        vecs = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(len(rows), dim)
        return ids, vecs

    def rows(self, vids: list[int]) -> dict[int, dict]:
        if not vids:
            return {}
        q = f"SELECT {COLUMNS} FROM cases c WHERE c.vid IN ({','.join('?' * len(vids))})"
        keys = ("vid", "case_id", "source", "license", "patient", "diagnosis", "labels", "report", "study_id")
        out = {}
        for r in self.db.execute(q, vids).fetchall():
            row = dict(zip(keys, r, strict=True))
            row["labels"] = json.loads(row["labels"])
            out[row["vid"]] = row
        return out

    def all_rows(self) -> list[dict]:
        vids = [r[0] for r in self.db.execute("SELECT vid FROM cases ORDER BY vid")]
        rows = self.rows(vids)
        return [rows[v] for v in vids]

    def thumbnail(self, case_id: str) -> bytes | None:
        row = self.db.execute("SELECT thumbnail FROM cases WHERE case_id = ?", (case_id,)).fetchone()
        return bytes(row[0]) if row else None

    def by_source(self) -> list[dict]:
        rows = self.db.execute(
            "SELECT source, license, COUNT(*), SUM(LENGTH(thumbnail)) FROM cases "
            "GROUP BY source, license ORDER BY 3 DESC"
        ).fetchall()
        return [{"source": s, "license": lic, "cases": n, "thumbnail_bytes": b} for s, lic, n, b in rows]

    def diagnoses(self) -> dict[str, int]:
        return dict(self.db.execute("SELECT diagnosis, COUNT(*) FROM cases GROUP BY diagnosis ORDER BY 2 DESC"))

