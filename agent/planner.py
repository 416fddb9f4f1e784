"""Deterministic systematic read: which tools apply to the study, which the question needs, within limits."""

from __future__ import annotations

import re

from pydantic import BaseModel, Field

from tools.registry import ToolSpec, all_tools
from tools.study import Study

CHEST_RADIOGRAPH_MODALITIES = ("CR", "DX", "OT")
# The tools a complete chest radiograph read expects, whether or not they are installed yet.
EXPECTED_CHEST_TOOLS = ("classifier", "segmenter")

TOPICS: dict[str, tuple[str, ...]] = {
    "nodule": (r"\bnodul", r"\bmass(es)?\b", r"\blump", r"\bspot", r"\blesion", r"\btumou?r", r"\bcancer"),
    "heart": (r"\bheart", r"\bcardi", r"\benlarg", r"\bctr\b", r"\bcardiothoracic"),
    "pneumonia": (r"\bpneumon", r"\binfect", r"\bconsolidat", r"\bopacit"),
    "lungs": (r"\blung", r"\bfield", r"\bsegment"),
}
TOPIC_TOOLS: dict[str, tuple[str, ...]] = {
    "nodule": ("classifier", "detector"),
    "heart": ("segmenter",),
    "pneumonia": ("classifier",),
    "lungs": ("segmenter",),
}
FRESH_PATTERN = re.compile(r"\b(re-?run|again|fresh|recompute)\b", re.IGNORECASE)


class Limits(BaseModel):
    max_steps: int = Field(default=6, ge=1)
    tool_timeout_s: float = Field(default=60.0, gt=0)
    total_budget_s: float = Field(default=120.0, gt=0)
    knowledge_k: int = Field(default=3, ge=0)
    cases_k: int = Field(default=3, ge=0, description="similar prior cases to retrieve (0: none)")


LATERAL_VIEWS = ("LL", "RL", "LAT", "LATERAL", "LLD", "RLD")
FRONTAL_ONLY_TOOLS = ("classifier", "segmenter", "detector")


class PlannedStep(BaseModel):
    tool: str
    reason: str
    available: bool
    skip: str | None = Field(default=None, description="why the step is planned but must not run on this study")


class Plan(BaseModel):
    topics: list[str]
    steps: list[PlannedStep]
    retrieve_knowledge: bool
    force_fresh: bool = False
    dropped: list[str] = Field(default_factory=list, description="steps cut by max_steps")
    optional: list[str] = Field(default_factory=list, description="applicable tools a model may add")


def question_topics(question: str) -> list[str]:
    text = question.lower()
    return [topic for topic, patterns in TOPICS.items() if any(re.search(p, text) for p in patterns)]


def applies(spec: ToolSpec, study: Study) -> bool:
    return "*" in spec.modalities or study.modality in spec.modalities


def plan_read(study: Study, question: str, limits: Limits, tools: list[ToolSpec] | None = None) -> Plan:
    """Plan from the study (modality) and the question (topics) only; never from text inside the data."""
    registered = {spec.name: spec for spec in (all_tools() if tools is None else tools)}
    topics = question_topics(question)
    steps: list[PlannedStep] = []

    def add(name: str, reason: str) -> None:
        if any(step.tool == name for step in steps):
            return
        spec = registered.get(name)
        if spec is not None and not applies(spec, study):
            return
        skip = None
        if name in FRONTAL_ONLY_TOOLS and (study.metadata.view_position or "").upper() in LATERAL_VIEWS:
            skip = f"the {name} reads frontal views only and this is a lateral view"
        steps.append(PlannedStep(tool=name, reason=reason, available=spec is not None, skip=skip))

    for topic in topics:
        for name in TOPIC_TOOLS[topic]:
            if name in registered or name in EXPECTED_CHEST_TOOLS:
                add(name, f"the question asks about {topic}")
    if study.modality in CHEST_RADIOGRAPH_MODALITIES:
        for name in EXPECTED_CHEST_TOOLS:
            add(name, f"systematic read of a {study.modality} chest image")
    if study.modality not in CHEST_RADIOGRAPH_MODALITIES:
        for name, spec in registered.items():
            if applies(spec, study):
                add(name, f"systematic read: applies to modality {study.modality}")
    kept, dropped = steps[: limits.max_steps], [s.tool for s in steps[limits.max_steps :]]
    planned = {s.tool for s in steps}
    optional = [name for name, spec in registered.items() if applies(spec, study) and name not in planned]
    return Plan(
        topics=topics,
        steps=kept,
        retrieve_knowledge=limits.knowledge_k > 0,
        force_fresh=bool(FRESH_PATTERN.search(question)),
        dropped=dropped,
        optional=optional,
    )
