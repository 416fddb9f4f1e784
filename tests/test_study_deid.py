"""De-identification: a DICOM with PHI in every profile attribute yields a Study and logs with none of it."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pydicom
import pytest
from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from tools.study import load_study
from tools.study.deid import BASIC_PROFILE, deidentify, pseudonymous_uid

PHI_NAME = "Doe^Janet^Q"
PHI_DATE = "19640229"
PHI_TIME = "101112"


def _phi_value(keyword: str, index: int) -> object:
    vr = dictionary_VR(tag_for_keyword(keyword))
    if vr == "PN":
        return PHI_NAME
    if vr == "DA":
        return PHI_DATE
    if vr == "TM":
        return PHI_TIME
    if vr == "DT":
        return PHI_DATE + PHI_TIME
    if vr == "UI":
        return f"1.2.826.0.1.3680043.99.{index}"
    if vr == "SQ":
        item = Dataset()
        item.PatientName = PHI_NAME
        item.CodeMeaning = f"PHI-SQ-{keyword}"
        return Sequence([item])
    if vr in ("US", "SS", "UL", "SL", "FL", "FD", "IS", "DS"):
        return None  # numeric attributes carry no text PHI to trace
    if vr in ("OB", "OW", "UN"):
        return b"PHI-BYTES"
    if vr == "AS":
        return "094Y"
    if vr == "CS":
        return f"PHICS{index}"
    return f"PHI-{keyword}"


@pytest.fixture
def phi_file(samples: Path, tmp_path: Path) -> tuple[Path, list[str]]:
    ds = pydicom.dcmread(samples / "cr-chest-pa.dcm")
    planted: list[str] = [PHI_NAME, "Doe", "Janet", PHI_DATE]
    for index, keyword in enumerate(sorted(BASIC_PROFILE)):
        if keyword in ("MediaStorageSOPInstanceUID", "PatientSex"):
            continue
        value = _phi_value(keyword, index)
        if value is None:
            continue
        setattr(ds, keyword, value)
        if isinstance(value, str) and value.startswith(("PHI", "1.2.826.0.1.3680043.99.")):
            planted.append(value)
    original_uids = [str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID), str(ds.SOPInstanceUID)]
    planted += original_uids
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.PatientSex = "F"
    ds.PatientAge = "094Y"
    ds.add_new(0x00091010, "LO", "PHI-PRIVATE-Doe")
    ds.private_block(0x0011, "ACME PHI", create=True).add_new(0x01, "LO", "PHI-PRIVATE-BLOCK")
    ds.BurnedInAnnotation = "YES"
    planted += ["PHI-PRIVATE-Doe", "PHI-PRIVATE-BLOCK", "ACME PHI"]
    path = tmp_path / "phi.dcm"
    ds.save_as(path, enforce_file_format=True)
    return path, planted


def test_no_phi_in_study_or_logs(phi_file: tuple[Path, list[str]], caplog: pytest.LogCaptureFixture) -> None:
    path, planted = phi_file
    caplog.set_level(logging.DEBUG)
    study = load_study(path)
    exposed = json.dumps(study.summary()) + repr(study) + "\n".join(r.getMessage() for r in caplog.records)
    leaked = [value for value in planted if value in exposed]
    assert leaked == []
    assert study.metadata.patient_age == "090Y"  # ages over 89 are capped
    assert study.metadata.patient_sex == "F"
    assert any("BurnedInAnnotation" in w for w in study.warnings)


def test_deidentified_dataset_keeps_no_planted_value(phi_file: tuple[Path, list[str]]) -> None:
    path, planted = phi_file
    clean = deidentify(pydicom.dcmread(path), salt=b"s")
    text = "\n".join(str(elem.value) for elem in clean.iterall()) + str(clean.file_meta)
    assert [value for value in planted if value in text] == []
    assert clean.PatientIdentityRemoved == "YES"
    assert not any(elem.tag.is_private for elem in clean.iterall())


def test_uids_are_replaced_consistently(samples: Path) -> None:
    ds = pydicom.dcmread(samples / "ct-3slice" / "01.dcm")
    a = deidentify(ds, salt=b"k")
    b = deidentify(pydicom.dcmread(samples / "ct-3slice" / "02.dcm"), salt=b"k")
    assert a.SeriesInstanceUID == b.SeriesInstanceUID != ds.SeriesInstanceUID
    assert a.SOPInstanceUID != b.SOPInstanceUID
    assert a.SeriesInstanceUID.startswith("2.25.") and len(a.SeriesInstanceUID) <= 64
    assert pseudonymous_uid("1.2.3", b"k") != pseudonymous_uid("1.2.3", b"other-salt")
    assert ds.PatientName != ""  # the original dataset is left untouched
