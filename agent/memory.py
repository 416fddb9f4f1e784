"""Conversation memory: evidence ids continue across follow-ups, and tool results are reused per study."""

from __future__ import annotations

import uuid

from agent.contracts import CaseEvidence, KnowledgeEvidence, ToolEvidence
from agent.trace_store import TraceStore

AnyEvidence = ToolEvidence | KnowledgeEvidence | CaseEvidence


class Conversation:
    def __init__(self, store: TraceStore, conversation_id: str | None = None) -> None:
        self.store = store
        self.id = conversation_id or uuid.uuid4().hex[:16]
        self.history: list[tuple[str, AnyEvidence]] = store.conversation_evidence(self.id)
        self.new: list[AnyEvidence] = []

    def next_id(self, prefix: str) -> str:
        used = [e.id for _, e in self.history] + [e.id for e in self.new]
        numbers = [int(i[1:]) for i in used if i.startswith(prefix)]
        return f"{prefix}{max(numbers, default=0) + 1}"

    def reusable_tool(self, study_id: str, tool: str) -> ToolEvidence | None:
        """The latest successful result of this tool on this study in this conversation."""
        for sid, ev in reversed(self.history):
            if sid == study_id and isinstance(ev, ToolEvidence) and ev.result.tool == tool and ev.result.status == "ok":
                return ev
        return None

    def record(self, evidence: AnyEvidence) -> AnyEvidence:
        self.new.append(evidence)
        return evidence

    def commit(self, study_id: str) -> None:
        self.store.add_evidence(self.id, study_id, self.new)
        self.history += [(study_id, e) for e in self.new]
        self.new = []
