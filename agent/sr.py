"""DICOM Comprehensive 3D SR (TID 1500 Measurement Report) from a verified Report, via highdicom.

One measurement group per tool result: its measurements (coded from pydicom's code dictionaries where a code
exists: Area, Width, Lung/Heart/Clavicle sites, Right/Left; otherwise a local 99MEDAGENT code) and its findings
as qualitative evaluations (Present/Absent) plus their probabilities. The SR references a de-identified stand-in
of the source image built from the Study's pseudonymous UIDs: raw DICOM headers are never kept.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import highdicom as hd
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from pydicom.uid import SecondaryCaptureImageStorage, generate_uid

from agent.contracts import Report, ToolEvidence
from agent.vocabulary import is_positive
from tools.study import Study

LOCAL = "99MEDAGENT"
UNITS = {
    "mm": ("mm", "millimeter"),
    "cm2": ("cm2", "square centimeter"),
    "ratio": ("1", "ratio"),
    "probability": ("1", "probability"),
    "px": ("{pixels}", "pixels"),
    "px2": ("{pixels}2", "square pixels"),
}
FINDING_CODES = {
    "nodule": codes.SCT.Nodule,
    "mass": codes.SCT.Mass,
    "cardiomegaly": codes.SCT.Cardiomegaly,
    "effusion": codes.SCT.PleuralEffusion,
    "pneumothorax": codes.SCT.Pneumothorax,
    "opacity": codes.DCM.Opacity,
}
SITES = {"lung": codes.SCT.Lung, "heart": codes.SCT.Heart, "clavicle": codes.SCT.Clavicle}


def _local(name: str) -> hd.sr.CodedConcept:
    meaning = name.replace("_", " ")[:64]
    value = "MA" + hashlib.sha256(meaning.lower().encode()).hexdigest()[:10].upper()
    return hd.sr.CodedConcept(value=value, scheme_designator=LOCAL, meaning=meaning)


def _unit(unit: str) -> hd.sr.CodedConcept:
    value, meaning = UNITS.get(unit, ("1", unit))
    return hd.sr.CodedConcept(value=value, scheme_designator="UCUM", meaning=meaning)


def _name(name: str):
    lowered = name.lower()
    if lowered.endswith("area") or lowered == "lung_area":
        return codes.SCT.Area
    if lowered.endswith("width"):
        return codes.SCT.Width
    return _local(name)


def _site(structure: str | None) -> list[hd.sr.FindingSite]:
    if not structure:
        return []
    words = structure.lower().replace("_", " ")
    for key, code in SITES.items():
        if key in words:
            side = codes.SCT.Right if "right" in words else codes.SCT.Left if "left" in words else None
            return [hd.sr.FindingSite(anatomic_location=code, laterality=side)]
    return []


def _finding_code(label: str):
    lowered = label.lower()
    return next((code for key, code in FINDING_CODES.items() if key in lowered), _local(label))


def source_stand_in(study: Study) -> Dataset:
    """A de-identified image reference: pseudonymous UIDs, no names, dates or free text."""
    ds = Dataset()
    meta = study.metadata
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = generate_uid(entropy_srcs=[study.id, "instance"])
    ds.StudyInstanceUID = meta.pseudonymous_study_uid or generate_uid(entropy_srcs=[study.id, "study"])
    ds.SeriesInstanceUID = meta.pseudonymous_series_uid or generate_uid(entropy_srcs=[study.id, "series"])
    ds.PatientID = f"ANON-{study.id[:12]}"
    ds.PatientName = "Anonymous^"
    ds.PatientBirthDate = ""
    ds.PatientSex = meta.patient_sex or ""
    ds.StudyDate = ""
    ds.StudyTime = ""
    ds.StudyID = ""
    ds.AccessionNumber = ""
    ds.ReferringPhysicianName = ""
    ds.Modality = meta.modality
    return ds


def _group(ev: ToolEvidence) -> hd.sr.MeasurementsAndQualitativeEvaluations:
    r = ev.result
    algorithm = hd.sr.AlgorithmIdentification(name=r.tool, version=r.model_id[:64])
    measurements = [
        hd.sr.Measurement(
            name=_name(m.name),
            value=float(m.value),
            unit=_unit(m.unit),
            algorithm_id=algorithm,
            finding_sites=_site(m.structure) or None,
        )
        for m in r.measurements
    ]
    measurements += [
        hd.sr.Measurement(
            name=_local(f"{f.label} probability"),
            value=float(f.probability),
            unit=_unit("probability"),
            algorithm_id=algorithm,
        )
        for f in r.findings
        if f.probability is not None
    ]
    evaluations = [
        hd.sr.QualitativeEvaluation(
            name=_finding_code(f.label), value=codes.SCT.Present if is_positive(f) else codes.SCT.Absent
        )
        for f in r.findings
    ]
    return hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(uid=generate_uid(), identifier=f"{ev.id} {r.tool}"),
        algorithm_id=algorithm,
        finding_type=codes.DCM.Finding,
        measurements=measurements or None,
        qualitative_evaluations=evaluations or None,
    )


def build_sr(report: Report, study: Study) -> hd.sr.Comprehensive3DSR:
    groups = [_group(e) for e in report.evidence if isinstance(e, ToolEvidence) and e.result.status == "ok"]
    content = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(),
        procedure_reported=codes.SCT.ImagingProcedure,
        imaging_measurements=groups or None,
    )
    return hd.sr.Comprehensive3DSR(
        evidence=[source_stand_in(study)],
        content=content[0],
        series_instance_uid=generate_uid(),
        series_number=900,
        sop_instance_uid=generate_uid(),
        instance_number=1,
        manufacturer="medagent",
        is_complete=True,
        is_final=False,
        is_verified=False,
    )


def write_sr(report: Report, study: Study, path: Path) -> Path:
    sr = build_sr(report, study)
    path.parent.mkdir(parents=True, exist_ok=True)
    sr.save_as(path)
    return path
