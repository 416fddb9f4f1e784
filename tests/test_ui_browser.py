"""End to end in a real browser (Debian chromium + Playwright): upload a real DICOM, ask, follow a citation,
open the trace. Screenshots are kept as test artefacts in $MEDAGENT_TEST_ARTIFACTS (default var/test-artifacts)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tools.home import PROJECT_ROOT

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian chromium is not installed (.ci/run installs it)"),
]
ARTIFACTS = Path(os.environ.get("MEDAGENT_TEST_ARTIFACTS", PROJECT_ROOT / "var" / "test-artifacts"))
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def app_url(tmp_path_factory: pytest.TempPathFactory):
    from agent.config import AgentConfig
    from ui.app import CSS, build_app

    demo = build_app(AgentConfig(trace_db=str(tmp_path_factory.mktemp("traces") / "traces.sqlite")))
    demo.queue(default_concurrency_limit=2)
    _, url, _ = demo.launch(server_name="127.0.0.1", server_port=None, prevent_thread_lock=True, quiet=True, css=CSS)
    yield url
    demo.close()


def test_clinician_and_reviewer_journey(app_url: str, samples: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(app_url)
        page.locator("#ask-box input[type=file]").set_input_files(str(samples / "cr-chest-pa.dcm"))
        page.locator("#ask-box textarea").fill("Is the heart enlarged?")
        page.locator("#ask-box textarea").press("Enter")
        citation = page.locator("#report a.cite").first
        expect(citation).to_be_visible(timeout=600_000)
        page.screenshot(path=str(ARTIFACTS / "01-report.png"), full_page=True)
        target = citation.get_attribute("href")
        citation.click()
        assert page.url.endswith(target)
        expect(page.locator(target)).to_be_visible()
        page.screenshot(path=str(ARTIFACTS / "02-evidence.png"), full_page=True)
        trace_id = page.locator("#report p.meta").inner_text().rsplit("trace", 1)[-1].strip()
        page.get_by_role("tab", name="Traces").click()
        page.get_by_role("button", name="Refresh").click()
        expect(page.locator("#trace-list")).to_contain_text(trace_id[:12], timeout=60_000)
        page.locator("#trace-id textarea").fill(trace_id)
        page.locator("#show-trace").click()
        expect(page.locator("#trace-steps")).to_contain_text("verification", timeout=60_000)
        expect(page.locator("#trace-steps")).to_contain_text("tool_call")
        page.screenshot(path=str(ARTIFACTS / "03-trace.png"), full_page=True)
        browser.close()
