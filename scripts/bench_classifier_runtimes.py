"""Does int8 dynamic quantisation or ONNX Runtime make the chest X-ray classifier faster on this CPU at equal
accuracy? Compares, on the tool's probability path (preprocessed input tensor -> logits and pooled features ->
temperature-calibrated probabilities and the OOD score), torch fp32 (the tool today), torch dynamic int8 (Linear),
ONNX Runtime fp32 and ONNX Runtime int8 (dynamic and static QDQ): batch-1 latency p50/p95, batch-32 throughput,
and agreement with fp32 on validation images (max/mean |dp|, per-label AUROC, threshold and OOD-refusal flips).
Grad-CAM is out of scope (it needs torch autograd whatever runtime gives the probabilities).

    python scripts/bench_classifier_runtimes.py [--out tools/cards/classifier/runtimes.json] [--threads 2]
        [--max-images 300] [--runs 100] [--no-onnx-int8]

ONNX rows need the optional extra `pip install -e .[onnx]`; without onnxruntime they are recorded as skipped.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import platform
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the eval script's metric helpers
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from eval_classifier import binary_metrics

from tools.classifier.cache import cached_images
from tools.classifier.data import LABELS, all_records, label_matrix, patient_split
from tools.classifier.model import head_features, head_logits, to_tensor, trunk
from tools.classifier.predict import Classifier, Prediction, load_classifier, predict, weights_path

log = logging.getLogger("bench_classifier_runtimes")
ROOT = Path(__file__).resolve().parents[1]
THRESHOLD = 0.5  # the tool's operating point
Runner = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]  # (N,1,S,S) float32 -> (logits, pooled features)


class ProbabilityPath(nn.Module):
    """The classifier's inference path as one module: standardised input -> (logits, pooled features)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = head_features(self.model, trunk(self.model, x))
        return head_logits(self.model, f), f


def quantize_int8(model: nn.Module) -> nn.Module:
    """torch dynamic int8 on nn.Linear (weights int8, activations quantised per call); convolutions stay fp32."""
    return torch.ao.quantization.quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8)


