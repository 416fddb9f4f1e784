"""Alternative classifier runtimes from scripts/bench_classifier_runtimes.py on two real chest X-rays: torch dynamic
int8 and ONNX Runtime fp32 give the tool's calibrated probabilities within a stated tolerance of torch fp32."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import numpy as np
import pytest

from tools.classifier.cache import load_grey
from tools.classifier.predict import load_classifier, predict

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from bench_classifier_runtimes import export_onnx, ort_runner, predict_with, quantize_int8

# Measured on 300 validation images: int8-on-Linear max |dp| ~0.015 (only the 1280->5 head is quantised);
# ONNX Runtime fp32 max |dp| ~3e-6 (float reassociation only).
INT8_TOL = 0.03
ORT_FP32_TOL = 1e-4


@pytest.fixture(scope="module")
def images(data_dir: Path) -> np.ndarray:
    paths = [data_dir / "cxr-jsrt-scr" / "images" / "JPCLN001.png",
             sorted((data_dir / "cxr-pediatric-pneumonia" / "train" / "PNEUMONIA").glob("*.jpeg"))[0]]
    return np.stack([load_grey(p) for p in paths])


def test_int8_dynamic_probabilities_match_fp32(images: np.ndarray) -> None:
    clf = load_classifier(device="cpu")
    ref = predict(clf, images)
    int8 = predict(dataclasses.replace(clf, model=quantize_int8(clf.model)), images)
    diff = np.abs(int8.probabilities - ref.probabilities)
    assert diff.max() <= INT8_TOL, diff
    assert predict(clf, images).probabilities == pytest.approx(ref.probabilities)  # the cached fp32 model untouched


def test_onnxruntime_fp32_probabilities_match_fp32(images: np.ndarray, tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    clf = load_classifier(device="cpu")
    # the TorchScript exporter (~3 s) keeps the test fast; the benchmark uses the torch.export one (~8-10 s)
    run = ort_runner(export_onnx(clf.model, clf.input_size, tmp_path / "classifier.onnx", dynamo=False), threads=2)
    ref = predict(clf, images)
    got = predict_with(clf, run, images)
    assert np.abs(got.probabilities - ref.probabilities).max() <= ORT_FP32_TOL
    assert np.abs(got.ood_score - ref.ood_score).max() <= 1e-3
