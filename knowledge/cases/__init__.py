"""Similar prior cases: a case library searchable by image and by text (see knowledge/cases/CARD.md)."""
