"""What one browser session holds. Each session gets its own copy: users never share a study or chat."""

from __future__ import annotations

from dataclasses import dataclass, field

from agent.contracts import Report
from tools.study import Study


@dataclass
class ChatSession:
    study: Study | None = None
    study_name: str | None = None
    conversation_id: str | None = None
    report: Report | None = None
    history: list[dict] = field(default_factory=list)

    def results(self) -> list:
        if self.report is None:
            return []
        return [ev.result for ev in self.report.evidence if ev.kind == "tool"]
