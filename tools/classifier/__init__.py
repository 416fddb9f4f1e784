"""Chest X-ray classifier: calibrated pneumonia (bacterial/viral), COVID-19 pattern, nodule and no-finding
probabilities with Grad-CAM boxes; refuses inputs that are not frontal chest X-rays."""

from tools.classifier.tool import run
from tools.registry import ToolSpec, register

SPEC = register(
    ToolSpec(
        name="classifier",
        description="Frontal chest X-ray: calibrated probabilities of pneumonia (bacterial vs viral), COVID-19 "
        "pattern, lung nodule and no finding, Grad-CAM box per positive finding; refuses non-frontal-CXR input.",
        modalities=("CR", "DX", "OT"),
        run=run,
        card="classifier.md",
    )
)

__all__ = ["SPEC", "run"]
