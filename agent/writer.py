"""Template report writer: a correct, cited report from evidence alone, without any language model.

Text that came with the data (tool warnings, knowledge text, DICOM tags) is never copied into a sentence:
sentences are built from typed fields (labels, numbers, tool names) and point to the evidence for the rest.
"""

from __future__ import annotations

import re

from agent.contracts import CaseEvidence, KnowledgeEvidence, Report, Sentence, ToolEvidence
from agent.vocabulary import (
    AGENT_MADE,
    CTR_THRESHOLD,
    TOPIC_FINDING,
    finding_side,
    format_number,
    is_ctr,
    is_positive,
    known_diagnosis,
    label_is,
)
from tools.result import Finding

SAFE_LABEL = re.compile(r"[^A-Za-z0-9 ().,:/-]+")


def clean(text: str, limit: int = 60) -> str:
    """A label or title reduced to plain words, so no data text can smuggle instructions into a sentence."""
    return SAFE_LABEL.sub(" ", text.replace("_", " ")).strip()[:limit] or "unnamed"


def _where(finding: Finding, side: str | None) -> str:
    """' in the left lung (upper zone, diameter 12 mm)' from what the tool gave; empty when it gave nothing."""
    details = []
    zone = str(finding.attributes.get("zone", ""))
    if zone in ("upper", "middle", "lower"):
        details.append(f"{zone} zone")
    for key, unit in (("diameter_mm", "mm"), ("diameter_px", "px")):
        value = finding.attributes.get(key)
        if isinstance(value, int | float):
            details.append(f"diameter {format_number(float(value))} {unit}")
            break
    where = f" in the {side} lung" if side else ""
    return where + (f" ({', '.join(details)})" if details and is_positive(finding) else "")


def _finding_sentence(ev: ToolEvidence, finding: Finding) -> Sentence:
    label = clean(finding.label)
    side = finding_side(finding, ev.image_columns)
    where = _where(finding, side)
    value = finding.probability if finding.probability is not None else finding.score
    stats = (
        f"probability {format_number(value)}"
        if finding.probability is not None
        else (f"score {format_number(value)}" if value is not None else "no score")
    )
    if finding.threshold is not None:
        stats += f", threshold {format_number(finding.threshold)}"
    if is_positive(finding):
        text = f"The {clean(ev.result.tool)} reports {label}{where} ({stats})."
    else:
        text = f"The {clean(ev.result.tool)} does not report {label} ({stats})."
    return Sentence(text=text, evidence_ids=[ev.id])


def _measurement_sentences(ev: ToolEvidence) -> list[Sentence]:
    out = []
    for m in ev.result.measurements:
        structure = f" of the {clean(m.structure)}" if m.structure else ""
        unit = "" if m.unit in ("ratio", "probability") else f" {clean(m.unit, 20)}"
        text = f"The {clean(ev.result.tool)} measures {clean(m.name)}{structure} at {format_number(m.value)}{unit}."
        out.append(Sentence(text=text, evidence_ids=[ev.id]))
    return out


def _below_threshold_summary(ev: ToolEvidence, label: str, findings: list[Finding], any_positive: bool) -> Sentence:
    """One sentence for a tool's sub-threshold findings of one label (a detector's candidate list)."""
    values = [f.probability if f.probability is not None else f.score for f in findings]
    top = max((v for v in values if v is not None), default=None)
    kind = "probability" if findings[0].probability is not None else "score"
    highest = f" (highest {kind} {format_number(top)})" if top is not None else ""
    if any_positive:  # worded without a negation: the tool does report this finding elsewhere
        many = len(findings) > 1
        text = (f"The other {clean(label)}{'s' if many else ''} of the {clean(ev.result.tool)} "
                f"{'are' if many else 'is'} below its threshold{highest}.")
    else:
        text = f"The {clean(ev.result.tool)} reports no {clean(label)} above its threshold{highest}."
    return Sentence(text=text, evidence_ids=[ev.id])


def findings_section(tools: list[ToolEvidence]) -> list[Sentence]:
    out: list[Sentence] = []
    for ev in tools:
        if ev.result.status != "ok":
            continue
        below: dict[str, list[Finding]] = {}
        reported: set[str] = set()
        for f in ev.result.findings:
            if is_positive(f):
                out.append(_finding_sentence(ev, f))
                reported.add(f.label)
            else:
                below.setdefault(f.label, []).append(f)
        for label, group in below.items():
            if len(group) == 1 and label not in reported:
                out.append(_finding_sentence(ev, group[0]))
            else:
                out.append(_below_threshold_summary(ev, label, group, label in reported))
        out += _measurement_sentences(ev)
    return out


