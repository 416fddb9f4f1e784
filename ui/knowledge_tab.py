"""The maintainer's view: sources with counts and versions, add (validated), remove, rebuild, search."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gradio as gr

from knowledge.models import SourceValidationError

log = logging.getLogger(__name__)
SOURCE_COLUMNS = ["source_id", "name", "version", "license", "facts"]
HIT_COLUMNS = ["fact", "score", "title", "text", "source", "licence", "locator", "via"]


def source_rows(kb: Any) -> list[list[Any]]:
    return [[s.get(c, "") for c in SOURCE_COLUMNS] for s in kb.sources()]


def add_source(kb: Any, upload: str | None, name: str, licence: str) -> tuple[str, list[list[Any]]]:
    if not upload:
        return "Choose a file (Markdown, CSV, JSONL or OBO) to add.", source_rows(kb)
    if not name.strip():
        return "Give the source a name.", source_rows(kb)
    try:
        added = kb.add_file(Path(upload), name=name.strip(), license=licence.strip() or None)
    except SourceValidationError as err:
        lines = "\n".join(f"- line {issue.line}: {issue.message}" for issue in err.issues[:50])
        return f"**The file was not added:**\n{lines}", source_rows(kb)
    return f"Added {added} fact(s) from '{name.strip()}'; they are searchable now.", source_rows(kb)


def remove_source(kb: Any, name: str) -> tuple[str, list[list[Any]]]:
    try:
        removed = kb.remove(name.strip())
    except KeyError as err:
        return str(err), source_rows(kb)
    return f"Removed '{name.strip()}' ({removed} fact(s)).", source_rows(kb)


def search(kb: Any, query: str, k: int) -> list[list[Any]]:
    if not query.strip():
        return []
    return [[h.fact_id, round(h.score, 3), h.title or "", h.text[:300], h.source_name, h.license or "", h.locator,
             h.via_edge or ""] for h in kb.search(query.strip(), k=int(k))]


def build(open_kb: Callable[[], Any]) -> None:
    gr.Markdown("Knowledge sources cited as `K*` evidence. Added files are validated; errors show their line.")
    sources = gr.Dataframe(headers=SOURCE_COLUMNS, label="Sources", interactive=False, elem_id="kb-sources")
    refresh = gr.Button("Refresh sources")
    with gr.Row():
        upload = gr.File(label="Source file (.md, .csv, .jsonl, .obo)", type="filepath")
        with gr.Column():
            name = gr.Textbox(label="Name")
            licence = gr.Textbox(label="Licence")
            add = gr.Button("Add source", elem_id="kb-add")
    with gr.Row():
        remove_name = gr.Textbox(label="Source to remove (name)")
        remove = gr.Button("Remove")
        rebuild = gr.Button("Rebuild index")
    status = gr.Markdown(elem_id="kb-status")
    with gr.Row():
        query = gr.Textbox(label="Search", scale=4, elem_id="kb-query")
        k = gr.Slider(1, 20, value=5, step=1, label="k", scale=1)
    hits = gr.Dataframe(headers=HIT_COLUMNS, label="Hits with provenance", interactive=False, elem_id="kb-hits")
    refresh.click(lambda: source_rows(open_kb()), None, sources)
    add.click(lambda f, n, lic: add_source(open_kb(), f, n, lic), [upload, name, licence], [status, sources])
    remove.click(lambda n: remove_source(open_kb(), n), remove_name, [status, sources])
    rebuild.click(lambda: (open_kb().rebuild(), "Index rebuilt.")[1], None, status)
    query.submit(lambda q, n: search(open_kb(), q, n), [query, k], hits)
