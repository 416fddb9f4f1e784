"""Run planned tool calls under a per-tool timeout and a total budget; failures become evidence, not crashes."""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

from agent.planner import Limits, PlannedStep
from agent.vocabulary import AGENT_MADE
from tools.registry import get_tool
from tools.result import ToolResult
from tools.study import Study

log = logging.getLogger(__name__)


class Budget:
    """Wall-clock budget of one question."""

    def __init__(self, total_s: float) -> None:
        self.total_s = total_s
        self.start = time.monotonic()

    def remaining(self) -> float:
        return max(0.0, self.total_s - (time.monotonic() - self.start))


def failed_result(tool: str, study: Study, reason: str, status: str = "error") -> ToolResult:
    return ToolResult(tool=tool, model_id=AGENT_MADE, study_id=study.id, status=status, warnings=[reason])


def run_step(step: PlannedStep, study: Study, limits: Limits, budget: Budget) -> ToolResult:
    """One tool call; returns an error ToolResult on absence, exception or timeout."""
    if step.skip:
        return failed_result(step.tool, study, step.skip, status="refused")
    if not step.available:
        return failed_result(step.tool, study, f"the {step.tool} tool is not installed (not in the tool registry)")
    timeout = min(limits.tool_timeout_s, budget.remaining())
    if timeout <= 0:
        return failed_result(step.tool, study, f"the {step.tool} tool was skipped: the time budget was spent")
    try:
        spec = get_tool(step.tool)
    except KeyError as err:
        return failed_result(step.tool, study, str(err))
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"tool-{step.tool}")
    started = time.perf_counter()
    future = pool.submit(spec.run, [study])
    try:
        results = future.result(timeout=timeout)
    except FutureTimeout:
        log.warning("tool %s timed out after %.1f s", step.tool, timeout)
        return failed_result(step.tool, study, f"the {step.tool} tool timed out after {timeout:.1f} s")
    except Exception as err:  # a tool crash must become a stated limitation
        log.exception("tool %s failed", step.tool)
        return failed_result(step.tool, study, f"the {step.tool} tool failed: {type(err).__name__}")
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    if not results:
        return failed_result(step.tool, study, f"the {step.tool} tool returned no result")
    result = results[0]
    if not result.latency_ms:
        result = result.model_copy(update={"latency_ms": (time.perf_counter() - started) * 1000})
    return result
