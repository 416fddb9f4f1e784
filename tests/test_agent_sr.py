"""DICOM SR export: a valid Comprehensive 3D SR (TID 1500) that carries the measurements and coded findings."""

from __future__ import annotations

import pydicom
import pytest

from agent.contracts import ToolEvidence
from agent.sr import write_sr
from agent.writer import write_report
from tools.result import Finding, Measurement, ToolResult
from tools.study import load_study


def walk(items):
    for item in items:
        yield item
        yield from walk(item.get("ContentSequence", []))


@pytest.mark.parametrize("name", ["cr-chest-pa.dcm", "../cxr-jsrt-scr/images/JPCNN001.png"])
def test_sr_round_trip(samples, tmp_path, name):
    study = load_study(samples / name)
    result = ToolResult(
        tool="segmenter", model_id="seg-1", study_id=study.id,
        measurements=[Measurement(name="lung_area", value=50.7, unit="cm2", structure="right_lung"),
                      Measurement(name="cardiothoracic_ratio", value=0.46, unit="ratio")],
        findings=[Finding(label="nodule", probability=0.8, threshold=0.5, positive=True),
                  Finding(label="pneumonia", probability=0.1, threshold=0.5)],
    )  # fmt: skip
    failed = ToolResult(tool="classifier", model_id="unavailable", study_id=study.id, status="error")
    report = write_report(
        study_id=study.id,
        question="q",
        conversation_id="c",
        topics=[],
        evidence=[ToolEvidence(id="T1", result=result), ToolEvidence(id="T2", result=failed)],
    )
    path = write_sr(report, study, tmp_path / "report.dcm")
    ds = pydicom.dcmread(path)
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.88.34"  # Comprehensive 3D SR
    assert ds.ContentTemplateSequence[0].TemplateIdentifier == "1500"
    assert str(ds.PatientName) == "Anonymous^" and ds.PatientID.startswith("ANON-")
    items = list(walk(ds.ContentSequence))
    numbers = {
        (i.ConceptNameCodeSequence[0].CodeMeaning, float(i.MeasuredValueSequence[0].NumericValue))
        for i in items
        if i.ValueType == "NUM"
    }
    assert ("Area", 50.7) in numbers and ("cardiothoracic ratio", 0.46) in numbers
    codes = {
        (i.ConceptNameCodeSequence[0].CodeMeaning, i.ConceptCodeSequence[0].CodeMeaning)
        for i in items
        if i.ValueType == "CODE"
    }
    assert ("Nodule", "Present") in codes
    assert ("pneumonia", "Absent") in codes
    groups = [i for i in items if i.ValueType == "TEXT" and i.ConceptNameCodeSequence[0].CodeValue == "112039"]
    assert [g.TextValue for g in groups] == ["T1 segmenter"]  # failed tools add no measurement group
