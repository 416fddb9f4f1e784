"""Query preparation: expansion of common chest-imaging abbreviations and exact code recognition."""

from __future__ import annotations

import re

# Common abbreviations in chest imaging requests and reports (expanded in addition to, not instead of, the original).
ABBREVIATIONS: dict[str, str] = {
    "cxr": "chest x-ray radiograph", "ptx": "pneumothorax", "psp": "primary spontaneous pneumothorax",
    "ssp": "secondary spontaneous pneumothorax", "ggo": "ground-glass opacity", "ctr": "cardiothoracic ratio",
    "cap": "community-acquired pneumonia", "hap": "hospital-acquired pneumonia", "spn": "solitary pulmonary nodule",
    "chf": "congestive heart failure", "hf": "heart failure", "copd": "chronic obstructive pulmonary disease",
    "ldct": "low-dose CT lung cancer screening", "ild": "interstitial lung disease", "pe": "pulmonary embolism",
    "ards": "acute respiratory distress syndrome", "tb": "tuberculosis", "ct": "computed tomography",
    "pa": "posteroanterior", "ap": "anteroposterior", "cpa": "costophrenic angle", "ett": "endotracheal tube",
    "ngt": "nasogastric tube", "cvc": "central venous catheter", "rll": "right lower lobe", "lll": "left lower lobe",
    "rml": "right middle lobe", "rul": "right upper lobe", "lul": "left upper lobe", "icd": "ICD-10-CM code",
    "hpo": "Human Phenotype Ontology", "mesh": "MeSH descriptor", "bts": "British Thoracic Society",
}
CODE_PATTERNS = (
    (re.compile(r"\b([A-TV-Z][0-9][0-9A-Z](?:\.[0-9A-Z]{1,4})?)\b"), "ICD10CM:{}"),
    (re.compile(r"\b(U07\.1)\b"), "ICD10CM:{}"),
    (re.compile(r"\b(HP:\d{7})\b", re.IGNORECASE), "{}"),
    (re.compile(r"\b(D\d{6,9})\b"), "MESH:{}"),
)


def expand_abbreviations(query: str) -> str:
    extra = [ABBREVIATIONS[w.lower()] for w in re.findall(r"[A-Za-z]+", query) if w.lower() in ABBREVIATIONS and
             (w.isupper() or len(w) > 3)]
    return f"{query} ({'; '.join(extra)})" if extra else query


def code_candidates(query: str) -> list[str]:
    """Fact ids that a code written in the query would have, e.g. 'J93.11' -> 'ICD10CM:J93.11'."""
    out: list[str] = []
    for pattern, template in CODE_PATTERNS:
        for m in pattern.finditer(query):
            code = m.group(1).upper()
            out.append(template.format(code))
    return list(dict.fromkeys(out))
