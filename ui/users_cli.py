"""`medagent users add NAME --file PATH`: the users file that `medagent serve --users-file` reads."""

from __future__ import annotations

from pathlib import Path

import typer

from ui.auth import AuthConfigError, add_user, read_users

app = typer.Typer(no_args_is_help=True, help="Manage the app's users file (salted PBKDF2 hashes).")


@app.command("add")
def add(
    name: str = typer.Argument(..., help="User name."),
    file: Path = typer.Option(..., "--file", help="Users file (created if missing, mode 600)."),
    password: str = typer.Option(..., prompt=True, hide_input=True, confirmation_prompt=True,
                                 help="Prompted when not given (avoid passing it on the command line)."),
) -> None:
    """Add a user, or replace their password."""
    try:
        add_user(file, name, password)
        count = len(read_users(file))
    except AuthConfigError as err:
        typer.echo(str(err), err=True)
        raise typer.Exit(code=2) from err
    typer.echo(f"{name} saved in {file} ({count} user(s))")


@app.command("check")
def check(file: Path = typer.Option(..., "--file", help="Users file to validate.")) -> None:
    """Validate a users file; errors name the line."""
    try:
        users = read_users(file)
    except AuthConfigError as err:
        typer.echo(str(err), err=True)
        raise typer.Exit(code=2) from err
    typer.echo(f"{file}: {len(users)} user(s): {', '.join(sorted(users))}")
