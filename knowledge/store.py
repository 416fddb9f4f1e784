"""SQLite store: sources, facts (with their embedding), edges, and the index manifest."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from knowledge.models import Edge, Fact, Source

SCHEMA = """
CREATE TABLE IF NOT EXISTS sources (
  source_id TEXT PRIMARY KEY, name TEXT NOT NULL, version TEXT, license TEXT, origin TEXT,
  added_at TEXT DEFAULT CURRENT_TIMESTAMP);
CREATE TABLE IF NOT EXISTS facts (
  vid INTEGER PRIMARY KEY AUTOINCREMENT, fact_id TEXT UNIQUE NOT NULL, source_id TEXT NOT NULL
  REFERENCES sources(source_id) ON DELETE CASCADE, title TEXT, text TEXT NOT NULL, locator TEXT NOT NULL,
  reference TEXT, vector BLOB);
CREATE INDEX IF NOT EXISTS facts_source ON facts(source_id);
CREATE TABLE IF NOT EXISTS edges (
  src TEXT NOT NULL, dst TEXT NOT NULL, type TEXT NOT NULL, source_id TEXT NOT NULL
  REFERENCES sources(source_id) ON DELETE CASCADE, PRIMARY KEY (src, dst, type));
CREATE INDEX IF NOT EXISTS edges_dst ON edges(dst);
CREATE TABLE IF NOT EXISTS manifest (key TEXT PRIMARY KEY, value TEXT);
"""


class SqliteStore:
    """A WAL-mode SQLite file with foreign keys, a ``schema`` and a key/value ``manifest`` table."""

    schema: str = ""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(path), check_same_thread=False)
        self.db.execute("PRAGMA foreign_keys = ON")
        self.db.execute("PRAGMA journal_mode = WAL")
        self.db.executescript(self.schema)

    def manifest(self) -> dict[str, str]:
        return dict(self.db.execute("SELECT key, value FROM manifest").fetchall())

    def set_manifest(self, **values: object) -> None:
        self.db.executemany(
            "INSERT OR REPLACE INTO manifest(key, value) VALUES (?,?)", [(k, str(v)) for k, v in values.items()]
        )

    def commit(self) -> None:
        self.db.commit()

    def rollback(self) -> None:
        self.db.rollback()

    def close(self) -> None:
        self.db.close()


class Store(SqliteStore):
    schema = SCHEMA

    # sources -----------------------------------------------------------------
    def upsert_source(self, source: Source) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO sources(source_id, name, version, license, origin) VALUES (?,?,?,?,?)",
            (source.source_id, source.name, source.version, source.license, source.origin),
        )

    def sources(self) -> list[dict]:
        rows = self.db.execute(
            "SELECT s.source_id, s.name, s.version, s.license, s.origin, s.added_at, "
            "(SELECT COUNT(*) FROM facts f WHERE f.source_id = s.source_id) FROM sources s ORDER BY s.added_at"
        ).fetchall()
        keys = ("source_id", "name", "version", "license", "origin", "added_at", "facts")
        return [dict(zip(keys, r, strict=True)) for r in rows]

    def find_source(self, name_or_id: str) -> str | None:
        row = self.db.execute(
            "SELECT source_id FROM sources WHERE source_id = ? OR name = ?", (name_or_id, name_or_id)
        ).fetchone()
        return row[0] if row else None

    def vids_of_source(self, source_id: str) -> list[int]:
        return [r[0] for r in self.db.execute("SELECT vid FROM facts WHERE source_id = ?", (source_id,))]

    def delete_source(self, source_id: str) -> None:
        self.db.execute("DELETE FROM edges WHERE source_id = ?", (source_id,))
        self.db.execute("DELETE FROM facts WHERE source_id = ?", (source_id,))
        self.db.execute("DELETE FROM sources WHERE source_id = ?", (source_id,))

    # facts -------------------------------------------------------------------
    def existing_fact_ids(self, fact_ids: Iterable[str]) -> dict[str, str]:
        """fact_id -> source_id for the ids already stored."""
        out: dict[str, str] = {}
        ids = list(fact_ids)
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            q = f"SELECT fact_id, source_id FROM facts WHERE fact_id IN ({','.join('?' * len(chunk))})"
            out.update(dict(self.db.execute(q, chunk).fetchall()))
        return out

    def insert_facts(self, facts: list[Fact], vectors: np.ndarray) -> list[int]:
        vids: list[int] = []
        for fact, vec in zip(facts, vectors, strict=True):
            cur = self.db.execute(
                "INSERT INTO facts(fact_id, source_id, title, text, locator, reference, vector) VALUES (?,?,?,?,?,?,?)",
                (fact.fact_id, fact.source_id, fact.title, fact.text, fact.locator, fact.reference,
                 np.asarray(vec, dtype=np.float32).tobytes()),
            )
            vids.append(int(cur.lastrowid))
        return vids

    def insert_edges(self, edges: list[Edge], source_id: str) -> None:
        self.db.executemany(
            "INSERT OR IGNORE INTO edges(src, dst, type, source_id) VALUES (?,?,?,?)",
            [(e.src, e.dst, e.type, source_id) for e in edges],
        )

    def count_facts(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM facts").fetchone()[0])

    def all_vectors(self, dim: int) -> tuple[np.ndarray, np.ndarray]:
        rows = self.db.execute("SELECT vid, vector FROM facts ORDER BY vid").fetchall()
        ids = np.array([r[0] for r in rows], dtype=np.int64)
        vecs = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(len(rows), dim)
        return ids, vecs

    def all_texts(self) -> tuple[list[int], list[str]]:
        rows = self.db.execute("SELECT vid, COALESCE(title, '') || ' ' || text FROM facts ORDER BY vid").fetchall()
        return [r[0] for r in rows], [r[1] for r in rows]

    def hit_rows(self, key: str, values: list) -> dict:
        """Rows joined with their source, keyed by vid or fact_id."""
        if not values:
            return {}
        q = (
            "SELECT f.vid, f.fact_id, f.text, f.title, f.source_id, s.name, s.version, s.license, f.locator "
            f"FROM facts f JOIN sources s ON s.source_id = f.source_id WHERE f.{key} IN ({','.join('?' * len(values))})"
        )
        rows = self.db.execute(q, values).fetchall()
        col = 0 if key == "vid" else 1
        return {r[col]: r for r in rows}

    def neighbours(self, fact_ids: list[str]) -> list[tuple[str, str, str]]:
        """(seed, neighbour, edge type) both ways."""
        if not fact_ids:
            return []
        marks = ",".join("?" * len(fact_ids))
        out = self.db.execute(f"SELECT src, dst, type FROM edges WHERE src IN ({marks})", fact_ids).fetchall()
        back = self.db.execute(f"SELECT dst, src, type FROM edges WHERE dst IN ({marks})", fact_ids).fetchall()
        return [tuple(r) for r in out] + [tuple(r) for r in back]

    def count_edges(self) -> dict[str, int]:
        return dict(self.db.execute("SELECT type, COUNT(*) FROM edges GROUP BY type").fetchall())

