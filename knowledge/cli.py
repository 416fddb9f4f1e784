"""`medagent knowledge ...`: the maintainers' commands."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from knowledge.models import SourceValidationError

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Knowledge sources, index and search.")
StoreOpt = typer.Option(None, "--store", help="Knowledge folder (default: $MEDAGENT_HOME/knowledge).")


def _kb(store: Path | None):
    from knowledge.api import KnowledgeBase

    return KnowledgeBase.open(store)


@app.command()
def add(
    path: Path = typer.Argument(..., help="Markdown (one fact per '## ' section), CSV, JSONL, OBO or MedQuAD JSONL."),
    name: str = typer.Option(..., "--name", help="Source name (also used to remove it)."),
    license: str | None = typer.Option(None, "--license"),
    version: str | None = typer.Option(None, "--version"),
    store: Path | None = StoreOpt,
) -> None:
    """Validate a file and add its facts; they are searchable as soon as this returns."""
    kb = _kb(store)
    try:
        n = kb.add_file(path, name=name, license=license, version=version, progress=True)
    except SourceValidationError as err:
        typer.echo(f"invalid source {err.path}:", err=True)
        for issue in err.issues:
            typer.echo(f"  line {issue.line}: {issue.message}", err=True)
        raise typer.Exit(code=2) from err
    except FileNotFoundError as err:
        typer.echo(f"no such file: {err}", err=True)
        raise typer.Exit(code=2) from err
    typer.echo(json.dumps({"added": n, "source": name, "facts_total": kb.store.count_facts()}))


@app.command("list")
def list_sources(store: Path | None = StoreOpt) -> None:
    """Sources with their fact counts, as JSON lines."""
    for row in _kb(store).sources():
        typer.echo(json.dumps(row))


@app.command()
def remove(name: str = typer.Argument(...), store: Path | None = StoreOpt) -> None:
    """Remove a source (by name or id) and its facts and edges."""
    try:
        n = _kb(store).remove(name)
    except KeyError as err:
        typer.echo(str(err), err=True)
        raise typer.Exit(code=1) from err
    typer.echo(json.dumps({"removed": n, "source": name}))


@app.command()
def rebuild(
    corpus: str | None = typer.Option(None, help="Rebuild the built-in corpus: curated | default | full."),
    kind: str | None = typer.Option(None, help="FAISS index kind: flat | hnsw (default: by size)."),
    store: Path | None = StoreOpt,
) -> None:
    """Re-create the FAISS index from stored vectors, or rebuild the built-in sources (full = all ~160k entries)."""
    kb = _kb(store)
    kb.rebuild(corpus=corpus, progress=True, kind=kind)
    typer.echo(json.dumps(kb.stats()))


@app.command()
def search(
    query: str = typer.Argument(...),
    k: int = typer.Option(5, "--k"),
    mode: str = typer.Option("hybrid", help="hybrid | lexical | dense"),
    as_json: bool = typer.Option(False, "--json"),
    store: Path | None = StoreOpt,
) -> None:
    """Hybrid search with graph expansion; prints hits with provenance."""
    hits = _kb(store).search(query, k=k, mode=mode)  # type: ignore[arg-type]
    if as_json:
        typer.echo(json.dumps([h.model_dump(mode="json") for h in hits], indent=2))
        return
    for i, h in enumerate(hits, start=1):
        via = f" via {h.via_edge}" if h.via_edge else ""
        head = f"K{i} [{h.score:.3f}{via}] {h.title or h.fact_id} ({h.source_name}; {h.locator})"
        typer.echo(f"{head}\n    {h.text[:200]}")


@app.command()
def stats(store: Path | None = StoreOpt) -> None:
    """Counts of facts, edges and sources, and the index manifest."""
    typer.echo(json.dumps(_kb(store).stats(), indent=2))
