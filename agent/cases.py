"""Similar prior cases through knowledge.cases, imported lazily; a refusal or failure becomes a stated limitation."""

from __future__ import annotations

import logging
from typing import Any

from pydantic import BaseModel

from tools.study import Study

log = logging.getLogger(__name__)


class FoundCases(BaseModel):
    hits: list[dict[str, Any]]
    error: str | None = None


def find_similar(study: Study, k: int) -> FoundCases:
    try:
        from knowledge.cases.library import NotSearchable, similar_cases  # lazy: the case library is optional
    except ImportError as err:
        return FoundCases(hits=[], error=f"case library not installed ({err.name})")
    try:
        hits = similar_cases(study, k=k)
    except NotSearchable as err:
        return FoundCases(hits=[], error=err.reason)
    except Exception as err:  # missing weights, broken index: a limitation, never a crash
        log.warning("similar-case search unavailable: %s", err)
        return FoundCases(hits=[], error=f"{type(err).__name__}: {err}"[:300])
    return FoundCases(hits=[h.evidence_fields() for h in hits])
