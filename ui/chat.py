"""The clinician's chat turn: load an uploaded study, run the agent in a worker, stream its steps."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from agent.contracts import Report, TraceStep
from agent.export import to_markdown
from tools.study import StudyError, load_study
from ui.session import ChatSession

log = logging.getLogger(__name__)
EMPTY_QUESTION = "Please type a question about the study (for example: “Is the heart enlarged?”)."
NO_STUDY = ("Please upload a study first: a DICOM file, the files or a zip of a DICOM series, "
            "or a PNG/JPEG image.")
STEP_TITLES = {"tool_call": "🔧 Tool", "retrieval": "📚 Retrieval", "plan": "🧭 Plan", "verification": "✅ Verifier",
               "write": "📝 Report writer", "llm_request": "🤖 Model request", "llm_response": "🤖 Model response",
               "llm_fallback": "⚠️ Model fallback", "memory": "🧠 Memory"}

AskFunction = Callable[..., Report]


def _assistant(content: str, **metadata: Any) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if metadata:
        message["metadata"] = metadata
    return message


def _step_message(step: TraceStep) -> dict[str, Any]:
    detail = {k: v for k, v in step.data.items() if k not in ("result", "prompt", "messages")}
    log_line = ", ".join(f"{k}={v}" for k, v in list(detail.items())[:6])[:400]
    title = f"{STEP_TITLES.get(step.kind, step.kind)}: {step.name}"
    return _assistant(log_line or step.name, title=title, status="done", duration=round(step.duration_ms / 1000, 2),
                      log=f"{step.duration_ms:.0f} ms")


def turn(message: dict[str, Any], session: ChatSession, ask: AskFunction) -> Iterator[tuple[list[dict], ChatSession]]:
    """One user turn; yields (chat history, session) as the work progresses."""
    text = (message or {}).get("text", "").strip()
    files = (message or {}).get("files") or []
    history = session.history
    history.append({"role": "user", "content": text or "(upload)"})
    if files:
        paths = [f if isinstance(f, str) else f.get("path") for f in files]
        try:
            session.study = load_study(paths[0] if len(paths) == 1 else paths)
        except StudyError as err:
            history.append(_assistant(f"I could not load this upload: {err.message}"))
            yield history, session
            return
        name = str(paths[0]).rsplit("/", 1)[-1] if len(paths) == 1 else f"{len(paths)} files"
        session.study_name, session.conversation_id, session.report = name, None, None
        notes = "".join(f"\n- {w}" for w in session.study.warnings)
        history.append(_assistant(f"Loaded a {session.study.modality} study ({session.study.shape[1]}×"
                                  f"{session.study.shape[2]} px, {session.study.shape[0]} frame(s)).{notes}"))
        yield history, session
    if not text:
        if not files:
            history.append(_assistant(EMPTY_QUESTION))
        yield history, session
        return
    if session.study is None:
        history.append(_assistant(NO_STUDY))
        yield history, session
        return
    yield from _run_agent(text, session, ask)


def _run_agent(question: str, session: ChatSession, ask: AskFunction) -> Iterator[tuple[list[dict], ChatSession]]:
    history = session.history
    steps: queue.Queue[TraceStep] = queue.Queue()
    outcome: dict[str, Any] = {}

    def work() -> None:
        try:
            outcome["report"] = ask(session.study, question, conversation_id=session.conversation_id,
                                    on_step=steps.put)
        except Exception as exc:  # the clinician gets a message, the log gets the trace-back
            log.exception("agent failed")
            outcome["error"] = exc

    worker = threading.Thread(target=work, daemon=True)
    started = time.perf_counter()
    worker.start()
    pending = _assistant("Reading the study…", title="⏳ Working", status="pending")
    history.append(pending)
    while worker.is_alive() or not steps.empty():
        try:
            step = steps.get(timeout=0.25)
        except queue.Empty:
            pending["metadata"]["log"] = f"{time.perf_counter() - started:.1f} s"
            yield history, session
            continue
        history.insert(len(history) - 1, _step_message(step))
        yield history, session
    history.remove(pending)
    if "error" in outcome:
        history.append(_assistant("The analysis failed unexpectedly; nothing was concluded. Please try again."))
        yield history, session
        return
    report: Report = outcome["report"]
    session.report, session.conversation_id = report, report.conversation_id
    history.append(_assistant(_answer_text(report)))
    yield history, session


def _answer_text(report: Report) -> str:
    lines = [f"{s.text} [{', '.join(s.evidence_ids)}]" for s in report.impression or report.findings]
    lines += [f"Limitation: {s.text} [{', '.join(s.evidence_ids)}]" for s in report.limitations[:3]]
    return "\n\n".join(lines) + "\n\nThe full report with its evidence is in the report panel."


def report_markdown(report: Report | None) -> str:
    return to_markdown(report) if report else ""
