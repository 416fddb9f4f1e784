"""Chest X-ray anatomy segmenter (lungs, heart, clavicles) with CTR, areas and quality flags."""

from tools.registry import ToolSpec, register
from tools.segmenter.tool import run

SPEC = register(
    ToolSpec(
        name="segmenter",
        description="Segment right/left lung, heart and clavicles on a frontal chest X-ray; cardiothoracic ratio, "
        "lung areas, heart width and quality flags (cut-off lung, low confidence, rotation).",
        modalities=("CR", "DX", "OT"),
        run=run,
        card="segmenter.md",
    )
)

__all__ = ["SPEC", "run"]
