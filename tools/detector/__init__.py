"""Lung nodule detector (centre-point heatmap on EfficientNet-Lite0): candidates with box, score, probability, size,
side and zone."""

from tools.detector.tool import run
from tools.registry import ToolSpec, register

SPEC = register(
    ToolSpec(
        name="detector",
        description="Find lung nodule candidates on a frontal chest X-ray: box, score, calibrated probability, "
        "diameter (mm when spacing is known), side and zone from the lung masks; all candidates above min_score.",
        modalities=("CR", "DX", "OT"),
        run=run,
        card="detector.md",
    )
)

__all__ = ["SPEC", "run"]
