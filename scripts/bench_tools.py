"""Benchmark every tool in tools.registry: per-image latency (p50/p95, batch 1) and throughput (batch 32), on CPU
and, when CUDA is available, on GPU. Each device runs in its own subprocess (CPU with CUDA hidden), so any tool
that picks its device automatically is measured on both. Writes one JSON file.

    python scripts/bench_tools.py var/bench/tools.json [--repeats 30] [--threads 2] [--tools classifier,...]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

# Extra timed configurations per tool: (label, run options, a tool run untimed on the same studies first or None).
# "detector_after_segmenter" is the agent's nodule question: the segmenter has just segmented the study, so the
# detector's lung prior finds the masks in the segmenter's cache.
VARIANTS: dict[str, tuple[tuple[str, dict[str, object], str | None], ...]] = {
    "detector": (("detector_without_anatomy", {"anatomy": False}, None),
                 ("detector_after_segmenter", {}, "segmenter")),
}
log = logging.getLogger("bench_tools")
ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"


def sample_files(n: int = 32) -> list[Path]:
    """Real frontal chest X-rays from ../shared/data: a DICOM CR, paediatric JPEGs, NIH JPEGs, COVID-set JPEGs."""
    files = [DATA / "dicom-samples" / "cr-chest-pa.dcm"]
    files += sorted((DATA / "cxr-pediatric-pneumonia" / "train" / "PNEUMONIA").glob("*.jpeg"))[:10]
    files += sorted((DATA / "cxr-pediatric-pneumonia" / "train" / "NORMAL").glob("*.jpeg"))[:6]
    files += sorted((DATA / "cxr-nih-subset" / "images").glob("*.jpg"))[: n - len(files)]
    return [f for f in files if f.exists()][:n]


def bench_worker(device: str, repeats: int, batch: int, threads: int, names: list[str] | None) -> dict[str, object]:
    import torch

    from tools.registry import all_tools, get_tool
    from tools.study import load_study

    torch.set_num_threads(threads)
    studies = [load_study(p) for p in sample_files(batch)]
    while len(studies) < batch:
        studies += studies[: batch - len(studies)]
    out: dict[str, object] = {"device": device, "torch_threads": threads,
                              "gpu": torch.cuda.get_device_name(0) if device == "cuda" else None, "tools": {}}
    for spec in all_tools():
        if names and spec.name not in names:
            continue
        for label, options, primer in ((spec.name, {}, None), *VARIANTS.get(spec.name, ())):
            log.info("benchmarking %s on %s", label, device)
            try:
                prime = get_tool(primer).run if primer else None
                out["tools"][label] = _time_tool(spec.run, studies, repeats, batch, device, options, prime)  # type: ignore[index]
            except Exception as exc:  # a broken tool is reported, not fatal for the others
                log.exception("tool %s failed", label)
                out["tools"][label] = {"error": repr(exc)}  # type: ignore[index]
    return out


def _time_tool(run, studies: list, repeats: int, batch: int, device: str,  # type: ignore[no-untyped-def]
               options: dict[str, object], prime=None) -> dict[str, object]:
    from tools.segmenter.predict import clear_cache

    def fresh(chosen: list) -> None:
        """Start from an empty segmenter cache (a tool's first look at a study); run the primer if there is one."""
        clear_cache()
        if prime is not None:
            prime(chosen)
            _sync(device)

    run(studies[:2], **options)  # warm-up: loads weights, first-call allocations
    single = []
    for i in range(repeats):
        fresh([studies[i % len(studies)]])
        t0 = time.perf_counter()
        results = run([studies[i % len(studies)]], **options)
        _sync(device)
        single.append((time.perf_counter() - t0) * 1000)
    timing: dict[str, object] = {
        "options": options,
        "batch1_latency_ms": {"p50": float(np.percentile(single, 50)), "p95": float(np.percentile(single, 95)),
                              "mean": float(np.mean(single)), "n": repeats},
        "last_status": [r.status for r in results],
    }
    if prime is not None:  # the segmenter's cache keeps a few frames, not a batch: one study at a time only
        return {**timing, "primed_by_tool_run": True}
    batch_times = []
    for _ in range(3):
        clear_cache()
        t0 = time.perf_counter()
        run(studies[:batch], **options)
        _sync(device)
        batch_times.append(time.perf_counter() - t0)
    best = min(batch_times)
    return {**timing, f"batch{batch}_throughput_images_per_s": batch / best,
            f"batch{batch}_seconds": {"best": best, "all": batch_times}}


def _sync(device: str) -> None:
    if device == "cuda":
        import torch

        torch.cuda.synchronize()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path, help="JSON file to write")
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=min(os.cpu_count() or 1, 2))
    ap.add_argument("--tools", default="", help="comma-separated subset (default: every registered tool)")
    ap.add_argument("--worker", choices=("cpu", "cuda"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    names = [n for n in args.tools.split(",") if n] or None
    if args.worker:
        result = bench_worker(args.worker, args.repeats, args.batch, args.threads, names)
        args.out.write_text(json.dumps(result, indent=2))
        return

    import torch

    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    report: dict[str, object] = {"host": platform.node(), "cpu_count": os.cpu_count(),
                                 "python": platform.python_version(),
                                 "torch": torch.__version__, "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
                                 "inputs": [p.name for p in sample_files(args.batch)], "devices": {}}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    for device in devices:
        part = args.out.with_suffix(f".{device}.part.json")
        env = dict(os.environ)
        if device == "cpu":
            env["CUDA_VISIBLE_DEVICES"] = ""
        cmd = [sys.executable, __file__, str(part), "--worker", device, "--repeats", str(args.repeats),
               "--batch", str(args.batch), "--threads", str(args.threads if device == "cpu" else os.cpu_count()),
               "--tools", args.tools]
        subprocess.run(cmd, check=True, env=env, cwd=ROOT)
        report["devices"][device] = json.loads(part.read_text())  # type: ignore[index]
        part.unlink()
    args.out.write_text(json.dumps(report, indent=2))
    log.info("wrote %s", args.out)


if __name__ == "__main__":
    main()
