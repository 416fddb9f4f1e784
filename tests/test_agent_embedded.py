"""End to end with the real embedded vLLM CPU server (SmolLM2-135M): `ask` through LangChain on real studies.

Skipped with the reason when scripts/setup_llm.sh has not been run (no .venv-llm or no converted model).
"""

from __future__ import annotations

import os

os.environ.setdefault("MEDAGENT_KNOWLEDGE_CORPUS", "curated")

import pytest

from agent.config import AgentConfig, LLMConfig
from agent.embedded_llm import EmbeddedLLMServer, EmbeddedLLMSettings
from agent.orchestrator import Agent
from agent.planner import Limits
from agent.trace_store import TraceStore
from tools.study import load_study

SETTINGS = EmbeddedLLMSettings()
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(SETTINGS.missing() is not None, reason=f"embedded LLM not set up: {SETTINGS.missing()}"),
]


@pytest.fixture(scope="session")
def server():
    with EmbeddedLLMServer(SETTINGS) as running:
        yield running


@pytest.mark.parametrize("name", ["dicom-samples/cr-chest-pa.dcm", "cxr-jsrt-scr/images/JPCLN001.png"])
def test_ask_end_to_end_with_embedded_vllm(server, data_dir, tmp_path, name):
    llm = LLMConfig(
        base_url=server.base_url, model=server.model, timeout_s=120, max_tokens=160, sections=["impression"]
    )
    store = TraceStore(tmp_path / "traces.sqlite")
    agent = Agent(AgentConfig(limits=Limits(total_budget_s=600, tool_timeout_s=300), llm=llm), store=store)
    report = agent.ask(load_study(data_dir / name), "Is there a nodule and where? Is the heart enlarged?")
    index = report.evidence_by_id()
    assert report.impression
    assert all(s.evidence_ids and all(i in index for i in s.evidence_ids) for s in report.sentences())
    steps = store.get_trace(report.trace_id).steps
    llm_steps = [s for s in steps if s.kind in ("llm_response", "llm_fallback") and s.name == "report"]
    assert llm_steps, "the model was never asked to write the report"
    # the model either wrote the report (then the verifier judged every sentence) or the template stood in
    verification = next(s for s in steps if s.kind == "verification")
    if report.writer.startswith("llm:"):
        assert llm_steps[-1].kind == "llm_response" and llm_steps[-1].data["output_tokens"]
    else:
        assert llm_steps[-1].kind == "llm_fallback"
    assert all(d["reasons"] for d in verification.data["decisions"] if d["action"] == "dropped")
