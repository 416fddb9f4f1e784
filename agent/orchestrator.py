"""One question on one study: plan, run tools (or reuse them), retrieve, write, verify, trace."""

from __future__ import annotations

import logging
import platform
import time
import uuid
from collections.abc import Callable
from importlib import metadata
from typing import Any

from agent.cases import find_similar
from agent.config import AgentConfig
from agent.contracts import CaseEvidence, KnowledgeEvidence, Report, ToolEvidence, Trace, TraceStep
from agent.executor import Budget, run_step
from agent.memory import Conversation
from agent.planner import Plan, PlannedStep, plan_read
from agent.retrieval import knowledge_query, retrieve
from agent.trace_store import TraceStore
from agent.verifier import verify
from agent.vocabulary import is_positive
from agent.writer import write_report
from tools.result import ToolResult
from tools.study import Study

log = logging.getLogger(__name__)


def _versions() -> dict[str, str]:
    try:
        version = metadata.version("medagent")
    except metadata.PackageNotFoundError:
        version = "unknown"
    return {"medagent": version, "python": platform.python_version()}


def slim(result: ToolResult) -> dict[str, Any]:
    """A tool result for the trace: everything but the pixel payloads (overlay, masks)."""
    data = result.model_dump(mode="json", exclude={"overlay_png_b64"})
    for region in data["regions"]:
        region.pop("mask_png_b64", None)
    return data


