"""Verifier: every sentence cites resolvable evidence, and its numbers, sides and named findings match it."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, Field

from agent.contracts import CaseEvidence, KnowledgeEvidence, Report, Section, Sentence, ToolEvidence
from agent.vocabulary import (
    AGENT_MADE,
    CTR_THRESHOLD,
    FINDING_TEXT,
    NEGATION,
    NORMAL_TEXT,
    SIDE,
    UNCERTAIN,
    finding_side,
    is_ctr,
    is_positive,
    label_is,
)
from agent.writer import case_sentence_text

AnyEvidence = ToolEvidence | KnowledgeEvidence | CaseEvidence
NUMBER = re.compile(r"(?<![A-Za-z0-9.])(-?\d+(?:\.\d+)?)(\s*%)?")
TOOL_ONLY_SECTIONS: tuple[Section, ...] = ("findings", "impression")


class Decision(BaseModel):
    section: Section
    text: str
    evidence_ids: list[str]
    origin: str
    action: Literal["kept", "dropped", "retemplated"]
    reasons: list[str] = Field(default_factory=list)


def _numbers_in(evidence: list[AnyEvidence]) -> list[float]:
    values: list[float] = []
    for ev in evidence:
        if isinstance(ev, ToolEvidence):
            r = ev.result
            values += [m.value for m in r.measurements]
            values += [float(x) for m in r.measurements for x, _ in NUMBER.findall(f"{m.name} {m.structure or ''}")]
            for f in r.findings:
                values += [v for v in (f.probability, f.score, f.threshold) if v is not None]
                values += [float(v) for v in f.attributes.values() if isinstance(v, int | float)]
                if f.box:
                    values += [f.box.x0, f.box.y0, f.box.x1, f.box.y1]
            if r.model_id == AGENT_MADE:  # the executor's own failure wording (e.g. a timeout in seconds)
                values += [float(x) for w in r.warnings for x, _ in NUMBER.findall(w)]
            if any(is_ctr(m) for m in r.measurements):
                values.append(CTR_THRESHOLD)
        elif isinstance(ev, KnowledgeEvidence):
            values += [float(x) for x, _ in NUMBER.findall(ev.text)]
        else:
            values.append(ev.similarity)
            values += [float(x) for x, _ in NUMBER.findall(ev.reason or "")]
    return values


def _matches(token: str, percent: bool, values: list[float]) -> bool:
    x = float(token)
    decimals = len(token.split(".")[1]) if "." in token else 0
    tolerance = 0.5 * 10 ** (-decimals) + 1e-9
    candidates = [x / 100] if percent else [x]
    if percent:
        tolerance /= 100
    return any(abs(c - v) <= tolerance for c in candidates for v in values)


def _sides_in(evidence: list[AnyEvidence], finding: str | None) -> set[str]:
    sides: set[str] = set()
    for ev in evidence:
        if isinstance(ev, ToolEvidence):
            named = [f for f in ev.result.findings if finding is None or label_is(finding, f.label)]
            # where a tool reports the finding, its side is where the positive ones are, not its rejected candidates
            positive = [f for f in named if is_positive(f)]
            for f in positive or named:
                side = finding_side(f, ev.image_columns)
                if side:
                    sides.add(side)
            if finding is None:
                words = [m.structure or m.name for m in ev.result.measurements] + [g.label for g in ev.result.regions]
                sides |= {s.lower() for w in words for s in SIDE.findall(w.replace("_", " "))}
        elif isinstance(ev, KnowledgeEvidence):
            sides |= {s.lower() for s in SIDE.findall(ev.text)}
    return sides


def _polarity(text: str, start: int) -> str:
    before = text[:start]
    if UNCERTAIN.search(text):
        return "uncertain"
    return "negative" if NEGATION.search(before) else "positive"


def _supports(name: str, polarity: str, evidence: list[AnyEvidence], section: Section) -> bool:
    tools = [e for e in evidence if isinstance(e, ToolEvidence)]
    if polarity == "uncertain":
        return bool(tools)
    matched = [f for ev in tools if ev.result.status == "ok" for f in ev.result.findings if label_is(name, f.label)]
    if polarity == "positive" and any(is_positive(f) for f in matched):
        return True
    # "no X" needs every cited X to be negative: one positive candidate among a detector's list contradicts it
    if polarity == "negative" and matched and not any(is_positive(f) for f in matched):
        return True
    for ev in tools:
        if ev.result.status != "ok":
            continue
        if name == "cardiomegaly":
            for m in ev.result.measurements:
                if is_ctr(m) and (m.value > CTR_THRESHOLD) == (polarity == "positive"):
                    return True
    if section not in TOOL_ONLY_SECTIONS:
        pattern = re.compile(FINDING_TEXT[name], re.IGNORECASE)
        return any(isinstance(e, KnowledgeEvidence) and e.status == "ok" and pattern.search(e.text) for e in evidence)
    return False


def _check_case_sentence(sentence: Sentence, cited: list[AnyEvidence]) -> list[str]:
    """A similar-cases sentence states one cited prior case's diagnosis and similarity, in the writer's wording."""
    cases = [e for e in cited if isinstance(e, CaseEvidence) and e.status == "ok"]
    if len(cases) != len(cited):
        return ["a similar-cases sentence may cite only retrieved prior cases"]
    if not any(sentence.text == case_sentence_text(c) for c in cases):
        return ["does not state a cited prior case's diagnosis and similarity"]
    return []


def check_sentence(sentence: Sentence, section: Section, index: dict[str, AnyEvidence]) -> list[str]:
    """Reasons the sentence is unsupported; empty when it passes."""
    if not sentence.evidence_ids:
        return ["cites no evidence"]
    missing = [i for i in sentence.evidence_ids if i not in index]
    if missing:
        return [f"cites unknown evidence {', '.join(missing)}"]
    cited = [index[i] for i in sentence.evidence_ids]
    if section == "similar_cases":
        return _check_case_sentence(sentence, cited)
    reasons: list[str] = []
    text = re.sub(r"\b[TKC][1-9][0-9]*\b", " ", sentence.text)
    values = _numbers_in(cited)
    for token, percent in NUMBER.findall(text):
        if not _matches(token, bool(percent.strip()), values):
            reasons.append(f"number {token}{percent.strip()} does not match the cited evidence")
    named: list[str] = []
    for name, pattern in FINDING_TEXT.items():
        match = re.search(pattern, text, re.IGNORECASE)
        if match:
            named.append(name)
            polarity = _polarity(text, match.start())
            if not _supports(name, polarity, cited, section):
                reasons.append(f"{polarity} claim of {name} is not supported by the cited evidence")
    for name, pattern in NORMAL_TEXT.items():
        if re.search(pattern, text, re.IGNORECASE) and not _supports(name, "negative", cited, section):
            reasons.append(f"normal claim about {name} is not supported by the cited evidence")
    sides = {s.lower() for s in SIDE.findall(text)}
    if sides:
        supported = _sides_in(cited, named[0] if named else None)
        wrong = sides - supported
        if wrong:
            reasons.append(f"laterality {', '.join(sorted(wrong))} is not in the cited evidence")
    return reasons


def verify(report: Report, fallback: Report | None = None) -> tuple[Report, list[Decision]]:
    """Drop unsupported sentences; refill an emptied section from the template fallback (verified too)."""
    index = report.evidence_by_id()
    decisions: list[Decision] = []
    sections: dict[str, list[Sentence]] = {}
    for name, sentences in report.sections():
        kept: list[Sentence] = []
        for s in sentences:
            reasons = check_sentence(s, name, index)
            decisions.append(
                Decision(
                    section=name,
                    text=s.text,
                    evidence_ids=s.evidence_ids,
                    origin=s.origin,
                    action="dropped" if reasons else "kept",
                    reasons=reasons,
                )
            )
            if not reasons:
                kept.append(s)
        if not kept and fallback is not None and sentences:
            for s in getattr(fallback, name):
                if not check_sentence(s, name, index):
                    kept.append(s.model_copy(update={"origin": "retemplated"}))
                    decisions.append(
                        Decision(
                            section=name,
                            text=s.text,
                            evidence_ids=s.evidence_ids,
                            origin="template",
                            action="retemplated",
                            reasons=["section emptied by the verifier"],
                        )
                    )
        sections[name] = kept
    return report.model_copy(update=sections), decisions
