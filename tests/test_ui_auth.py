"""Authentication beyond loopback: a users file of PBKDF2 hashes and a callback, checked by a real Gradio server."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from agent.cli import app as cli
from ui.app import build_app, launch
from ui.auth import AuthConfigError, hash_password, read_users, resolve_auth, verify_password


def test_hash_round_trip_and_salt() -> None:
    encoded = hash_password("s3cret", iterations=1000)
    assert encoded.startswith("pbkdf2_sha256$1000$") and "s3cret" not in encoded
    assert verify_password("s3cret", encoded) and not verify_password("s3cret ", encoded)
    assert hash_password("s3cret", iterations=1000) != encoded  # a fresh salt each time


def test_users_file_errors_name_the_line(tmp_path: Path) -> None:
    path = tmp_path / "users"
    path.write_text(f"# clinicians\nana:{hash_password('x', iterations=1000)}\nbob:plaintext\n")
    with pytest.raises(AuthConfigError, match=r"users:3: user 'bob' has no pbkdf2_sha256 hash"):
        read_users(path)
    path.write_text(f"ana:{hash_password('x', iterations=1000)}\nana:{hash_password('y', iterations=1000)}\n")
    with pytest.raises(AuthConfigError, match="users:2: user 'ana' appears twice"):
        read_users(path)
    with pytest.raises(AuthConfigError, match="one of"):
        resolve_auth(auth="a:b", users_file=path)


def test_cli_adds_users_without_plain_passwords(tmp_path: Path) -> None:
    path = tmp_path / "users"
    runner = CliRunner()
    for name, password in (("ana", "first pass"), ("bob", "other"), ("ana", "changed")):
        out = runner.invoke(cli, ["users", "add", name, "--file", str(path)], input=f"{password}\n{password}\n")
        assert out.exit_code == 0, out.output
    users = read_users(path)
    assert sorted(users) == ["ana", "bob"] and "changed" not in path.read_text()
    assert verify_password("changed", users["ana"]) and not verify_password("first pass", users["ana"])
    assert path.stat().st_mode & 0o077 == 0
    assert runner.invoke(cli, ["users", "check", "--file", str(path)]).exit_code == 0


def allow_only_reviewer(user: str, password: str) -> bool:
    return user == "reviewer" and password == "from-ldap"


def _login(url: str, user: str, password: str) -> int:
    return httpx.post(f"{url}login", data={"username": user, "password": password}, timeout=30).status_code


@pytest.mark.parametrize("way", ["users_file", "callback"])
def test_server_lets_in_only_valid_users(tmp_path: Path, way: str) -> None:
    path = tmp_path / "users"
    path.write_text(f"ana:{hash_password('right', iterations=1000)}\n")
    if way == "users_file":
        auth, good, bad = resolve_auth(users_file=path), ("ana", "right"), ("ana", "wrong")
    else:
        auth = resolve_auth(auth_callback=f"{__name__}:allow_only_reviewer")
        good, bad = ("reviewer", "from-ldap"), ("ana", "right")
    demo = build_app()
    _, url, _ = demo.launch(server_name="127.0.0.1", server_port=None, prevent_thread_lock=True, auth=auth)
    try:
        assert httpx.get(f"{url}config", timeout=30).status_code == 401  # nothing without a login
        assert _login(url, *bad) == 400
        assert _login(url, *good) == 200
    finally:
        demo.close()


def test_launch_refuses_a_broken_users_file_and_public_bind_without_auth(tmp_path: Path) -> None:
    broken = tmp_path / "users"
    broken.write_text("ana:plaintext\n")
    with pytest.raises(SystemExit, match="users:1"):
        launch(host="0.0.0.0", users_file=broken)
    with pytest.raises(SystemExit, match="without authentication"):
        launch(host="0.0.0.0")