class Agent:
    def __init__(self, config: AgentConfig | None = None, store: TraceStore | None = None) -> None:
        self.config = config or AgentConfig()
        self.store = store or TraceStore(self.config.trace_db)
        self._llm = None
        if self.config.llm is not None:
            from agent.llm import LLMBackend  # langchain imports only when a model is configured

            self._llm = LLMBackend(self.config.llm)

    def ask(
        self,
        study: Study,
        question: str,
        conversation_id: str | None = None,
        on_step: Callable[[TraceStep], None] | None = None,
    ) -> Report:
        started = time.perf_counter()
        limits = self.config.limits
        budget = Budget(limits.total_budget_s)
        conversation = Conversation(self.store, conversation_id)
        versions = _versions() | (
            {"llm": f"{self.config.llm.model} @ {self.config.llm.base_url}"} if self.config.llm else {}
        )
        trace = Trace(
            id=uuid.uuid4().hex,
            conversation_id=conversation.id,
            question=question,
            study=study.summary(),
            versions=versions,
        )
        trace.listen(on_step)

        t0 = time.perf_counter()
        plan = plan_read(study, question, limits)
        trace.add("plan", "systematic read", (time.perf_counter() - t0) * 1000, **plan.model_dump())

        tools = [self._tool_evidence(step, study, plan, conversation, trace, budget) for step in plan.steps]
        if self._llm is not None:
            tools += self._llm_tool_calls(study, question, plan, tools, conversation, trace, budget)

        facts = self._retrieve(plan, tools, conversation, trace)
        cases = self._similar_cases(study, plan, conversation, trace)
        evidence = [*tools, *facts, *cases]
        t0 = time.perf_counter()
        template = write_report(
            study_id=study.id, question=question, conversation_id=conversation.id, topics=plan.topics, evidence=evidence
        )
        trace.add("write", "template", (time.perf_counter() - t0) * 1000, sentences=len(template.sentences()))
        draft = template
        if self._llm is not None:
            draft = self._llm.write_report(template, question, trace) or template
        t0 = time.perf_counter()
        report, decisions = verify(draft, fallback=template)
        trace.add(
            "verification",
            "verifier",
            (time.perf_counter() - t0) * 1000,
            decisions=[d.model_dump() for d in decisions],
            dropped=sum(d.action == "dropped" for d in decisions),
        )

        report = report.model_copy(update={"trace_id": trace.id})
        trace.report = report.model_copy(update={"evidence": [self._slim_evidence(e) for e in report.evidence]})
        trace.total_ms = (time.perf_counter() - started) * 1000
        conversation.commit(study.id)
        self.store.save_trace(trace)
        return report

    @staticmethod
    def _slim_evidence(ev):
        if isinstance(ev, ToolEvidence):
            return ev.model_copy(update={"result": ToolResult.model_validate(slim(ev.result))})
        return ev

    def _tool_evidence(
        self, step: PlannedStep, study: Study, plan: Plan, conversation: Conversation, trace: Trace, budget: Budget
    ) -> ToolEvidence:
        previous = None if plan.force_fresh else conversation.reusable_tool(study.id, step.tool)
        if previous is not None:
            trace.add("memory", step.tool, evidence_id=previous.id, reused=True)
            return previous
        t0 = time.perf_counter()
        result = run_step(step, study, self.config.limits, budget)
        evidence = ToolEvidence(
            id=conversation.next_id("T"), result=result, question_topics=plan.topics, image_columns=study.shape[2]
        )
        conversation.record(evidence)
        trace.add(
            "tool_call",
            step.tool,
            (time.perf_counter() - t0) * 1000,
            evidence_id=evidence.id,
            arguments={"study_id": study.id, "reason": step.reason},
            result=slim(result),
            model_id=result.model_id,
            weights_sha256=result.weights_sha256,
        )
        return evidence

    def _llm_tool_calls(self, study, question, plan, tools, conversation, trace, budget) -> list[ToolEvidence]:
        extra_steps = self._llm.propose_tools(study, question, plan, tools, trace)
        room = max(0, self.config.limits.max_steps - len(plan.steps))
        return [self._tool_evidence(step, study, plan, conversation, trace, budget) for step in extra_steps[:room]]

    def _retrieve(
        self, plan: Plan, tools: list[ToolEvidence], conversation: Conversation, trace: Trace
    ) -> list[KnowledgeEvidence]:
        if not plan.retrieve_knowledge:
            return []
        positives = [f.label for ev in tools if ev.result.status == "ok" for f in ev.result.findings if is_positive(f)]
        query = knowledge_query(plan.topics, positives)
        earlier = [e for _, e in conversation.history if isinstance(e, KnowledgeEvidence) and e.query == query]
        if earlier:
            trace.add("memory", "knowledge", evidence_ids=[e.id for e in earlier], reused=True, query=query)
            return earlier
        t0 = time.perf_counter()
        found = retrieve(query, self.config.limits.knowledge_k, self.config.knowledge_path)
        if found.error:
            facts = [
                KnowledgeEvidence(
                    id=conversation.next_id("K"),
                    status="unavailable",
                    query=query,
                    text=f"knowledge retrieval unavailable ({found.error})",
                )
            ]
            conversation.record(facts[0])
        else:
            facts = []
            for hit in found.hits:
                fact = KnowledgeEvidence(
                    id=conversation.next_id("K"),
                    query=query,
                    **{
                        k: hit.get(k)
                        for k in (
                            "text",
                            "fact_id",
                            "title",
                            "source_id",
                            "source_name",
                            "source_version",
                            "license",
                            "locator",
                            "score",
                        )
                    },
                )
                facts.append(fact)
                conversation.record(fact)
        trace.add(
            "retrieval",
            "knowledge",
            (time.perf_counter() - t0) * 1000,
            query=query,
            error=found.error,
            hits=[
                {"evidence_id": f.id, "fact_id": f.fact_id, "score": f.score, "source_id": f.source_id} for f in facts
            ],
        )
        return facts

    def _similar_cases(self, study: Study, plan: Plan, conversation: Conversation, trace: Trace) -> list[CaseEvidence]:
        k = self.config.limits.cases_k
        if k <= 0:
            return []
        earlier = [e for sid, e in conversation.history if sid == study.id and isinstance(e, CaseEvidence)]
        if earlier and not plan.force_fresh and all(e.status == "ok" for e in earlier):
            trace.add("memory", "cases", evidence_ids=[e.id for e in earlier], reused=True)
            return earlier  # the same study finds the same cases: a follow-up cites them again
        t0 = time.perf_counter()
        found = find_similar(study, k)
        rows = [{"status": "unavailable", "reason": found.error}] if found.error else found.hits
        cases = [conversation.record(CaseEvidence(id=conversation.next_id("C"), **row)) for row in rows]
        trace.add(
            "retrieval",
            "cases",
            (time.perf_counter() - t0) * 1000,
            k=k,
            error=found.error,
            hits=[{"evidence_id": c.id, "case_id": c.case_id, "similarity": c.similarity, "diagnosis": c.diagnosis}
                  for c in cases if c.status == "ok"],
        )
        return cases


def replay(trace: Trace) -> dict[str, Any]:
    """Re-write and re-verify the recorded evidence; report whether the same sentences come out."""
    if trace.report is None:
        raise ValueError("the trace has no report to replay")
    stored = trace.report
    plan_step = next((s for s in trace.steps if s.kind == "plan"), None)
    topics = list(plan_step.data.get("topics", [])) if plan_step else []
    template = write_report(
        study_id=stored.study_id,
        question=stored.question,
        conversation_id=stored.conversation_id,
        topics=topics,
        evidence=stored.evidence,
    )
    recheck, decisions = verify(stored, fallback=template)
    if stored.writer == "template":
        rebuilt, _ = verify(template, fallback=template)
    else:
        rebuilt = recheck

    def key(r: Report) -> list[tuple[str, str, tuple[str, ...]]]:
        return [(name, s.text, tuple(s.evidence_ids)) for name, ss in r.sections() for s in ss]

    return {
        "trace_id": trace.id,
        "writer": stored.writer,
        "identical": key(rebuilt) == key(stored),
        "stored_sentences": len(stored.sentences()),
        "replayed_sentences": len(rebuilt.sentences()),
        "verifier_drops_on_replay": sum(d.action == "dropped" for d in decisions),
        "report": rebuilt.model_dump(mode="json"),
    }
