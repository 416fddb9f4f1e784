"""Who may open the app when it is bound beyond loopback: a users file of salted PBKDF2 hashes, or a callback.

Users file: one ``user:pbkdf2_sha256$<iterations>$<salt b64>$<hash b64>`` per line; blank lines and ``#`` comments
are ignored. Write lines with ``medagent users add NAME --file PATH`` (never store plain passwords). A callback is
``module:function`` taking (username, password) and returning True to let the user in (e.g. an LDAP bind).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import importlib
import logging
import secrets
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)
SCHEME = "pbkdf2_sha256"
ITERATIONS = 600_000  # OWASP 2023 guidance for PBKDF2-HMAC-SHA256
AuthCallback = Callable[[str, str], bool]


class AuthConfigError(ValueError):
    """A users file or callback that cannot be used; the message names the file and line."""


def hash_password(password: str, iterations: int = ITERATIONS, salt: bytes | None = None) -> str:
    if not password:
        raise AuthConfigError("an empty password is not allowed")
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    return f"{SCHEME}${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def verify_password(password: str, encoded: str) -> bool:
    scheme, iterations, salt, expected = encoded.split("$")
    if scheme != SCHEME:
        return False
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(salt), int(iterations))
    return hmac.compare_digest(digest, base64.b64decode(expected))


def _parse_line(path: Path, number: int, line: str) -> tuple[str, str]:
    user, sep, encoded = line.partition(":")
    parts = encoded.split("$")
    if not sep or not user.strip():
        raise AuthConfigError(f"{path}:{number}: expected 'user:{SCHEME}$...'")
    if len(parts) != 4 or parts[0] != SCHEME or not parts[1].isdigit():
        raise AuthConfigError(f"{path}:{number}: user '{user.strip()}' has no {SCHEME} hash (plain passwords are "
                              "refused; write the line with `medagent users add`)")
    try:
        base64.b64decode(parts[2], validate=True)
        base64.b64decode(parts[3], validate=True)
    except ValueError as err:
        raise AuthConfigError(f"{path}:{number}: the hash of user '{user.strip()}' is not valid base64") from err
    return user.strip(), encoded


def read_users(path: Path) -> dict[str, str]:
    """{user: encoded hash}; every problem reported with its line number."""
    if not path.is_file():
        raise AuthConfigError(f"users file not found: {path}")
    users: dict[str, str] = {}
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        user, encoded = _parse_line(path, number, line)
        if user in users:
            raise AuthConfigError(f"{path}:{number}: user '{user}' appears twice")
        users[user] = encoded
    if not users:
        raise AuthConfigError(f"{path}: no users")
    return users


def add_user(path: Path, user: str, password: str) -> None:
    """Add or replace ``user``'s line, keeping the rest of the file (written atomically)."""
    if not user or ":" in user or user != user.strip():
        raise AuthConfigError("user names must be non-empty, without ':' or surrounding spaces")
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    kept = [line for line in lines if line.partition(":")[0].strip() != user]
    kept.append(f"{user}:{hash_password(password)}")
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text("\n".join(kept) + "\n", encoding="utf-8")
    tmp.chmod(0o600)
    tmp.replace(path)


def users_file_auth(path: Path) -> AuthCallback:
    users = read_users(path)  # validated now: a broken file stops the start, not the first login
    # an unknown user costs the same hash as a known one, so response time does not reveal who exists
    decoy = hash_password(secrets.token_urlsafe(16), iterations=int(next(iter(users.values())).split("$")[1]))

    def check(user: str, password: str) -> bool:
        encoded = users.get(user)
        matches = verify_password(password, encoded or decoy)
        ok = encoded is not None and matches
        if not ok:
            log.warning("failed login for user %r", user)
        return ok

    return check


def load_callback(spec: str) -> AuthCallback:
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name or not attribute:
        raise AuthConfigError(f"auth callback '{spec}': expected module:function")
    try:
        function = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as err:
        raise AuthConfigError(f"auth callback '{spec}' cannot be loaded: {err}") from err
    if not callable(function):
        raise AuthConfigError(f"auth callback '{spec}' is not callable")
    return function


def resolve_auth(auth: str | None = None, users_file: Path | None = None,
                 auth_callback: str | None = None) -> tuple[str, str] | AuthCallback | None:
    """What Gradio's ``auth`` gets: at most one of the three ways may be given."""
    given = [x for x in (auth, users_file, auth_callback) if x]
    if len(given) > 1:
        raise AuthConfigError("give one of --auth, --users-file, --auth-callback")
    if users_file:
        return users_file_auth(users_file)
    if auth_callback:
        return load_callback(auth_callback)
    if auth:
        user, sep, password = auth.partition(":")
        if not sep or not user or not password:
            raise AuthConfigError("--auth expects user:password")
        return user, password
    return None
