"""The Gradio app. For now: upload a study and see its de-identified summary and preview."""

from __future__ import annotations

import logging
from typing import Any

import gradio as gr

from tools.study import StudyError, load_study, preview_image
from tools.study.limits import StudyLimits

log = logging.getLogger(__name__)
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def describe_upload(path: str | None) -> tuple[Any, dict[str, Any], str]:
    if not path:
        return None, {}, "Upload a DICOM file, a zip of a DICOM series, or a PNG/JPEG image."
    try:
        study = load_study(path)
    except StudyError as err:
        return None, err.to_dict(), f"**Could not load the study:** {err.message}"
    notes = "\n".join(f"- {w}" for w in study.warnings) or "- none"
    status = f"Loaded study `{study.id[:12]}`.\n\nWarnings:\n{notes}"
    return preview_image(study, max_side=1024), study.summary(), status


def build_app() -> gr.Blocks:
    with gr.Blocks(title="medagent") as demo:
        gr.Markdown("# medagent\nDecision support for a qualified reader, never an autonomous diagnosis.")
        with gr.Row():
            upload = gr.File(label="Study (DICOM, zip of a series, PNG, JPEG)", type="filepath")
            with gr.Column():
                image = gr.Image(label="Preview", type="pil", interactive=False)
                status = gr.Markdown()
        header = gr.JSON(label="De-identified header")
        upload.change(describe_upload, inputs=upload, outputs=[image, header, status])
    return demo


def launch(host: str = "127.0.0.1", port: int = 7860, auth: str | None = None) -> None:
    if host not in LOOPBACK and not auth:
        raise SystemExit("Refusing to bind beyond loopback without --auth user:password.")
    credentials = tuple(auth.split(":", 1)) if auth else None
    limit_mib = StudyLimits().max_bytes // (1024 * 1024)
    build_app().queue(default_concurrency_limit=2).launch(
        server_name=host, server_port=port, auth=credentials, max_file_size=f"{limit_mib}mb"
    )
