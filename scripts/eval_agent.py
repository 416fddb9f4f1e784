"""Score the agent on the question set (agent/eval/questions.jsonl) over real images held out from the tools.

The set is built by scripts/build_agent_questions.py; each row's `split` says which tools never trained on its image.

Labels are read at run time from the data folder (never committed): JSRT index (nodule, side from `location`),
paediatric folder (pneumonia), NIH labels (Cardiomegaly, Nodule/Mass). Writes JSON with answer accuracy,
citation validity, verifier catch rate on injected false claims and the verifier's false-drop rate.

    python scripts/eval_agent.py [--llm URL --model NAME] [--limit N] [--out var/eval/agent.json]
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import re
import statistics
import time
import uuid
from pathlib import Path

import torch
from tqdm import tqdm

from agent.config import AgentConfig, LLMConfig
from agent.contracts import Report, Sentence, ToolEvidence
from agent.orchestrator import Agent
from agent.trace_store import TraceStore
from agent.verifier import check_sentence
from agent.vocabulary import FINDING_TEXT, NEGATION, NORMAL_TEXT, SIDE, TOPIC_FINDING, UNCERTAIN, finding_side
from tools.home import PROJECT_ROOT, shared_data_dir
from tools.study import load_study

log = logging.getLogger("eval_agent")
QUESTIONS = PROJECT_ROOT / "agent" / "eval" / "questions.jsonl"


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def load_labels(data: Path) -> dict[str, dict[str, object]]:
    labels: dict[str, dict[str, object]] = {}
    for row in read_csv(data / "cxr-jsrt-scr" / "index.csv"):
        nodule = row["nodule"] == "True"
        loc = row.get("location", "").strip().lower()
        side = "left" if loc.startswith("l") else "right" if loc.startswith("r") else None
        labels["cxr-jsrt-scr/" + row["image"]] = {"nodule": nodule, "nodule_side": side if nodule else None}
    for row in read_csv(data / "cxr-nih-subset" / "labels.csv"):
        found = row["finding_labels"].split("|")
        labels["cxr-nih-subset/" + row["image"]] = {
            "heart": "Cardiomegaly" in found,
            "nodule": "Nodule" in found or "Mass" in found,
        }
    for cls in ("NORMAL", "PNEUMONIA"):
        for path in (data / "cxr-pediatric-pneumonia" / "train" / cls).iterdir():
            labels[str(path.relative_to(data))] = {"pneumonia": cls == "PNEUMONIA"}
    return labels


def extract_answer(report: Report, topic: str) -> tuple[str, str | None]:
    """('yes'|'no'|'unknown', side) from the impression sentence that names the topic's finding."""
    name = TOPIC_FINDING[topic]
    for sentence in report.impression:
        text = sentence.text
        if name in NORMAL_TEXT and re.search(NORMAL_TEXT[name], text, re.IGNORECASE):
            return "no", None
        match = re.search(FINDING_TEXT[name], text, re.IGNORECASE)
        if not match:
            continue
        if UNCERTAIN.search(text):
            return "unknown", None
        if NEGATION.search(text[: match.start()]):
            return "no", None
        side = SIDE.search(text)
        return "yes", side.group(1).lower() if side else None
    return "unknown", None


