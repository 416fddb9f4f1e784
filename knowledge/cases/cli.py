"""`medagent cases ...`: similar prior cases by image or text, library stats, import."""

from __future__ import annotations

import json
from pathlib import Path

import typer

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Similar prior cases (case library).")
LibraryOpt = typer.Option(None, "--library", help="Case library folder (default: $MEDAGENT_CASES or "
                                                  "$MEDAGENT_HOME/cases, seeded from the shipped demo library).")
EmbedderOpt = typer.Option(None, "--embedder", help="clip | classifier | openclip:/local/folder "
                                                    "(default: $MEDAGENT_CASE_EMBEDDER, else the evaluated best).")


def _library(path: Path | None, embedder: str | None = None):  # type: ignore[no-untyped-def]
    from knowledge.cases.library import CaseLibrary, default_embedders

    if embedder:
        import os

        os.environ["MEDAGENT_CASE_EMBEDDER"] = embedder
    return CaseLibrary.open(path, embedders=default_embedders())


def _print(hits, as_json: bool) -> None:  # type: ignore[no-untyped-def]
    if as_json:
        typer.echo(json.dumps([h.model_dump(mode="json") for h in hits], indent=2))
        return
    for h in hits:
        typer.echo(f"C{h.rank} [{h.similarity:.3f}] {h.case_id} {h.diagnosis} ({h.source}; {h.license})")
        if h.report_excerpt:
            typer.echo(f"    {h.report_excerpt}")


@app.command()
def similar(
    file: Path = typer.Argument(..., help="DICOM file, series folder or zip, PNG or JPEG."),
    k: int = typer.Option(5, "--k", min=1, max=100),
    as_json: bool = typer.Option(False, "--json"),
    library: Path | None = LibraryOpt,
    embedder: str | None = EmbedderOpt,
) -> None:
    """The k most similar prior cases to a study (loaded and de-identified by tools.study)."""
    from tools.study import StudyError, load_study

    try:
        study = load_study(file)
    except StudyError as err:
        typer.echo(f"{file.name}: {err.message}", err=True)
        raise typer.Exit(code=2) from err
    from knowledge.cases.library import NotSearchable

    try:
        hits = _library(library, embedder).similar_cases(study, k=k)
    except NotSearchable as err:
        typer.echo(f"{file.name}: {err.reason}", err=True)
        raise typer.Exit(code=2) from err
    _print(hits, as_json)


@app.command()
def search(
    text: str = typer.Argument(..., help='e.g. "right lower lobe consolidation"'),
    k: int = typer.Option(5, "--k", min=1, max=100),
    as_json: bool = typer.Option(False, "--json"),
    library: Path | None = LibraryOpt,
) -> None:
    """Text-to-image search (needs the CLIP-style model, or an open_clip model)."""
    try:
        hits = _library(library).search_text(text, k=k)
    except RuntimeError as err:
        typer.echo(str(err), err=True)
        raise typer.Exit(code=2) from err
    _print(hits, as_json)


@app.command()
def stats(library: Path | None = LibraryOpt) -> None:
    """Case counts per source/licence and diagnosis, embedders and index sizes (JSON)."""
    typer.echo(json.dumps(_library(library).stats(), indent=2))


@app.command("import")
def import_(
    path: Path = typer.Argument(..., help="Folder with images and one CSV (or the CSV itself)."),
    library: Path | None = LibraryOpt,
) -> None:
    """Import a folder of DICOM/PNG/JPEG files described by a CSV: file,diagnosis,labels,report,source,license
    (optional: patient, case_id). Bad rows are listed with their line numbers; nothing is added until all are valid."""
    from knowledge.cases.importer import CaseImportError, import_cases

    lib = _library(library)
    try:
        result = import_cases(lib, path, progress=True)
    except CaseImportError as err:
        typer.echo(f"invalid case import {err.path}:", err=True)
        for issue in err.issues:
            typer.echo(f"  line {issue.line}: {issue.message}", err=True)
        raise typer.Exit(code=2) from err
    except FileNotFoundError as err:
        typer.echo(f"no such file or folder: {err}", err=True)
        raise typer.Exit(code=2) from err
    typer.echo(json.dumps(result))
