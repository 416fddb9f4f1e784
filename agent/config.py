"""Configuration of one agent: limits, the optional language model, and where state lives."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from agent.contracts import LLM_SECTIONS, Section
from agent.planner import Limits


class LLMConfig(BaseModel):
    base_url: str = Field(description="OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1")
    model: str
    api_key: str = "not-needed"
    timeout_s: float = Field(default=30.0, gt=0)
    max_tokens: int = Field(default=512, ge=16)
    tool_choice: Literal["required", "auto", "none"] = Field(
        default="required", description="'required' for small models, 'auto' for capable ones, 'none': no extra calls"
    )
    temperature: float = 0.0
    sections: list[Section] = Field(
        default_factory=lambda: list(LLM_SECTIONS),
        description="sections the model writes; the rest come from templates (['impression'] suits a 135M model)",
    )


class AgentConfig(BaseModel):
    limits: Limits = Field(default_factory=Limits)
    llm: LLMConfig | None = None
    knowledge_path: str | None = None
    trace_db: str | None = None
