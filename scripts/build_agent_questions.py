"""Build the agent's question set (agent/eval/questions.jsonl) from images no deciding tool trained on.

Each topic is answered by one tool's output, so each topic draws its images from that tool's held-out side:
- pneumonia: paediatric images in the classifier's patient-level validation split;
- heart (CTR from the segmenter): NIH images (the segmenter trains on JSRT and COVID-case masks only);
- nodule: JSRT images in the classifier's validation split, a third of them with a follow-up turn about the side
  (conversation memory). The detector is cross-validated on all of JSRT, so its committed weights have seen these
  images: the nodule topic is held out for the classifier only (the eval JSON says so).

Only image paths and question wording are written; labels are read from the data folder at evaluation time.

    python scripts/build_agent_questions.py [--per-topic 20] [--seed 0]
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import random
from pathlib import Path

from tools.classifier.data import all_records, patient_split
from tools.home import PROJECT_ROOT, shared_data_dir

log = logging.getLogger("build_agent_questions")
OUT = PROJECT_ROOT / "agent" / "eval" / "questions.jsonl"

WORDING = {
    "pneumonia": ("Is there pneumonia on this film?", "Pneumonia?", "Any consolidation suggesting pneumonia?"),
    "heart": ("Is the heart enlarged?", "Is the cardiac silhouette normal in size?", "Cardiomegaly?"),
    "nodule": ("Is there a nodule and where?", "Is there a mass or nodule in the lungs?", "Any lung nodule?"),
}
FOLLOW_UP = {"nodule": "Follow-up: which side was the nodule on?"}
SPLIT_NOTE = {
    "pneumonia": "classifier validation split (paediatric)",
    "heart": "not in the segmenter's training data (NIH)",
    "nodule": "classifier validation split (JSRT); the detector's CV-trained weights have seen it",
}


def balanced(positives: list[str], negatives: list[str], n: int, rng: random.Random) -> list[str]:
    """Up to n/2 positives (all of them when fewer), the rest negatives, shuffled."""
    pos = rng.sample(positives, min(len(positives), n // 2))
    neg = rng.sample(negatives, min(len(negatives), n - len(pos)))
    chosen = pos + neg
    rng.shuffle(chosen)
    return chosen


def candidate_images(data: Path) -> dict[str, tuple[list[str], list[str]]]:
    """Per topic: (positive, negative) image paths relative to the data folder, held out as the module doc says."""
    records = all_records(data)
    is_val = patient_split(records)
    val = [r for r, v in zip(records, is_val, strict=True) if v]

    def rel(path: Path) -> str:
        return str(path.relative_to(data))

    def pick(source: str, label: int) -> tuple[list[str], list[str]]:
        rows = [r for r in val if r.source == source]
        positives = [rel(r.path) for r in rows if r.labels[label] == 1.0]
        return positives, [rel(r.path) for r in rows if r.labels[label] == 0.0]

    with open(data / "cxr-nih-subset" / "labels.csv", newline="") as handle:
        nih = list(csv.DictReader(handle))
    cardiomegaly = ["cxr-nih-subset/" + r["image"] for r in nih if "Cardiomegaly" in r["finding_labels"]]
    normal_pa = [r for r in nih if r["finding_labels"] == "No Finding" and r["view"] == "PA"]
    no_finding = ["cxr-nih-subset/" + r["image"] for r in normal_pa]
    return {
        "pneumonia": pick("pediatric", 0),
        "heart": (cardiomegaly, no_finding),
        "nodule": pick("jsrt", 3),
    }


def build(per_topic: int, seed: int, data: Path) -> list[dict[str, object]]:
    rng = random.Random(seed)
    rows: list[dict[str, object]] = []
    for topic, (positives, negatives) in candidate_images(data).items():
        for index, image in enumerate(balanced(positives, negatives, per_topic, rng)):
            conversation = f"{topic}{index}"
            base = {"image": image, "topic": topic, "conversation": conversation, "split": SPLIT_NOTE[topic]}
            rows.append({**base, "question": WORDING[topic][index % len(WORDING[topic])], "turn": 0})
            if topic in FOLLOW_UP and index % 3 == 0:
                rows.append({**base, "question": FOLLOW_UP[topic], "turn": 1})
    for number, row in enumerate(rows, start=1):
        row["id"] = f"q{number:03d}"
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--per-topic", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    rows = build(args.per_topic, args.seed, shared_data_dir())
    args.out.write_text("".join(json.dumps(row) + "\n" for row in rows))
    log.info("wrote %d questions to %s", len(rows), args.out)


if __name__ == "__main__":
    main()
