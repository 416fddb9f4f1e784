"""The app starts on 127.0.0.1 and loads a real study through its upload handler."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from ui.app import build_app, describe_upload, launch


def test_upload_handler_shows_preview_and_errors(samples: Path, tmp_path: Path) -> None:
    image, header, status = describe_upload(str(samples / "cr-chest-pa.dcm"))
    assert image.size == (1024, 1024)
    assert header["metadata"]["modality"] == "CR"
    assert "Loaded study" in status
    bad = tmp_path / "bad.dcm"
    bad.write_text("hello")
    image, header, status = describe_upload(str(bad))
    assert image is None and header["error"] in ("not_dicom", "not_an_image")
    assert "Could not load" in status


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
