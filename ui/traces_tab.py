"""The reviewer's view: list, filter and open traces; export one as JSON; replay it."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import gradio as gr

from agent.trace_store import TraceStore

COLUMNS = ["id", "created_at", "study_id", "question", "writer", "total_ms", "conversation_id"]


def rows(store: TraceStore, query: str = "") -> list[list[Any]]:
    needle = query.strip().lower()
    out = []
    for item in store.list_traces(limit=500):
        if needle and needle not in json.dumps(item).lower():
            continue
        out.append([str(item["id"])[:12], item["created_at"], str(item["study_id"])[:12], item["question"],
                    item["writer"], round(float(item["total_ms"] or 0)), item["conversation_id"]])
    return out


def show(store: TraceStore, trace_id: str) -> tuple[dict[str, Any], list[list[Any]]]:
    if not trace_id.strip():
        return {}, []
    try:
        trace = store.get_trace(trace_id.strip())
    except KeyError as err:
        return {"error": str(err)}, []
    steps = [[s.index, s.kind, s.name, round(s.duration_ms, 1), json.dumps(s.data)[:300]] for s in trace.steps]
    return json.loads(trace.model_dump_json()), steps


def export(store: TraceStore, trace_id: str) -> str | None:
    try:
        trace = store.get_trace(trace_id.strip())
    except KeyError:
        return None
    path = Path(tempfile.mkdtemp(prefix="medagent-trace-")) / f"trace-{trace.id}.json"
    path.write_text(trace.model_dump_json(indent=2))
    return str(path)


def replay(store: TraceStore, trace_id: str) -> dict[str, Any]:
    from agent.orchestrator import replay as replay_trace

    try:
        return replay_trace(store.get_trace(trace_id.strip()))
    except KeyError as err:
        return {"error": str(err)}


def _selected_id(evt: gr.SelectData) -> str:
    return str(evt.row_value[0]) if evt.row_value else ""


def build(store: TraceStore) -> None:
    with gr.Row():
        query = gr.Textbox(label="Filter (question, study, id, writer)", scale=3)
        refresh = gr.Button("Refresh", scale=1)
    table = gr.Dataframe(  # a callable value is re-read on every page load
        value=lambda: rows(store), headers=COLUMNS, label="Conversations", interactive=False, elem_id="trace-list"
    )
    trace_id = gr.Textbox(label="Trace id (or its first characters)", elem_id="trace-id")
    with gr.Row():
        open_button = gr.Button("Show steps", elem_id="show-trace")
        export_button = gr.Button("Export JSON")
        replay_button = gr.Button("Replay")
    steps = gr.Dataframe(
        headers=["#", "kind", "name", "ms", "data"], label="Steps", interactive=False, elem_id="trace-steps"
    )
    detail = gr.JSON(label="Trace")
    exported = gr.File(label="Exported trace")
    replayed = gr.JSON(label="Replay result")
    refresh.click(lambda q: rows(store, q), query, table)
    query.submit(lambda q: rows(store, q), query, table)
    table.select(_selected_id, None, trace_id)
    open_button.click(lambda t: show(store, t), trace_id, [detail, steps])
    export_button.click(lambda t: export(store, t), trace_id, exported)
    replay_button.click(lambda t: replay(store, t), trace_id, replayed)
