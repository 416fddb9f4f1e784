"""Finding names, negation cues and laterality shared by the writer and the verifier."""

from __future__ import annotations

import re

from tools.result import Finding, Measurement

# finding name -> pattern in report text; and the tool labels that count as that finding
FINDING_TEXT: dict[str, str] = {
    "nodule": r"\bnodules?\b|\bmass(es)?\b",
    "pneumonia": r"\bpneumonia\b|\bconsolidation\b",
    "cardiomegaly": r"\bcardiomegaly\b|\bheart (appears |is )?enlarged\b|\benlarged (heart|cardiac)",
    "effusion": r"\beffusions?\b",
    "pneumothorax": r"\bpneumothora(x|ces)\b",
    "atelectasis": r"\batelectasis\b",
    "edema": r"\bo?edema\b",
}
NORMAL_TEXT: dict[str, str] = {"cardiomegaly": r"heart size (is )?within normal limits|normal heart size"}
FINDING_LABELS: dict[str, tuple[str, ...]] = {
    "nodule": ("nodule", "mass"),
    "pneumonia": ("pneumonia", "consolidation"),
    "cardiomegaly": ("cardiomegaly",),
    "effusion": ("effusion",),
    "pneumothorax": ("pneumothorax",),
    "atelectasis": ("atelectasis",),
    "edema": ("edema", "oedema"),
}
TOPIC_FINDING = {"nodule": "nodule", "pneumonia": "pneumonia", "heart": "cardiomegaly"}
NEGATION = re.compile(r"\b(no|not|without|negative|absent|none)\b", re.IGNORECASE)
UNCERTAIN = re.compile(r"\b(cannot|could not|unavailable|whether|unknown)\b", re.IGNORECASE)
SIDE = re.compile(r"\b(right|left)\b", re.IGNORECASE)
CTR_THRESHOLD = 0.5
AGENT_MADE = "unavailable"  # model_id of the failure records the executor writes itself


def label_is(finding_name: str, label: str) -> bool:
    norm = label.lower().replace("_", " ")
    return any(key in norm for key in FINDING_LABELS.get(finding_name, (finding_name,)))


def is_ctr(measurement: Measurement) -> bool:
    name = measurement.name.lower().replace("_", " ")
    return "cardiothoracic" in name or name == "ctr" or name.startswith("ctr ")


def finding_side(finding: Finding, image_columns: int | None = None) -> str | None:
    """The patient's side: from the tool's attributes, else from its box on a frontal view (image left =
    patient's right, the standard display of PA and AP chest radiographs)."""
    for key in ("side", "laterality", "location", "lung"):
        value = str(finding.attributes.get(key, "")).lower()
        match = SIDE.search(value.replace("_", " "))
        if match:
            return match.group(1)
    if finding.box is not None and image_columns:
        centre = (finding.box.x0 + finding.box.x1) / 2
        return "right" if centre < image_columns / 2 else "left"
    return None


def is_positive(finding: Finding) -> bool:
    if finding.positive:
        return True
    if finding.probability is not None and finding.threshold is not None:
        return finding.probability >= finding.threshold
    return False


def format_number(value: float) -> str:
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


# Diagnosis words a prior case may bring into a report sentence; anything else stays in the evidence card only
# (an imported case's diagnosis is untrusted text).
KNOWN_DIAGNOSIS_TERMS = frozenset({
    "no finding", "normal", "pneumonia", "bacterial", "viral", "fungal", "aspiration", "lipoid", "bacterial pneumonia",
    "viral pneumonia", "covid-19", "sars", "mers", "mers-cov", "ards", "influenza", "tuberculosis", "legionella",
    "klebsiella", "mycoplasma", "pneumocystis", "streptococcus", "chlamydophila", "e.coli", "nocardia",
    "atelectasis", "cardiomegaly", "consolidation", "edema", "effusion", "emphysema", "fibrosis", "hernia",
    "infiltration", "mass", "nodule", "lung nodule", "pleural thickening", "pneumothorax", "lung cancer",
})


def known_diagnosis(diagnosis: str | None) -> bool:
    parts = [p.strip() for p in re.split(r"[/,]", (diagnosis or "").lower())]
    return bool(parts) and all(p in KNOWN_DIAGNOSIS_TERMS for p in parts)
