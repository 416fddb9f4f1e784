"""`medagent ask` and `medagent trace list|show|export|replay`."""

from __future__ import annotations

import json
from contextlib import ExitStack
from pathlib import Path

import typer

from agent.config import AgentConfig, LLMConfig
from agent.export import to_json, to_markdown
from agent.planner import Limits
from agent.trace_store import TraceStore
from tools.study import StudyError, load_study

trace_app = typer.Typer(no_args_is_help=True, help="Review persisted traces.")


def ask(
    file: Path = typer.Argument(..., help="DICOM file, series folder or zip, PNG or JPEG."),
    question: str = typer.Argument(..., help="The question about the study."),
    conversation: str | None = typer.Option(None, "--conversation", help="Conversation id for follow-ups."),
    llm: str | None = typer.Option(None, "--llm", help="OpenAI-compatible base URL (e.g. vLLM's /v1)."),
    model: str | None = typer.Option(None, "--model", help="Model name served at --llm."),
    llm_timeout: float = typer.Option(30.0, "--llm-timeout", help="Seconds per model request."),
    tool_choice: str = typer.Option("required", "--tool-choice", help="required | auto | none"),
    llm_sections: str = typer.Option(
        "findings,impression,recommendations,limitations", "--llm-sections", help="Sections the model writes."
    ),
    embedded: bool = typer.Option(
        False, "--embedded", help="Start the embedded vLLM (scripts/setup_llm.sh) for this run."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    sr: Path | None = typer.Option(None, "--sr", help="Also write a DICOM Comprehensive 3D SR here."),
    max_steps: int = typer.Option(6, "--max-steps"),
    tool_timeout: float = typer.Option(60.0, "--tool-timeout"),
    budget: float = typer.Option(120.0, "--budget", help="Total seconds for the question."),
) -> None:
    """Answer a question about a study with a cited, verified report."""
    from agent.orchestrator import Agent

    if (llm is None) != (model is None):
        raise typer.BadParameter("--llm and --model go together")
    if embedded and llm:
        raise typer.BadParameter("--embedded starts its own server: leave out --llm")
    try:
        study = load_study(file)
    except StudyError as err:
        typer.echo(json.dumps({"input": file.name, **err.to_dict()}))
        raise typer.Exit(code=1) from err
    limits = Limits(max_steps=max_steps, tool_timeout_s=tool_timeout, total_budget_s=budget)
    with ExitStack() as stack:
        if embedded:
            from agent.embedded_llm import EmbeddedLLMServer

            server = stack.enter_context(EmbeddedLLMServer())
            llm, model = server.base_url, server.model
        llm_config = (
            LLMConfig(
                base_url=llm,
                model=model,
                timeout_s=llm_timeout,
                tool_choice=tool_choice,
                sections=llm_sections.split(","),
            )
            if llm
            else None
        )
        report = Agent(AgentConfig(limits=limits, llm=llm_config)).ask(study, question, conversation_id=conversation)
    if sr is not None:
        from agent.sr import write_sr

        write_sr(report, study, sr)
    if as_json:
        typer.echo(json.dumps(to_json(report), indent=2))
    else:
        typer.echo(to_markdown(report))
        typer.echo(f"conversation: {report.conversation_id}")


@trace_app.command("list")
def trace_list(limit: int = typer.Option(20, help="Most recent traces to list.")) -> None:
    for row in TraceStore().list_traces(limit):
        typer.echo(json.dumps(row))


@trace_app.command("show")
def trace_show(trace_id: str) -> None:
    trace = _get(trace_id)
    typer.echo(f"trace {trace.id} conversation {trace.conversation_id} total {trace.total_ms:.0f} ms")
    typer.echo(f"question: {json.dumps(trace.question)}")
    for step in trace.steps:
        keys = {k: v for k, v in step.data.items() if k not in ("result", "decisions", "steps")}
        head = f"{step.index:>2} {step.kind:<13} {step.name:<12} {step.duration_ms:8.1f} ms"
        typer.echo(f"{head} {json.dumps(keys)[:200]}")
    if trace.report:
        typer.echo(to_markdown(trace.report))


@trace_app.command("export")
def trace_export(trace_id: str, out: Path | None = typer.Option(None, "--out", "-o")) -> None:
    text = _get(trace_id).model_dump_json(indent=2)
    if out:
        out.write_text(text)
    else:
        typer.echo(text)


@trace_app.command("replay")
def trace_replay(trace_id: str) -> None:
    """Re-write and re-verify the report from the recorded evidence; exit 1 when it differs."""
    from agent.orchestrator import replay

    result = replay(_get(trace_id))
    typer.echo(json.dumps({k: v for k, v in result.items() if k != "report"}))
    if not result["identical"]:
        raise typer.Exit(code=1)


def _get(trace_id: str):
    try:
        return TraceStore().get_trace(trace_id)
    except KeyError as err:
        typer.echo(str(err), err=True)
        raise typer.Exit(code=2) from err
