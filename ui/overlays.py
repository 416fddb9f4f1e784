"""Tool results as `gr.AnnotatedImage` layers: masks, detector boxes, heatmap peak boxes."""

from __future__ import annotations

import numpy as np

from tools.result import Box, ToolResult

Annotation = tuple[np.ndarray | tuple[int, int, int, int], str]


def _box(box: Box) -> tuple[int, int, int, int]:
    return int(box.x0), int(box.y0), int(box.x1), int(box.y1)


def layers(results: list[ToolResult], enabled: set[str] | None = None) -> list[Annotation]:
    """One annotation per mask, box or finding box; `enabled` filters by tool name (None = all)."""
    out: list[Annotation] = []
    for result in results:
        if result.status != "ok" or (enabled is not None and result.tool not in enabled):
            continue
        for region in result.regions:
            mask = region.mask()
            if mask is not None:
                out.append((mask.astype(np.float32), f"{result.tool}: {region.label}"))
            elif region.box is not None:
                out.append((_box(region.box), f"{result.tool}: {region.label}"))
        for finding in result.findings:
            if finding.positive and finding.box is not None:
                out.append((_box(finding.box), f"{result.tool}: {finding.label}"))
    return out


def measurement_rows(results: list[ToolResult]) -> list[list[str]]:
    """Rows for a measurements table: evidence id, tool, structure, name, value, unit."""
    return [
        [result.evidence_id or "", result.tool, m.structure or "", m.name, f"{m.value:.3g}", m.unit]
        for result in results
        for m in result.measurements
    ]