def false_claims(report: Report) -> list[tuple[str, Sentence]]:
    """Claims that contradict this report's own evidence, each citing that evidence."""
    claims: list[tuple[str, Sentence]] = []
    for ev in report.evidence:
        if not isinstance(ev, ToolEvidence) or ev.result.status != "ok":
            continue
        for m in ev.result.measurements[:3]:
            wrong = m.value * 1.5 + 0.37
            claims.append(
                ("number", Sentence(text=f"The {m.name.replace('_', ' ')} is {wrong:.2f}.", evidence_ids=[ev.id]))
            )
        for finding, pattern in FINDING_TEXT.items():
            # a claim is false against the tool's whole answer for that finding (a detector lists many candidates)
            named = [f for f in ev.result.findings if re.search(pattern, f.label.replace("_", " "), re.IGNORECASE)]
            if not named:
                continue
            positive = [f for f in named if f.positive]
            text = f"There is no {finding}." if positive else f"There is {finding}."
            claims.append(("polarity", Sentence(text=text, evidence_ids=[ev.id])))
            sides = {finding_side(f, ev.image_columns) for f in positive} - {None}
            if len(sides) == 1:
                other = "left" if sides.pop() == "right" else "right"
                claims.append(
                    ("side", Sentence(text=f"There is {finding} in the {other} lung.", evidence_ids=[ev.id]))
                )
        if not any("pneumothorax" in f.label.lower() and f.positive for f in ev.result.findings):
            claims.append(("unsupported", Sentence(text="There is a large pneumothorax.", evidence_ids=[ev.id])))
    claims.append(("unresolvable", Sentence(text="The lungs are clear.", evidence_ids=["T99"])))
    claims.append(("uncited", Sentence(text="The heart is normal.", evidence_ids=[])))
    return claims


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--questions", type=Path, default=QUESTIONS)
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "var" / "eval" / "agent.json")
    parser.add_argument("--llm", help="OpenAI-compatible base URL")
    parser.add_argument("--model")
    parser.add_argument("--limit", type=int)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(1)
    data = shared_data_dir()
    labels = load_labels(data)
    questions = [json.loads(line) for line in args.questions.read_text().splitlines() if line.strip()]
    questions = questions[: args.limit] if args.limit else questions
    llm = LLMConfig(base_url=args.llm, model=args.model) if args.llm else None
    run = uuid.uuid4().hex[:8]
    agent = Agent(AgentConfig(llm=llm), store=TraceStore(args.out.parent / f"eval-traces-{run}.sqlite"))

    rows, claims_total, claims_caught, by_kind = [], 0, 0, {}
    sentences = cited = true_dropped = true_total = 0
    for q in tqdm(questions, desc="questions"):
        study = load_study(data / q["image"])
        started = time.perf_counter()
        report = agent.ask(study, q["question"], conversation_id=f"eval-{run}-{q['conversation']}")
        latency = time.perf_counter() - started
        index = report.evidence_by_id()
        for s in report.sentences():
            sentences += 1
            cited += bool(s.evidence_ids) and all(i in index for i in s.evidence_ids)
        trace = agent.store.get_trace(report.trace_id)
        decisions = next(s for s in trace.steps if s.kind == "verification").data["decisions"]
        true_total += len(decisions)
        true_dropped += sum(d["action"] == "dropped" and d["origin"] == "template" for d in decisions)
        for kind, claim in false_claims(report):
            caught = bool(check_sentence(claim, "impression", index))
            claims_total += 1
            claims_caught += caught
            by_kind.setdefault(kind, [0, 0])
            by_kind[kind][0] += caught
            by_kind[kind][1] += 1
        answer, side = extract_answer(report, q["topic"])
        truth = labels.get(q["image"], {}).get(q["topic"])
        expected_side = labels.get(q["image"], {}).get("nodule_side") if q["topic"] == "nodule" else None
        rows.append(
            {
                **q,
                "answer": answer,
                "side": side,
                "expected": None if truth is None else ("yes" if truth else "no"),
                "expected_side": expected_side,
                "latency_s": round(latency, 3),
                "writer": report.writer,
                "trace_id": report.trace_id,
            }
        )

    scored = [r for r in rows if r["expected"] is not None]
    topics = sorted({r["topic"] for r in scored})
    side_rows = [r for r in scored if r["expected_side"] and r["answer"] == "yes"]
    result = {
        "questions": len(rows),
        "scored_questions": len(scored),
        "answer_accuracy": sum(r["answer"] == r["expected"] for r in scored) / max(1, len(scored)),
        "answered_rate": sum(r["answer"] != "unknown" for r in scored) / max(1, len(scored)),
        "accuracy_by_topic": {
            t: {
                "n": len(rs),
                "accuracy": sum(r["answer"] == r["expected"] for r in rs) / len(rs),
                "answered": sum(r["answer"] != "unknown" for r in rs),
            }
            for t in topics
            for rs in [[r for r in scored if r["topic"] == t]]
        },
        "nodule_side_accuracy": (sum(r["side"] == r["expected_side"] for r in side_rows) / len(side_rows))
        if side_rows
        else None,
        "citation_validity": cited / max(1, sentences),
        "sentences": sentences,
        "verifier_catch_rate": claims_caught / max(1, claims_total),
        "verifier_catch_by_kind": {k: {"caught": c, "total": n} for k, (c, n) in by_kind.items()},
        "injected_false_claims": claims_total,
        "template_sentences_dropped_rate": true_dropped / max(1, true_total),
        "latency_p50_s": statistics.median(r["latency_s"] for r in rows),
        "writer": f"llm:{args.model}" if llm else "template",
        "held_out_by_topic": {t: sorted({str(r.get("split")) for r in scored if r["topic"] == t}) for t in topics},
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    summary = {k: v for k, v in result.items() if k != "rows"}
    log.warning("wrote %s: %s", args.out, json.dumps(summary))


if __name__ == "__main__":
    main()