def flop_share(model: nn.Module, size: int) -> dict[str, float]:
    """Multiply-accumulates per image by layer type (forward hooks), to say what int8-on-Linear can touch."""
    macs = {"conv": 0, "linear": 0}

    def conv_hook(m: nn.Conv2d, _inp: tuple[torch.Tensor], out: torch.Tensor) -> None:
        k = m.kernel_size[0] * m.kernel_size[1] * (m.in_channels // m.groups)
        macs["conv"] += int(out.numel() * k)

    def linear_hook(m: nn.Linear, _inp: tuple[torch.Tensor], out: torch.Tensor) -> None:
        macs["linear"] += int(out.numel() * m.in_features)

    hooks = [m.register_forward_hook(conv_hook) for m in model.modules() if isinstance(m, nn.Conv2d)]
    hooks += [m.register_forward_hook(linear_hook) for m in model.modules() if isinstance(m, nn.Linear)]
    with torch.inference_mode():
        ProbabilityPath(model)(torch.zeros(1, 1, size, size))
    for h in hooks:
        h.remove()
    total = macs["conv"] + macs["linear"]
    return {"conv_macs": macs["conv"], "linear_macs": macs["linear"], "linear_fraction": macs["linear"] / total}


def torch_runner(model: nn.Module) -> Runner:
    path = ProbabilityPath(model).eval()

    def run(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with torch.inference_mode():
            z, f = path(torch.from_numpy(x))
        return z.numpy(), f.numpy()

    return run


def export_onnx(model: nn.Module, size: int, target: Path, dynamo: bool = True) -> Path:
    """torch.onnx.export with a dynamic batch axis: the torch.export-based exporter (default, ~8-10 s here) or the
    deprecated TorchScript one (dynamo=False, ~3 s; the tests use it for speed; same graph numerically)."""
    example = (torch.zeros(2, 1, size, size),)
    path = ProbabilityPath(model).eval()
    names = {"input_names": ["x"], "output_names": ["logits", "features"]}
    if dynamo:
        batch = torch.export.Dim("batch", min=1, max=1024)
        torch.onnx.export(path, example, str(target), dynamic_shapes={"x": {0: batch}}, dynamo=True,
                          external_data=False, **names)
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.onnx.export(path, example, str(target), dynamic_axes={"x": {0: "batch"}}, dynamo=False, **names)
    return target


def ort_runner(path: Path, threads: int) -> Runner:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])

    def run(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        z, f = session.run(["logits", "features"], {"x": x})
        return z, f

    return run


def quantize_onnx_dynamic(src: Path, dst: Path) -> Path:
    """ORT dynamic int8 (ConvInteger/MatMulInteger; uint8 weights, the type ORT's CPU ConvInteger implements)."""
    from onnxruntime.quantization import QuantType, quant_pre_process, quantize_dynamic

    pre = dst.with_name(dst.stem + "_pre.onnx")
    quant_pre_process(str(src), str(pre))  # symbolic shape inference; the raw dynamo graph fails ONNX's own
    quantize_dynamic(str(pre), str(dst), weight_type=QuantType.QUInt8)
    return dst


def quantize_onnx_static(src: Path, dst: Path, calibration: np.ndarray) -> Path:
    """ORT static int8, QDQ format, per-channel weights, min-max calibration on training-split images."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quant_pre_process,
        quantize_static,
    )

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter([{"x": calibration[i : i + 8]} for i in range(0, len(calibration), 8)])

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.batches, None)

    pre = dst.with_name(dst.stem + "_pre.onnx")
    quant_pre_process(str(src), str(pre))
    quantize_static(str(pre), str(dst), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    return dst


def timings(runners: dict[str, Runner], pool: np.ndarray, runs: int, warmup: int, batch: int,
            batch_repeats: int, rounds: int = 2, pause_s: float = 1.0) -> dict[str, dict[str, float]]:
    """Batch-1 latency (p50/p95 over `runs` calls, each block after `warmup` calls) and batch-`batch` throughput
    (median of repeats). Each runtime is timed in its own block (its thread pool spins after a call and would steal
    the cores from the next runtime's call if they alternated call by call), with a pause between blocks, and the
    blocks go round `rounds` times so that load from other jobs on the shared CPU is spread over all runtimes."""
    single: dict[str, list[float]] = {name: [] for name in runners}
    batch_s: dict[str, list[float]] = {name: [] for name in runners}
    per_round = -(-runs // rounds)
    for r in range(rounds):
        for name, run in runners.items():
            time.sleep(pause_s)
            for i in range(warmup):
                run(pool[i % len(pool)][None])
            for i in range(per_round):
                x = pool[(r * per_round + i) % len(pool)][None]
                t0 = time.perf_counter()
                run(x)
                single[name].append((time.perf_counter() - t0) * 1000)
            xb = pool[:batch]
            run(xb)
            for _ in range(-(-batch_repeats // rounds)):
                t0 = time.perf_counter()
                run(xb)
                batch_s[name].append(time.perf_counter() - t0)
    out = {}
    for name in runners:
        med = float(np.median(batch_s[name]))
        out[name] = {"batch1_p50_ms": float(np.percentile(single[name], 50)),
                     "batch1_p95_ms": float(np.percentile(single[name], 95)),
                     "batch1_mean_ms": float(np.mean(single[name])), "runs": len(single[name]),
                     "warmup_per_block": warmup, "rounds": rounds, f"batch{batch}_median_s": med,
                     f"batch{batch}_images_per_s": batch / med, "batch_repeats": len(batch_s[name])}
    return out


def predict_with(clf: Classifier, run: Runner, images: np.ndarray, batch_size: int = 32) -> Prediction:
    """predict() for a runner that is not a torch module: same preprocessing, calibration and OOD score."""
    logits, feats = [], []
    for i in range(0, len(images), batch_size):
        z, f = run(to_tensor(images[i : i + batch_size]).numpy())
        logits.append(z)
        feats.append(f)
    z = np.concatenate(logits).astype(np.float64)
    f = np.concatenate(feats)
    probs = 1.0 / (1.0 + np.exp(-z / clf.temperature))
    return Prediction(probabilities=probs, logits=z, ood_score=clf.ood.score(f), features=f)


def agreement(clf: Classifier, ref: Prediction, pred: Prediction, y: np.ndarray) -> dict[str, object]:
    """Differences from the fp32 tool path, and per-label AUROC (eval_classifier.binary_metrics) on annotated rows."""
    d = np.abs(pred.probabilities - ref.probabilities)
    per_label: dict[str, object] = {}
    for j, label in enumerate(LABELS):
        ok = ~np.isnan(y[:, j])
        entry: dict[str, object] = {"max_abs_diff": float(d[:, j].max()), "mean_abs_diff": float(d[:, j].mean())}
        if ok.any() and len(np.unique(y[ok, j])) == 2:
            entry.update(binary_metrics(y[ok, j], pred.probabilities[ok, j]))
        per_label[label] = entry
    refused_ref = ref.ood_score > clf.ood.threshold
    refused = pred.ood_score > clf.ood.threshold
    return {"max_abs_prob_diff": float(d.max()), "mean_abs_prob_diff": float(d.mean()),
            "decision_flips_at_0.5": int(((pred.probabilities >= THRESHOLD) != (ref.probabilities >= THRESHOLD)).sum()),
            "max_abs_ood_score_diff": float(np.abs(pred.ood_score - ref.ood_score).max()),
            "ood_refusal_flips": int((refused != refused_ref).sum()), "per_label": per_label}


def validation_subset(cap: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """The eval script's patient-grouped validation split (seed from the checkpoint), a seeded random subset of
    at most `cap` images, plus training-split images for static-quantisation calibration."""
    ckpt = torch.load(weights_path(), map_location="cpu", weights_only=False)
    records = all_records()
    is_val = patient_split(records, seed=int(ckpt["config"]["seed"]))
    images = cached_images([r.path for r in records])
    rng = np.random.default_rng(seed)
    vidx = np.flatnonzero(is_val)
    vidx = np.sort(rng.choice(vidx, size=min(cap, len(vidx)), replace=False))
    tidx = np.sort(rng.choice(np.flatnonzero(~is_val), size=64, replace=False))
    return images[vidx], label_matrix(records)[vidx], images[tidx], [records[i].source for i in vidx]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=ROOT / "tools" / "cards" / "classifier" / "runtimes.json")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--max-images", type=int, default=300)
    ap.add_argument("--runs", type=int, default=100, help="timed batch-1 calls per runtime (>= 50)")
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--batch-repeats", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=2, help="timing blocks per runtime, taken in turn")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-onnx-int8", action="store_true", help="skip the ONNX Runtime int8 rows")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()
    clf = load_classifier(device="cpu")
    size = clf.input_size

    images, y, calib_images, sources = validation_subset(args.max_images, args.seed)
    log.info("%d validation images (cap %d), threads %d, load %s", len(images), args.max_images, args.threads,
             load_before)
    pool = to_tensor(images[: max(args.batch, 64)]).numpy()
    ref = predict(clf, images)  # the tool's own fp32 function is the reference

    runtimes: dict[str, dict[str, object]] = {}
    runners: dict[str, Runner] = {}

    def add(name: str, run: Runner, pred: Prediction, extra: dict[str, object]) -> None:
        agree = agreement(clf, ref, pred, y)
        runners[name] = run
        runtimes[name] = {**extra, "agreement_vs_torch_fp32": agree}
        log.info("%s: max |dp| %.2e, mean |dp| %.2e, %d flips at 0.5", name, agree["max_abs_prob_diff"],
                 agree["mean_abs_prob_diff"], agree["decision_flips_at_0.5"])

    add("torch_fp32", torch_runner(clf.model), ref, {"status": "ok", "note": "baseline: the tool today"})
    qmodel = quantize_int8(clf.model)
    share = flop_share(clf.model, size)
    add("torch_int8_dynamic_linear", torch_runner(qmodel), predict(dataclasses.replace(clf, model=qmodel), images),
        {"status": "ok", "quantised_modules": "nn.Linear only (the 1280->5 classifier head)",
         "flops": {**share, "note": "EfficientNet-Lite0 is all convolutions (depthwise + pointwise); the only "
                   "Linear is the head, so dynamic int8 on Linear covers this fraction of the MACs"}})

    try:
        import onnxruntime as ort
    except ImportError:
        ort = None
        log.warning("onnxruntime not installed (pip install -e .[onnx]): ONNX rows skipped")
    onnx_names = ["onnxruntime_fp32"] + ([] if args.no_onnx_int8 else ["onnxruntime_int8_dynamic",
                                                                       "onnxruntime_int8_static_qdq"])
    with tempfile.TemporaryDirectory(prefix="clf-onnx-") as tmp:
        if ort is None:
            for name in onnx_names:
                runtimes[name] = {"status": "skipped", "reason": "onnxruntime not installed (optional extra [onnx])"}
        else:
            t0 = time.perf_counter()
            fp32 = export_onnx(clf.model, size, Path(tmp) / "classifier.onnx")
            export_s = time.perf_counter() - t0
            common = {"status": "ok", "onnxruntime": ort.__version__, "provider": "CPUExecutionProvider",
                      "intra_op_num_threads": args.threads}
            run = ort_runner(fp32, args.threads)
            add("onnxruntime_fp32", run, predict_with(clf, run, images),
                {**common, "export": "torch.onnx.export(dynamo=True), dynamic batch", "export_s": export_s})
            if not args.no_onnx_int8:
                makers = {"onnxruntime_int8_dynamic": lambda: quantize_onnx_dynamic(fp32, Path(tmp) / "dyn.onnx"),
                          "onnxruntime_int8_static_qdq": lambda: quantize_onnx_static(
                              fp32, Path(tmp) / "qdq.onnx", to_tensor(calib_images).numpy())}
                for name, make in makers.items():
                    try:
                        run = ort_runner(make(), args.threads)
                        add(name, run, predict_with(clf, run, images),
                            {**common, "calibration": "64 training-split images, min-max, per-channel weights"
                             if "static" in name else "none (activation ranges per call)"})
                    except Exception as exc:  # an unsupported quantised op is a result, not a crash
                        log.exception("%s failed", name)
                        runtimes[name] = {"status": "failed", "error": repr(exc)}
        load_timing = os.getloadavg()
        log.info("timing %s, load %s", ", ".join(runners), load_timing)
        timed = timings(runners, pool, args.runs, args.warmup, args.batch, args.batch_repeats, args.rounds)
        for name, t in timed.items():
            runtimes[name].update(t)
            log.info("%s: batch-1 p50 %.1f ms, p95 %.1f ms; batch-%d %.1f images/s", name, t["batch1_p50_ms"],
                     t["batch1_p95_ms"], args.batch, t[f"batch{args.batch}_images_per_s"])

    base = runtimes["torch_fp32"]
    for entry in runtimes.values():
        if entry.get("status") == "ok":
            entry["speedup_batch1_p50_vs_torch_fp32"] = base["batch1_p50_ms"] / entry["batch1_p50_ms"]  # type: ignore[operator]
            entry[f"speedup_batch{args.batch}_vs_torch_fp32"] = (
                entry[f"batch{args.batch}_images_per_s"] / base[f"batch{args.batch}_images_per_s"])  # type: ignore[operator]

    out = {
        "date_utc": datetime.now(UTC).isoformat(timespec="seconds"), "weights_sha256": clf.sha256,
        "scope": "probability path only: standardised (N,1,160,160) tensor -> logits + pooled features -> "
                 "temperature-calibrated probabilities and OOD score; timings exclude decoding, resizing and "
                 "to_tensor. Grad-CAM (boxes, overlay) is out of scope: it needs torch autograd, so any other "
                 "runtime would run beside torch, not replace it.",
        "machine": {"cpu_count": os.cpu_count(), "processor": platform.processor() or platform.machine(),
                    "python": platform.python_version(), "torch": torch.__version__,
                    "load_avg_1_5_15_before": list(load_before),
                    "load_avg_1_5_15_at_timing_start": list(load_timing),
                    "load_avg_1_5_15_after": list(os.getloadavg()),
                    "note": "load average counts other jobs on this shared 2-core CPU; torch's OpenMP pool is hit "
                            "hardest by them (multi-second p95 tails under load)"},
        "torch_threads": torch.get_num_threads(), "seed": args.seed,
        "validation": {"split": "patient_split(all_records(), seed=checkpoint seed), as scripts/eval_classifier.py",
                       "n": len(images), "cap": args.max_images,
                       "sources": {s: sources.count(s) for s in sorted(set(sources))},
                       "auroc_note": "per-label AUROC on the annotated rows of this subset (all sources pooled: "
                                     "compare runtimes with each other, not with the card's per-task numbers)"},
        "runtimes": runtimes,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2))
    log.info("wrote %s", args.out)


if __name__ == "__main__":
    main()
