"""End-to-end latency per question (upload to report), broken down by stage, with templates only and with
the embedded vLLM (SmolLM2-135M on CPU, started by agent.embedded_llm) when it is set up.

    python scripts/bench_agent.py [--n 10] [--out var/bench/agent.json] [--no-llm]

Stages come from the trace of each question: load (study decoding), plan, tools, memory, retrieval, llm
(requests and fallbacks), write, verify; 'other' is the remainder of the wall time.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import time
import uuid
from pathlib import Path

import torch

from agent.config import AgentConfig, LLMConfig
from agent.embedded_llm import EmbeddedLLMServer, EmbeddedLLMSettings
from agent.orchestrator import Agent
from agent.trace_store import TraceStore
from tools.home import PROJECT_ROOT, shared_data_dir
from tools.study import load_study

log = logging.getLogger("bench_agent")
QUESTIONS = PROJECT_ROOT / "agent" / "eval" / "questions.jsonl"
STAGES = {
    "plan": "plan",
    "tool_call": "tools",
    "memory": "memory",
    "retrieval": "retrieval",
    "llm_request": "llm",
    "llm_response": "llm",
    "llm_fallback": "llm",
    "write": "write",
    "verification": "verify",
}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def run(agent: Agent, questions: list[dict], data: Path) -> dict:
    rows = []
    for q in questions:
        started = time.perf_counter()
        study = load_study(data / q["image"])
        load_ms = (time.perf_counter() - started) * 1000
        report = agent.ask(study, q["question"], conversation_id=f"bench-{uuid.uuid4().hex[:8]}")
        total_ms = (time.perf_counter() - started) * 1000
        stages = {"load": load_ms}
        for step in agent.store.get_trace(report.trace_id).steps:
            name = STAGES[step.kind]
            stages[name] = stages.get(name, 0.0) + step.duration_ms
        stages["other"] = total_ms - sum(stages.values())
        rows.append({"id": q["id"], "total_ms": total_ms, "stages_ms": stages, "writer": report.writer})
    totals = [r["total_ms"] / 1000 for r in rows]
    names = sorted({k for r in rows for k in r["stages_ms"]})
    return {
        "n": len(rows),
        "p50_s": statistics.median(totals),
        "p90_s": percentile(totals, 0.9),
        "max_s": max(totals),
        "stage_p50_ms": {k: statistics.median(r["stages_ms"].get(k, 0.0) for r in rows) for k in names},
        "writers": sorted({r["writer"] for r in rows}),
        "rows": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=10, help="questions (first turns of the question set)")
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "var" / "bench" / "agent.json")
    parser.add_argument("--no-llm", action="store_true", help="templates only")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(1)
    data = shared_data_dir()
    lines = QUESTIONS.read_text().splitlines()
    questions = [q for q in map(json.loads, lines) if q["turn"] == 0][:: max(1, 40 // args.n)][: args.n]
    store = TraceStore(args.out.parent / f"bench-traces-{uuid.uuid4().hex[:8]}.sqlite")
    warm = Agent(AgentConfig(), store=store)
    run(warm, questions[:1], data)  # load tool weights and the knowledge index once, as a running app has
    result: dict = {"machine_threads": torch.get_num_threads(), "templates": run(warm, questions, data)}
    settings = EmbeddedLLMSettings()
    if args.no_llm or settings.missing():
        result["embedded_llm"] = {"skipped": "--no-llm" if args.no_llm else settings.missing()}
    else:
        started = time.perf_counter()
        with EmbeddedLLMServer(settings) as server:
            ready_s = time.perf_counter() - started
            llm = LLMConfig(
                base_url=server.base_url, model=server.model, timeout_s=60, max_tokens=160, sections=["impression"]
            )
            result["embedded_llm"] = {
                "server_ready_s": ready_s,
                **run(Agent(AgentConfig(llm=llm), store=store), questions, data),
            }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    brief = {k: {kk: vv for kk, vv in v.items() if kk != "rows"} for k, v in result.items() if isinstance(v, dict)}
    log.info("wrote %s: %s", args.out, json.dumps(brief))


if __name__ == "__main__":
    main()
