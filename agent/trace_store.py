"""SQLite store (WAL) of traces and of each conversation's evidence; de-identified by construction.

Only `Study.summary()` (de-identified metadata), ids, questions, tool results and reports are stored:
never pixels or raw DICOM text.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from pathlib import Path

from pydantic import TypeAdapter

from agent.contracts import Evidence, Trace
from tools.home import medagent_home

SCHEMA = """
CREATE TABLE IF NOT EXISTS traces (
    id TEXT PRIMARY KEY, conversation_id TEXT NOT NULL, created_at TEXT NOT NULL, question TEXT NOT NULL,
    study_id TEXT NOT NULL, writer TEXT, total_ms REAL, body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS traces_conversation ON traces(conversation_id);
CREATE TABLE IF NOT EXISTS evidence (
    conversation_id TEXT NOT NULL, evidence_id TEXT NOT NULL, study_id TEXT NOT NULL, kind TEXT NOT NULL,
    body TEXT NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (conversation_id, evidence_id)
);
"""
EVIDENCE = TypeAdapter(Evidence)


def default_path() -> Path:
    configured = os.environ.get("MEDAGENT_TRACE_DB")
    return Path(configured) if configured else medagent_home() / "traces.sqlite"


class TraceStore:
    def __init__(self, path: Path | str | None = None) -> None:
        self.path = Path(path) if path else default_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30)
        db.execute("PRAGMA synchronous=NORMAL")
        return db

    def save_trace(self, trace: Trace) -> None:
        writer = trace.report.writer if trace.report else None
        with self._lock, self._connect() as db:
            db.execute(
                "INSERT OR REPLACE INTO traces VALUES (?,?,?,?,?,?,?,?)",
                (
                    trace.id,
                    trace.conversation_id,
                    trace.created_at.isoformat(),
                    trace.question,
                    str(trace.study.get("id", "")),
                    writer,
                    trace.total_ms,
                    trace.model_dump_json(),
                ),
            )

    def get_trace(self, trace_id: str) -> Trace:
        with self._connect() as db:
            row = db.execute("SELECT body FROM traces WHERE id = ? OR id LIKE ?", (trace_id, f"{trace_id}%")).fetchall()
        if len(row) != 1:
            raise KeyError(f"no unique trace '{trace_id}' ({len(row)} match)")
        return Trace.model_validate_json(row[0][0])

    def list_traces(self, limit: int = 50) -> list[dict[str, object]]:
        with self._connect() as db:
            rows = db.execute(
                "SELECT id, conversation_id, created_at, study_id, writer, total_ms, question FROM traces "
                "ORDER BY created_at DESC LIMIT ?",
                (limit,),
            ).fetchall()
        keys = ("id", "conversation_id", "created_at", "study_id", "writer", "total_ms", "question")
        return [dict(zip(keys, row, strict=True)) for row in rows]

    def add_evidence(self, conversation_id: str, study_id: str, items: list) -> None:
        with self._lock, self._connect() as db:
            seq = db.execute(
                "SELECT COALESCE(MAX(seq), 0) FROM evidence WHERE conversation_id = ?", (conversation_id,)
            ).fetchone()[0]
            for offset, item in enumerate(items, start=1):
                db.execute(
                    "INSERT OR REPLACE INTO evidence VALUES (?,?,?,?,?,?)",
                    (conversation_id, item.id, study_id, item.kind, item.model_dump_json(), seq + offset),
                )

    def conversation_evidence(self, conversation_id: str) -> list[tuple[str, object]]:
        """(study_id, evidence) in the order recorded."""
        with self._connect() as db:
            rows = db.execute(
                "SELECT study_id, body FROM evidence WHERE conversation_id = ? ORDER BY seq", (conversation_id,)
            ).fetchall()
        return [(study_id, EVIDENCE.validate_python(json.loads(body))) for study_id, body in rows]
