"""Knowledge retrieval through knowledge.api, imported lazily; absence becomes a stated limitation."""

from __future__ import annotations

import logging
from functools import lru_cache
from typing import Any

from pydantic import BaseModel

log = logging.getLogger(__name__)

TOPIC_QUERIES = {
    "nodule": "pulmonary nodule on chest radiograph follow-up",
    "heart": "cardiomegaly cardiothoracic ratio chest radiograph",
    "pneumonia": "pneumonia chest radiograph findings",
    "lungs": "lung fields chest radiograph",
}


class Retrieved(BaseModel):
    query: str
    hits: list[dict[str, Any]]
    error: str | None = None


@lru_cache(maxsize=4)
def open_knowledge(path: str | None) -> Any:
    """The one shared KnowledgeBase per store path (the agent and the maintainer tab use the same)."""
    from knowledge.api import KnowledgeBase  # lazy: the knowledge layer is optional

    return KnowledgeBase.open(path=path)


def knowledge_query(topics: list[str], positive_labels: list[str]) -> str:
    terms = [TOPIC_QUERIES[t] for t in topics if t in TOPIC_QUERIES]
    terms += [f"{label} chest radiograph" for label in positive_labels]
    return "; ".join(dict.fromkeys(terms)) or "chest radiograph systematic review"


def retrieve(query: str, k: int, path: str | None = None) -> Retrieved:
    try:
        kb = open_knowledge(path)
        hits = kb.search(query, k=k)
    except Exception as err:  # missing package, missing index, broken index: all become a limitation
        log.warning("knowledge retrieval unavailable: %s", err)
        return Retrieved(query=query, hits=[], error=f"{type(err).__name__}: {err}"[:300])
    rows = [h.model_dump(mode="json") if hasattr(h, "model_dump") else dict(h) for h in hits]
    return Retrieved(query=query, hits=rows)
