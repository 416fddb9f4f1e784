"""Load test of the running app: N concurrent clients for a bounded time, each in its own session.

Each client uploads its own real study, then asks questions about it until the time is up; every
answer must describe *its* study (no cross-session leakage). Writes JSON: requests, errors, leaks,
latency p50/p95. Only loopback targets are allowed.

    python scripts/load_ui.py --url http://127.0.0.1:7860 --clients 8 --seconds 300 --out var/bench/load_ui.json
    python scripts/load_ui.py --start-app --clients 4 --seconds 60     # starts a templates-only app itself
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

from gradio_client import Client, handle_file

from tools.home import shared_data_dir
from ui.viewer import AS_STORED

log = logging.getLogger("load_ui")
LAYERS = ["segmenter", "detector", "classifier"]
QUESTIONS = ["Is the heart enlarged?", "Any pneumonia?", "Is there a nodule?", "What about the lungs?"]


def studies(count: int) -> list[Path]:
    data = shared_data_dir()
    pool = [data / "dicom-samples" / "cr-chest-pa.dcm", data / "dicom-samples" / "cr-chest-monochrome1.dcm"]
    pool += sorted((data / "cxr-pediatric-pneumonia" / "train" / "NORMAL").iterdir())[:count]
    return pool[:count]


def client_loop(url: str, study: Path, deadline: float, out: dict) -> None:
    client = Client(url, verbose=False)
    expected_id = None
    for turn in range(10**6):
        if time.monotonic() > deadline:
            return
        files = [handle_file(str(study))] if turn == 0 else []
        started = time.perf_counter()
        try:
            history, _viewer, _rows, header, *_ = client.predict(
                {"text": QUESTIONS[turn % len(QUESTIONS)], "files": files}, AS_STORED, LAYERS, api_name="/respond"
            )
        except Exception as exc:  # every failure is counted and reported, never hidden
            out["errors"].append(f"{study.name}: {type(exc).__name__}: {exc}"[:300])
            continue
        out["latencies"].append(time.perf_counter() - started)
        study_id = (header or {}).get("id")
        expected_id = expected_id or study_id
        if study_id != expected_id or not history:
            out["leaks"].append(f"{study.name}: expected {expected_id}, got {study_id}")


def run(url: str, clients: int, seconds: float) -> dict:
    host = urlparse(url).hostname or ""
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit("load tests target loopback only")
    out: dict = {"errors": [], "leaks": [], "latencies": []}
    deadline = time.monotonic() + seconds
    threads = [threading.Thread(target=client_loop, args=(url, s, deadline, out)) for s in studies(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=seconds + 900)
    lat = sorted(out["latencies"])
    return {
        "url": url, "clients": clients, "seconds": seconds, "requests": len(lat), "errors": len(out["errors"]),
        "leaks": len(out["leaks"]), "error_samples": out["errors"][:10], "leak_samples": out["leaks"][:10],
        "latency_p50_s": statistics.median(lat) if lat else None,
        "latency_p95_s": lat[int(0.95 * (len(lat) - 1))] if lat else None,
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:7860")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=300)
    parser.add_argument("--start-app", action="store_true", help="start a templates-only app on a free port")
    parser.add_argument("--out", type=Path, default=Path("var/bench/load_ui.json"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    url, demo = args.url, None
    if args.start_app:
        from ui.app import CSS, build_app

        demo = build_app().queue(default_concurrency_limit=2)
        _, url, _ = demo.launch(server_name="127.0.0.1", prevent_thread_lock=True, quiet=True, css=CSS)
    try:
        result = run(url, args.clients, args.seconds)
    finally:
        if demo is not None:
            demo.close()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    log.info("%s", json.dumps({k: v for k, v in result.items() if not k.endswith("samples")}))


if __name__ == "__main__":
    main()
