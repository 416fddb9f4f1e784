"""The app on 127.0.0.1, driven by gradio_client: upload a real DICOM, ask, get a cited report; sessions isolated."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from gradio_client import Client, handle_file

from ui.app import build_app
from ui.viewer import AS_STORED


@pytest.fixture(scope="module")
def app_url(tmp_path_factory: pytest.TempPathFactory):
    from agent.config import AgentConfig

    config = AgentConfig(trace_db=str(tmp_path_factory.mktemp("traces") / "traces.sqlite"))
    demo = build_app(config)
    demo.queue(default_concurrency_limit=2)
    _, url, _ = demo.launch(server_name="127.0.0.1", server_port=None, prevent_thread_lock=True, quiet=True)
    yield url
    demo.close()


def _ask(client: Client, text: str, path: Path | list[Path] | None = None) -> tuple:
    paths = path if isinstance(path, list) else [path] if path else []
    message = {"text": text, "files": [handle_file(str(p)) for p in paths]}
    return client.predict(message, AS_STORED, ["segmenter", "detector", "classifier"], api_name="/respond")


def _final_text(history: list[dict]) -> str:
    return str(history[-1]["content"])


def test_upload_ask_and_get_cited_report(app_url: str, samples: Path) -> None:
    client = Client(app_url, verbose=False)
    history, _viewer, _measurements, header, report_html, *_ = _ask(client, "Is the heart enlarged?",
                                                                    samples / "cr-chest-pa.dcm")
    assert header["metadata"]["modality"] == "CR"
    assert "Decision support only" in report_html
    assert 'href="#ev-T1"' in report_html and 'id="ev-T1"' in report_html
    assert any((m.get("metadata") or {}).get("title", "").startswith("🔧 Tool") for m in history)
    assert "[T" in _final_text(history) or "[K" in _final_text(history)
    # similar prior cases from the shipped demo library: a report section and evidence cards with thumbnails
    assert "<h3>Similar prior cases</h3>" in report_html and 'href="#ev-C1"' in report_html
    assert "class='case-thumb'" in report_html and "data:image/png;base64," in report_html


def test_bad_upload_and_empty_question(app_url: str, tmp_path: Path) -> None:
    client = Client(app_url, verbose=False)
    bad = tmp_path / "notes.dcm"
    bad.write_text("not an image at all")
    history = _ask(client, "anything?", bad)[0]
    assert "could not load" in _final_text(history).lower()
    history = _ask(Client(app_url, verbose=False), "")[0]
    assert "type a question" in _final_text(history)


def test_series_uploaded_as_several_files(app_url: str, samples: Path) -> None:
    files = sorted((samples / "ct-3slice").iterdir())
    history, _viewer, _measurements, header, *_ = _ask(Client(app_url, verbose=False), "", files)
    assert header["metadata"]["frames"] == 3 and header["metadata"]["modality"] == "CT"
    assert "3 frame(s)" in _final_text(history)


def test_two_concurrent_sessions_are_isolated(app_url: str, samples: Path, data_dir: Path) -> None:
    inputs = {"ct": samples / "ct-3slice" / "01.dcm", "cr": samples / "cr-chest-pa.dcm"}
    headers: dict[str, dict] = {}

    def run(name: str) -> None:
        client = Client(app_url, verbose=False)
        headers[name] = _ask(client, "Describe the study.", inputs[name])[3]
        headers[name + "-followup"] = _ask(client, "And the lungs?")[3]  # same session, no new upload

    threads = [threading.Thread(target=run, args=(name,)) for name in inputs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    assert headers["ct"]["metadata"]["modality"] == "CT"
    assert headers["cr"]["metadata"]["modality"] == "CR"
    assert headers["ct-followup"]["id"] == headers["ct"]["id"]
    assert headers["cr-followup"]["id"] == headers["cr"]["id"]
