"""Report exports: Markdown for readers, JSON for machines (DICOM SR lives in agent/sr.py)."""

from __future__ import annotations

import json
from typing import Any

from agent.contracts import SECTION_TITLES, CaseEvidence, KnowledgeEvidence, Report, ToolEvidence
from agent.vocabulary import format_number


def evidence_line(ev: ToolEvidence | KnowledgeEvidence | CaseEvidence) -> str:
    if isinstance(ev, ToolEvidence):
        r = ev.result
        parts = [f"{f.label}={format_number(f.probability)}" for f in r.findings if f.probability is not None]
        parts += [f"{m.name}={format_number(m.value)} {m.unit}" for m in r.measurements]
        warn = f"; warnings (tool text): {json.dumps(r.warnings)}" if r.warnings else ""
        return f"{r.tool} [{r.status}] model {r.model_id}: {', '.join(parts) or 'no outputs'}{warn}"
    if isinstance(ev, KnowledgeEvidence):
        where = f" <{ev.locator}>" if ev.locator else ""
        source = f"{ev.source_name or ev.source_id}, {ev.license}"
        return f"{ev.title or ev.fact_id or 'fact'} ({source}){where}: {ev.text!r}"
    return f"case {ev.case_id} (similarity {ev.similarity:.2f}, {ev.diagnosis}): {ev.report_excerpt!r}"


def to_markdown(report: Report) -> str:
    lines = [f"# Report for study {report.study_id[:12]}", "", f"**Question:** {json.dumps(report.question)}", ""]
    for name, sentences in report.sections():
        lines += [f"## {SECTION_TITLES[name]}", ""]
        lines += [f"- {s.text} [{', '.join(s.evidence_ids)}]" for s in sentences] or ["- (none)"]
        lines.append("")
    lines += ["## Evidence", ""]
    lines += [f"- **{ev.id}**: {evidence_line(ev)}" for ev in report.evidence]
    lines += ["", f"*{report.disclaimer}*", "", f"Writer: {report.writer}; trace: {report.trace_id}"]
    return "\n".join(lines) + "\n"


def to_json(report: Report) -> dict[str, Any]:
    """The report with each sentence's citations resolved to short evidence descriptions (no pixel payloads)."""
    index = report.evidence_by_id()
    data = report.model_dump(mode="json")
    for ev in data["evidence"]:
        if ev["kind"] == "tool":
            ev["result"].pop("overlay_png_b64", None)
            for region in ev["result"]["regions"]:
                region.pop("mask_png_b64", None)
    for name, _ in report.sections():
        for sentence in data[name]:
            sentence["evidence"] = {i: evidence_line(index[i]) for i in sentence["evidence_ids"] if i in index}
    return data
