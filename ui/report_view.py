"""The report panel as HTML: every citation is a link to its evidence card below the report."""

from __future__ import annotations

import base64
import io
import logging
from html import escape

from agent.contracts import SECTION_TITLES, CaseEvidence, KnowledgeEvidence, Report, ToolEvidence

log = logging.getLogger(__name__)


def _cite(ids: list[str]) -> str:
    return " ".join(f'<a class="cite" href="#ev-{escape(i)}">[{escape(i)}]</a>' for i in ids)


def _tool_card(ev: ToolEvidence) -> str:
    r = ev.result
    rows = [f"<li>{escape(f.label)}: p={f.probability:.2f}{' (calibrated)' if f.calibrated else ''}"
            f"{' — above threshold' if f.positive else ''}</li>" for f in r.findings if f.probability is not None]
    rows += [f"<li>{escape(m.name)}{' (' + escape(m.structure) + ')' if m.structure else ''}: "
             f"{m.value:.3g} {escape(m.unit)}</li>" for m in r.measurements]
    rows += [f"<li class='warn'>warning: {escape(w)}</li>" for w in r.warnings]
    overlay = (f'<img class="overlay" alt="{escape(r.tool)} overlay" src="data:image/png;base64,{r.overlay_png_b64}"/>'
               if r.overlay_png_b64 else "")
    meta = f"{escape(r.tool)} · model {escape(r.model_id)} · status {escape(r.status)} · {r.latency_ms:.0f} ms"
    return f"<div class='meta'>{meta}</div><ul>{''.join(rows) or '<li>no outputs</li>'}</ul>{overlay}"


def _knowledge_card(ev: KnowledgeEvidence) -> str:
    locator = ev.locator or ""
    link = (f'<a href="{escape(locator)}" target="_blank" rel="noopener">{escape(locator)}</a>'
            if locator.startswith(("http://", "https://")) else escape(locator))
    source = escape(ev.source_name or ev.source_id or "unknown source")
    licence = escape(ev.license or "licence not stated")
    return (f"<div class='meta'>{escape(ev.title or ev.fact_id or 'fact')} — {source} ({licence}) {link}</div>"
            f"<blockquote>{escape(ev.text)}</blockquote>")


def _case_thumbnail(case_id: str) -> str:
    """The prior case's de-identified thumbnail from the case library, inline; empty when it cannot be read."""
    try:
        from knowledge.cases.library import default_library

        image = default_library().thumbnail(case_id)
    except Exception as err:  # the library is optional: the card still shows the text
        log.warning("no thumbnail for case %s: %s", case_id, err)
        return ""
    if image is None:
        return ""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f"<img class='case-thumb' alt='prior case {escape(case_id)}' src='data:image/png;base64,{data}' width='160'>"


def _case_card(ev: CaseEvidence) -> str:
    if ev.status != "ok":
        return f"<div class='meta'>similar-case search unavailable: {escape(ev.reason or '')}</div>"
    return (f"{_case_thumbnail(ev.case_id)}<div class='meta'>case {escape(ev.case_id)} · similarity "
            f"{ev.similarity:.2f} · {escape(ev.diagnosis or 'no diagnosis')} · {escape(ev.source or '')} · "
            f"{escape(ev.license or '')}</div><blockquote>{escape(ev.report_excerpt or '')}</blockquote>")


def evidence_card(ev: ToolEvidence | KnowledgeEvidence | CaseEvidence) -> str:
    body = (_tool_card(ev) if isinstance(ev, ToolEvidence)
            else _knowledge_card(ev) if isinstance(ev, KnowledgeEvidence) else _case_card(ev))
    return f'<details class="evidence" id="ev-{escape(ev.id)}" open><summary>{escape(ev.id)}</summary>{body}</details>'


def report_html(report: Report) -> str:
    parts = ["<div class='report'>"]
    for name, sentences in report.sections():
        items = "".join(f"<li>{escape(s.text)} {_cite(s.evidence_ids)}</li>" for s in sentences) or "<li>(none)</li>"
        parts.append(f"<h3>{SECTION_TITLES[name]}</h3><ul class='section-{name}'>{items}</ul>")
    parts.append(f"<p class='disclaimer'><em>{escape(report.disclaimer)}</em></p>")
    parts.append("<h3>Evidence</h3>")
    parts += [evidence_card(ev) for ev in report.evidence]
    parts.append(f"<p class='meta'>writer {escape(report.writer)} · trace {escape(report.trace_id or '')}</p></div>")
    return "".join(parts)
