"""One registry of vision tools, used by the CLI, the agent and the UI alike."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tools.result import ToolResult
from tools.study import Study

ToolFunction = Callable[[list[Study]], list[ToolResult]]


@dataclass(frozen=True)
class ToolSpec:
    name: str
    description: str
    modalities: tuple[str, ...]
    run: ToolFunction
    card: str  # path of the model card, relative to tools/cards


_REGISTRY: dict[str, ToolSpec] = {}


def register(spec: ToolSpec) -> ToolSpec:
    _REGISTRY[spec.name] = spec
    return spec


def get_tool(name: str) -> ToolSpec:
    _load_builtin()
    if name not in _REGISTRY:
        raise KeyError(f"unknown tool '{name}'; known: {', '.join(sorted(_REGISTRY)) or 'none'}")
    return _REGISTRY[name]


def all_tools() -> list[ToolSpec]:
    _load_builtin()
    return [_REGISTRY[name] for name in sorted(_REGISTRY)]


def _load_builtin() -> None:
    """Import the built-in tool modules; each registers itself on import."""
    import importlib

    for module in BUILTIN_TOOL_MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise


BUILTIN_TOOL_MODULES = ("tools.classifier", "tools.segmenter", "tools.detector")
