"""The maintainer's knowledge tab handlers on a real knowledge base (SQLite + FAISS + MiniLM)."""

from __future__ import annotations

from pathlib import Path

import pytest

from knowledge.api import KnowledgeBase
from ui.knowledge_tab import add_source, remove_source, search, source_rows


@pytest.fixture(scope="module")
def kb(tmp_path_factory: pytest.TempPathFactory) -> KnowledgeBase:
    return KnowledgeBase.open(tmp_path_factory.mktemp("kb"), corpus="curated")


def test_add_search_remove_a_markdown_source(kb: KnowledgeBase, tmp_path: Path) -> None:
    source = tmp_path / "local-protocol.md"
    source.write_text(
        "## Portable chest film protocol\n\nAt this hospital, portable AP chest films of ventilated patients are "
        "repeated every morning only when the endotracheal tube position changed.\n"
        "Reference: local radiology protocol 2026, https://example.org/protocol\n"
    )
    message, rows = add_source(kb, str(source), "Local protocol", "internal")
    assert message.startswith("Added"), message
    assert any(row[1] == "Local protocol" for row in rows)
    hits = search(kb, "when are portable films of ventilated patients repeated", 5)
    assert any("endotracheal tube" in row[3] and row[4] == "Local protocol" for row in hits)
    message, rows = remove_source(kb, "Local protocol")
    assert message.startswith("Removed")
    assert not any("endotracheal tube" in row[3] for row in search(kb, "portable films ventilated patients", 5))
    assert len(rows) == len(source_rows(kb))


def test_invalid_file_reports_lines(kb: KnowledgeBase, tmp_path: Path) -> None:
    bad = tmp_path / "facts.csv"
    bad.write_text("nonsense_column\nvalue\n")
    message, _ = add_source(kb, str(bad), "Broken", "CC0")
    assert "not added" in message and "line" in message
    message, _ = add_source(kb, None, "x", "")
    assert "Choose a file" in message
