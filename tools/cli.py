"""`medagent tool NAME FILE... --json`: run one registered vision tool on studies."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from tools.registry import all_tools, get_tool
from tools.study import StudyError, load_study

app = typer.Typer(no_args_is_help=True, help="Run a vision tool (classifier, segmenter, detector).")


@app.command("list")
def list_tools() -> None:
    """List the registered tools and the modalities they accept."""
    for spec in all_tools():
        typer.echo(f"{spec.name}\t{','.join(spec.modalities)}\t{spec.description}")


def run_tool(
    name: str,
    files: list[Path],
    as_json: bool,
    options: dict[str, object],
) -> None:
    try:
        spec = get_tool(name)
    except KeyError as err:
        typer.echo(str(err), err=True)
        raise typer.Exit(code=2) from err
    failed = 0
    for path in files:
        try:
            study = load_study(path)
        except StudyError as err:
            failed += 1
            typer.echo(json.dumps({"input": path.name, **err.to_dict()}))
            continue
        given = {k: v for k, v in options.items() if v is not None}
        for result in spec.run([study], source_name=path.stem or path.name, **given):
            payload = result.model_dump(mode="json", exclude={"overlay_png_b64"} if not as_json else set())
            if not as_json:
                payload = {k: payload[k] for k in ("tool", "status", "findings", "measurements", "warnings")}
            typer.echo(json.dumps({"input": path.name, **payload}))
    if failed:
        raise typer.Exit(code=1)


def _tool_command(name: str) -> None:
    @app.command(name, help=f"Run the {name} on each file; one JSON object per input.")
    def command(
        files: list[Path] = typer.Argument(..., help="Study files, folders or zips."),
        as_json: bool = typer.Option(False, "--json", help="Full ToolResult JSON (with overlay)."),
        save_masks: Path | None = typer.Option(None, "--save-masks", help="segmenter: write masks here."),
        min_score: float | None = typer.Option(None, "--min-score", help="detector: lowest score kept."),
    ) -> None:
        run_tool(name, files, as_json, {"save_masks": save_masks, "min_score": min_score})


for _name in ("classifier", "segmenter", "detector"):
    _tool_command(_name)
