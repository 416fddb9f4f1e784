"""The real embedded vLLM CPU server: starts on 127.0.0.1, calls tools schema-validly, stops cleanly."""

from __future__ import annotations

import json

import httpx
import pytest

from agent.embedded_llm import EmbeddedLLMServer, EmbeddedLLMSettings

SETTINGS = EmbeddedLLMSettings()
pytestmark = pytest.mark.skipif(
    SETTINGS.missing() is not None, reason=f"embedded LLM not set up: {SETTINGS.missing()}"
)

TOOLS = [
    {"type": "function", "function": {
        "name": "measure_heart", "description": "Measure the cardiothoracic ratio from the segmented heart and lungs",
        "parameters": {"type": "object", "properties": {"view": {"type": "string", "enum": ["PA", "AP"]}},
                       "required": ["view"]}}},
]  # fmt: skip


def test_server_lifecycle_and_required_tool_call() -> None:
    server = EmbeddedLLMServer(SETTINGS).start()
    try:
        assert server.healthy()
        reply = httpx.post(
            f"{server.base_url}/chat/completions",
            json={
                "model": server.model,
                "messages": [{"role": "user", "content": "Is the heart enlarged on this PA film?"}],
                "tools": TOOLS,
                "tool_choice": "required",
                "max_tokens": 60,
                "temperature": 0,
            },
            timeout=300,
        ).json()
        call = reply["choices"][0]["message"]["tool_calls"][0]["function"]
        assert call["name"] == "measure_heart"
        assert json.loads(call["arguments"])["view"] in ("PA", "AP")  # schema-valid under strict parameters
    finally:
        server.stop()
    assert not server.healthy()
