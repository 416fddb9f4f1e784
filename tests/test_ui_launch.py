"""The app starts on 127.0.0.1 and refuses to bind beyond loopback without authentication."""

from __future__ import annotations

import httpx
import pytest

from ui.app import build_app, launch


def test_app_serves_on_loopback() -> None:
    demo = build_app()
    _, url, _ = demo.launch(server_name="127.0.0.1", server_port=None, prevent_thread_lock=True)
    try:
        assert url.startswith("http://127.0.0.1:")
        assert httpx.get(url, timeout=30).status_code == 200
    finally:
        demo.close()


def test_refuses_public_bind_without_auth() -> None:
    with pytest.raises(SystemExit):
        launch(host="0.0.0.0")
