"""`medagent`: the command line. Each area adds its own sub-command group here."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import typer

from agent.commands import ask as ask_command
from agent.commands import trace_app
from agent.logging_setup import configure_logging
from knowledge.cases.cli import app as cases_app
from knowledge.cli import app as knowledge_app
from tools.cli import app as tool_app
from tools.study import StudyError, load_study, write_preview
from ui.users_cli import app as users_app

app = typer.Typer(no_args_is_help=True, add_completion=False, help="An imaging agent that shows its work.")
log = logging.getLogger("medagent")
app.add_typer(tool_app, name="tool")
app.add_typer(trace_app, name="trace")
app.add_typer(knowledge_app, name="knowledge")
app.add_typer(cases_app, name="cases")
app.add_typer(users_app, name="users")
app.command("ask")(ask_command)


@app.callback()
def main(verbose: bool = typer.Option(False, "--verbose", "-v", help="Debug logging.")) -> None:
    configure_logging(verbose)


@app.command()
def inspect(
    files: list[Path] = typer.Argument(..., help="DICOM files, series folders or zips, PNG or JPEG images."),
    out: Path = typer.Option(Path("previews"), "--out", "-o", help="Folder for the PNG previews."),
    series: str | None = typer.Option(None, help="Series id to load when a folder or zip holds several."),
) -> None:
    """Print each study's de-identified metadata as JSON and write a normalised PNG preview."""
    failed = 0
    for path in files:
        try:
            study = load_study(path, series=series)
        except StudyError as err:
            failed += 1
            typer.echo(json.dumps({"input": path.name, **err.to_dict()}))
            continue
        preview = write_preview(study, out / f"{path.stem or 'study'}.png")
        typer.echo(json.dumps({"input": path.name, "preview": str(preview), **study.summary()}))
    if failed:
        raise typer.Exit(code=1)


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="Bind address; anything but loopback requires authentication."),
    port: int = typer.Option(7860),
    auth: str | None = typer.Option(None, help="user:password (visible to other local users: prefer --users-file)."),
    users_file: Path | None = typer.Option(None, "--users-file", help="Users file of PBKDF2 hashes (`medagent users "
                                           "add`)."),
    auth_callback: str | None = typer.Option(None, "--auth-callback", help="module:function(user, password) -> bool."),
    llm: str | None = typer.Option(None, "--llm", help="OpenAI-compatible URL of a production vLLM (its /v1)."),
    model: str | None = typer.Option(None, "--model", help="Model name served at --llm."),
    templates_only: bool = typer.Option(False, "--templates-only", help="No language model: templated reports."),
) -> None:
    """Start the Gradio app: on the embedded vLLM CPU server unless --llm points elsewhere."""
    from agent.config import LLMConfig
    from agent.embedded_llm import EmbeddedLLMServer
    from ui.app import launch

    if (llm is None) != (model is None):
        raise typer.BadParameter("--llm and --model go together")
    access = {"host": host, "port": port, "auth": auth, "users_file": users_file, "auth_callback": auth_callback}
    if llm or templates_only:
        launch(**access, llm=LLMConfig(base_url=llm, model=model) if llm else None)
        return
    server = EmbeddedLLMServer()
    reason = server.settings.missing()
    if reason:
        log.warning("embedded language model unavailable (%s): reports are written from templates", reason)
        launch(**access, llm=None)
        return
    with server:
        launch(**access, llm=LLMConfig(base_url=server.base_url, model=server.model))
