"""The Gradio app: clinician chat with viewer and cited report, reviewer traces, maintainer knowledge."""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path
from typing import Any

import gradio as gr

from agent.config import AgentConfig, LLMConfig
from agent.export import to_json
from agent.retrieval import open_knowledge
from tools.study.limits import StudyLimits
from ui import knowledge_tab, traces_tab
from ui.auth import AuthConfigError, resolve_auth
from ui.chat import report_markdown, turn
from ui.overlays import layers, measurement_rows
from ui.report_view import report_html
from ui.session import ChatSession
from ui.viewer import AS_STORED, presets_for, render

log = logging.getLogger(__name__)
LOOPBACK = ("127.0.0.1", "localhost", "::1")
TOOL_LAYERS = ["segmenter", "detector", "classifier"]
CSS = ".evidence{border:1px solid #ccc;border-radius:6px;padding:4px 8px;margin:4px 0}"
CSS += ".evidence:target{outline:3px solid #f90}.overlay{max-width:320px}"
CSS += ".cite{font-weight:600;text-decoration:none}.warn{color:#a40}"


def _view(session: ChatSession, preset: str, enabled: list[str]) -> tuple[Any, list[list[str]], dict[str, Any]]:
    if session.study is None:
        return None, [], {}
    image = render(session.study, preset if preset in presets_for(session.study) else AS_STORED, max_side=4096)
    results = session.results()
    return (image, layers(results, set(enabled))), measurement_rows(results), session.study.summary()


def _downloads(session: ChatSession) -> list[str]:
    if session.report is None or session.study is None:
        return []
    folder = Path(tempfile.mkdtemp(prefix="medagent-report-"))
    stem = f"report-{session.report.trace_id or 'latest'}"
    (folder / f"{stem}.md").write_text(report_markdown(session.report))
    (folder / f"{stem}.json").write_text(json.dumps(to_json(session.report), indent=2))
    files = [str(folder / f"{stem}.md"), str(folder / f"{stem}.json")]
    try:
        from agent.sr import write_sr

        write_sr(session.report, session.study, folder / f"{stem}-sr.dcm")
        files.append(str(folder / f"{stem}-sr.dcm"))
    except Exception:  # SR export must not cost the clinician the other downloads
        log.exception("DICOM SR export failed")
    return files


def build_app(config: AgentConfig | None = None) -> gr.Blocks:
    from agent.orchestrator import Agent

    agent = Agent(config or AgentConfig())

    def ask(study, question, conversation_id=None, on_step=None):  # type: ignore[no-untyped-def]
        return agent.ask(study, question, conversation_id=conversation_id, on_step=on_step)

    def respond(message, state, preset, enabled):  # type: ignore[no-untyped-def]
        session = state
        shown = session.study.id if session.study else None
        unchanged = (gr.update(), gr.update(), gr.update())
        for history, session in turn(message, state, ask):
            # Re-send the (large) viewer image only when the study changed: every send re-writes gradio's
            # cached file, and rewriting it while a client downloads it truncated responses under load.
            current = session.study.id if session.study else None
            view = _view(session, preset, enabled) if current != shown else unchanged
            shown = current
            yield (history, session, *view, gr.update(), gr.update(), None)
        html = report_html(session.report) if session.report else ""
        presets = gr.update(choices=presets_for(session.study), value=preset) if session.study else gr.update()
        yield (session.history, session, *_view(session, preset, enabled), html, presets, _downloads(session) or None)

    with gr.Blocks(title="medagent") as demo:
        gr.Markdown("# medagent\n**Decision support for a qualified reader, never an autonomous diagnosis.**")
        session = gr.State(ChatSession())
        with gr.Tab("Clinician"):
            with gr.Row():
                with gr.Column(scale=3):
                    chatbot = gr.Chatbot(label="Conversation", height=520, elem_id="chat")
                    box = gr.MultimodalTextbox(
                        placeholder="Upload a study (a DICOM file, the files or a zip of a series, PNG, JPEG) "
                        "and ask a question",
                        file_count="multiple", elem_id="ask-box",
                    )
                with gr.Column(scale=2):
                    viewer = gr.AnnotatedImage(label="Study with overlays", elem_id="viewer")
                    preset = gr.Dropdown([AS_STORED], value=AS_STORED, label="Window / level")
                    enabled = gr.CheckboxGroup(TOOL_LAYERS, value=TOOL_LAYERS, label="Overlay layers")
                    measurements = gr.Dataframe(
                        headers=["evidence", "tool", "structure", "measurement", "value", "unit"],
                        label="Measurements", interactive=False,
                    )
                    with gr.Accordion("De-identified header", open=False):
                        header = gr.JSON()
            report = gr.HTML(elem_id="report")
            downloads = gr.File(label="Report downloads (Markdown, JSON, DICOM SR)", file_count="multiple")
            outputs = [chatbot, session, viewer, measurements, header, report, preset, downloads]
            box.submit(respond, [box, session, preset, enabled], outputs, concurrency_limit=2).then(
                lambda: gr.MultimodalTextbox(value=None), None, box
            )
            for control in (preset, enabled):
                control.change(_view, [session, preset, enabled], [viewer, measurements, header])
        with gr.Tab("Traces"):
            traces_tab.build(agent.store)
        with gr.Tab("Knowledge"):
            knowledge_tab.build(lambda: open_knowledge(agent.config.knowledge_path))
    return demo


def launch(host: str = "127.0.0.1", port: int = 7860, auth: str | None = None, llm: LLMConfig | None = None,
           users_file: Path | None = None, auth_callback: str | None = None) -> None:
    try:
        credentials = resolve_auth(auth, users_file, auth_callback)
    except AuthConfigError as err:
        raise SystemExit(f"Cannot start: {err}") from err
    if host not in LOOPBACK and credentials is None:
        raise SystemExit("Refusing to bind beyond loopback without authentication: give --users-file, "
                         "--auth-callback or --auth user:password.")
    limit_mib = StudyLimits().max_bytes // (1024 * 1024)
    app = build_app(AgentConfig(llm=llm))
    app.queue(default_concurrency_limit=2).launch(
        server_name=host, server_port=port, auth=credentials, max_file_size=f"{limit_mib}mb", css=CSS
    )