def _topic_sentence(topic: str, tools: list[ToolEvidence]) -> Sentence:
    name = TOPIC_FINDING[topic]
    ok = [ev for ev in tools if ev.result.status == "ok"]
    matched = [(ev, f) for ev in ok for f in ev.result.findings if label_is(name, f.label)]
    if matched:
        positive = [(ev, f) for ev, f in matched if is_positive(f)]
        if positive:
            sides = {finding_side(f, ev.image_columns) for ev, f in positive} - {None}
            where = f" in the {sides.pop()} lung" if len(sides) == 1 else ""
            cites = list(dict.fromkeys(ev.id for ev, _ in positive))
            return Sentence(text=f"The image is suggestive of {name}{where}.", evidence_ids=cites)
        names = " and the ".join(dict.fromkeys(clean(ev.result.tool) for ev, _ in matched))
        cites = list(dict.fromkeys(ev.id for ev, _ in matched))
        return Sentence(text=f"No {name} is suggested by the {names}.", evidence_ids=cites)
    for ev in ok:
        if name == "cardiomegaly":
            for m in ev.result.measurements:
                if is_ctr(m):
                    ratio, limit = format_number(m.value), format_number(CTR_THRESHOLD)
                    if m.value > CTR_THRESHOLD:
                        text = f"The heart appears enlarged (cardiothoracic ratio {ratio}, above {limit})."
                    else:
                        text = f"The heart size is within normal limits (cardiothoracic ratio {ratio}, <= {limit})."
                    return Sentence(text=text, evidence_ids=[ev.id])
    failed = [ev.id for ev in tools if ev.result.status != "ok"]
    cites = failed or [ev.id for ev in ok]
    reason = "the tools it needs are unavailable" if failed else "no tool assessed it"
    return Sentence(text=f"Whether there is {name} cannot be assessed because {reason}.", evidence_ids=cites)


def impression_section(topics: list[str], tools: list[ToolEvidence]) -> list[Sentence]:
    asked = [t for t in topics if t in TOPIC_FINDING]
    if asked and tools:
        return [_topic_sentence(t, tools) for t in asked]
    positives = [(ev, f) for ev in tools if ev.result.status == "ok" for f in ev.result.findings if is_positive(f)]
    if positives:
        return [Sentence(text=f"Positive finding: {clean(f.label)}.", evidence_ids=[ev.id]) for ev, f in positives]
    ok = [ev.id for ev in tools if ev.result.status == "ok"]
    if ok:
        return [Sentence(text="No tool reported a positive finding.", evidence_ids=ok)]
    failed = [ev.id for ev in tools]
    if failed:
        return [Sentence(text="No automated assessment of the image could be made.", evidence_ids=failed)]
    return []


def recommendations_section(tools: list[ToolEvidence], facts: list[KnowledgeEvidence]) -> list[Sentence]:
    out: list[Sentence] = []
    positive = [ev.id for ev in tools if ev.result.status == "ok" and any(is_positive(f) for f in ev.result.findings)]
    if positive:
        out.append(Sentence(text="A qualified reader should confirm the positive tool findings on the image.",
                            evidence_ids=positive))
    for fact in facts:
        if fact.status == "ok":  # the fact's title and text are data: they stay in the evidence, never in a sentence
            out.append(
                Sentence(
                    text="A reference fact from the knowledge base is cited for the reader.", evidence_ids=[fact.id]
                )
            )
    return out


def case_sentence_text(case: CaseEvidence) -> str:
    """The one wording of a prior case (the verifier checks it against the cited case)."""
    similarity = format_number(case.similarity)
    if not known_diagnosis(case.diagnosis):
        return f"A similar prior case is cited with its recorded diagnosis (similarity {similarity})."
    return f"A similar prior case had the diagnosis {clean(case.diagnosis or 'unknown')} (similarity {similarity})."


def similar_cases_section(cases: list[CaseEvidence]) -> list[Sentence]:
    """Prior cases for comparison: their diagnoses are theirs, never a finding on this study."""
    return [Sentence(text=case_sentence_text(c), evidence_ids=[c.id]) for c in cases if c.status == "ok"]


def limitations_section(
    tools: list[ToolEvidence], facts: list[KnowledgeEvidence], cases: list[CaseEvidence] | None = None
) -> list[Sentence]:
    out: list[Sentence] = []
    for case in cases or []:
        if case.status != "ok":
            reason = clean(case.reason or "unknown error", 160)
            out.append(Sentence(text=f"No similar prior cases are shown: {reason}.", evidence_ids=[case.id]))
    for ev in tools:
        tool = clean(ev.result.tool)
        if ev.result.status != "ok":
            # agent-made failure records carry our own wording; a tool's own text stays in the evidence only
            own = ev.result.model_id == AGENT_MADE and ev.result.warnings
            reason = clean(ev.result.warnings[0], 120) if own else f"the {tool} returned status {ev.result.status}"
            out.append(Sentence(text=f"No {tool} result is available: {reason}.", evidence_ids=[ev.id]))
            continue
        if ev.result.warnings:
            out.append(Sentence(text=f"The {tool} returned warnings, listed with its evidence.", evidence_ids=[ev.id]))
        if any(m.unit in ("px", "px2") for m in ev.result.measurements):
            out.append(
                Sentence(
                    text=f"The {tool} measured in pixels because the pixel spacing is unknown.", evidence_ids=[ev.id]
                )
            )
    for fact in facts:
        if fact.status != "ok":
            out.append(
                Sentence(
                    text="Reference knowledge could not be retrieved, so no facts are cited.", evidence_ids=[fact.id]
                )
            )
    return out


def write_report(
    *,
    study_id: str,
    question: str,
    conversation_id: str,
    topics: list[str],
    evidence: list[ToolEvidence | KnowledgeEvidence | CaseEvidence],
) -> Report:
    tools = [e for e in evidence if isinstance(e, ToolEvidence)]
    facts = [e for e in evidence if isinstance(e, KnowledgeEvidence)]
    cases = [e for e in evidence if isinstance(e, CaseEvidence)]
    return Report(
        study_id=study_id,
        question=question,
        conversation_id=conversation_id,
        findings=findings_section(tools),
        impression=impression_section(topics, tools),
        similar_cases=similar_cases_section(cases),
        recommendations=recommendations_section(tools, facts),
        limitations=limitations_section(tools, facts, cases),
        evidence=list(evidence),
    )
