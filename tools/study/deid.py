"""DICOM PS3.15 Basic Application Level Confidentiality Profile, applied before anything is kept.

Options applied: Retain Patient Characteristics (sex, age; ages over 89 are capped as "090Y"
following HIPAA Safe Harbor) and Retain Device Identity is *not* applied. Dates and times are
removed, not shifted. UIDs are replaced consistently: the same source UID maps to the same
pseudonymous ``2.25.*`` UID for a given installation salt, so a series stays a series.
"""

from __future__ import annotations

import copy
import hashlib
import os
import secrets

from pydicom.dataset import Dataset

from tools.home import medagent_home

METHOD = "PS3.15 Basic Profile; Retain Patient Characteristics"

# Attributes of PS3.15 Table E.1-1 that may carry identity, with the profile's action:
# "X" remove, "Z" replace with empty, "D" replace with a dummy, "U" replace UID consistently.
BASIC_PROFILE: dict[str, str] = {
    **dict.fromkeys(
        [
            "AccessionNumber", "PatientID", "PatientName", "PatientBirthDate", "ReferringPhysicianName",
            "StudyDate", "StudyTime", "StudyID", "ContentDate", "ContentTime", "ContentCreatorName",
            "PatientSex",
        ],
        "Z",
    ),
    **dict.fromkeys(["PersonName", "VerifyingObserverName"], "D"),
    **dict.fromkeys(
        [
            "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "FrameOfReferenceUID",
            "SynchronizationFrameOfReferenceUID", "ReferencedSOPInstanceUID", "InstanceCreatorUID",
            "DeviceUID", "IrradiationEventUID", "ConcatenationUID", "DimensionOrganizationUID",
            "StorageMediaFileSetUID", "ReferencedFrameOfReferenceUID", "RelatedFrameOfReferenceUID",
            "TargetUID", "FiducialUID", "MediaStorageSOPInstanceUID", "UID",
        ],
        "U",
    ),
    **dict.fromkeys(
        [
            "AcquisitionComments", "AcquisitionContextSequence", "AcquisitionDate", "AcquisitionDateTime",
            "AcquisitionTime", "AcquisitionDeviceProcessingDescription", "AdditionalPatientHistory",
            "AdmissionID", "AdmittingDate", "AdmittingDiagnosesCodeSequence", "AdmittingDiagnosesDescription",
            "AdmittingTime", "Allergies", "AuthorObserverSequence", "BranchOfService", "CassetteID",
            "ConfidentialityConstraintOnPatientDataDescription", "ContributionDescription",
            "CountryOfResidence", "CurrentPatientLocation", "CustodialOrganizationSequence",
            "DataSetTrailingPadding", "DerivationDescription", "DetectorID", "DeviceSerialNumber",
            "DigitalSignaturesSequence", "DischargeDiagnosisDescription", "DistributionAddress",
            "DistributionName", "EthnicGroup", "FrameComments", "GantryID", "GeneratorID",
            "IconImageSequence", "IdentifyingComments", "ImageComments", "ImagePresentationComments",
            "ImagingServiceRequestComments", "InstanceCreationDate", "InstanceCreationTime",
            "InstitutionAddress", "InstitutionName", "InstitutionalDepartmentName",
            "InsurancePlanIdentification", "IntendedRecipientsOfResultsIdentificationSequence",
            "InterpretationApproverSequence", "InterpretationAuthor", "InterpretationDiagnosisDescription",
            "InterpretationIDIssuer", "InterpretationRecorder", "InterpretationText",
            "InterpretationTranscriber", "IssuerOfAdmissionID", "IssuerOfPatientID", "LastMenstrualDate",
            "MedicalAlerts", "MedicalRecordLocator", "MilitaryRank", "ModifiedImageDescription",
            "ModifyingDeviceID", "NameOfPhysiciansReadingStudy", "NamesOfIntendedRecipientsOfResults",
            "Occupation", "OperatorsName", "OperatorIdentificationSequence", "OrderCallbackPhoneNumber",
            "OrderEnteredBy", "OrderEntererLocation", "OriginalAttributesSequence", "OtherPatientIDs",
            "OtherPatientIDsSequence", "OtherPatientNames", "ParticipantSequence", "PatientAddress",
            "PatientAge", "PatientBirthName", "PatientBirthTime", "PatientComments",
            "PatientInsurancePlanCodeSequence", "PatientMotherBirthName", "PatientPrimaryLanguageCodeSequence",
            "PatientReligiousPreference", "PatientSize", "PatientState", "PatientTelephoneNumbers",
            "PatientWeight", "PerformedLocation", "PerformedProcedureStepDescription",
            "PerformedProcedureStepID", "PerformedProcedureStepStartDate", "PerformedProcedureStepStartTime",
            "PerformingPhysicianIdentificationSequence", "PerformingPhysicianName", "PersonAddress",
            "PersonTelephoneNumbers", "PhysiciansOfRecord", "PhysiciansOfRecordIdentificationSequence",
            "PhysiciansReadingStudyIdentificationSequence", "PlateID", "PreMedication", "PregnancyStatus",
            "ReasonForTheRequestedProcedure", "ReasonForStudy", "ReferencedPatientAliasSequence",
            "ReferencedPatientSequence", "ReferencedStudySequence", "ReferringPhysicianAddress",
            "ReferringPhysicianIdentificationSequence", "ReferringPhysicianTelephoneNumbers",
            "RegionOfResidence", "RequestAttributesSequence", "RequestedProcedureDescription",
            "RequestedProcedureID", "RequestingPhysician", "RequestingService", "ResponsibleOrganization",
            "ResponsiblePerson", "ResultsComments", "ResultsDistributionListSequence", "ResultsIDIssuer",
            "ScheduledPerformingPhysicianName", "ScheduledProcedureStepDescription",
            "ScheduledProcedureStepID", "SeriesDate", "SeriesDescription", "SeriesTime",
            "ServiceEpisodeDescription", "SmokingStatus", "SpecialNeeds", "StationName", "StudyComments",
            "StudyDescription", "TextComments", "TextString", "TopicAuthor", "TopicKeywords",
            "TopicSubject", "TopicTitle", "VerifyingOrganization", "VisitComments", "ProtocolName",
            "RequestedContrastAgent", "OverlayDate", "OverlayTime", "CurveDate", "CurveTime",
        ],
        "X",
    ),
}

# Kept under the Retain Patient Characteristics option, filtered by `_retained_characteristic`.
RETAINED_CHARACTERISTICS = ("PatientSex", "PatientAge")


def installation_salt() -> bytes:
    """Secret salt for UID pseudonyms: MEDAGENT_DEID_SALT, else a random one kept in MEDAGENT_HOME."""
    configured = os.environ.get("MEDAGENT_DEID_SALT")
    if configured:
        return configured.encode()
    path = medagent_home() / "deid_salt"
    if not path.exists():
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip().encode()


def pseudonymous_uid(uid: str, salt: bytes) -> str:
    """Same input and salt give the same 2.25 UID; the source UID cannot be recovered from it."""
    digest = hashlib.sha256(salt + b"|" + uid.encode()).digest()
    return "2.25." + str(int.from_bytes(digest[:16], "big"))


def cap_age(age: str | None) -> str | None:
    """DICOM AS value, with ages over 89 years capped at 090Y; malformed ages dropped."""
    if not age or len(age) != 4 or not age[:3].isdigit() or age[3] not in "DWMY":
        return None
    if age[3] == "Y" and int(age[:3]) > 89:
        return "090Y"
    return age


def deidentify(ds: Dataset, salt: bytes | None = None) -> Dataset:
    """Return a de-identified copy of the header of ``ds`` (pixel data left out, the original untouched)."""
    salt = installation_salt() if salt is None else salt
    retained = {k: ds.get(k) for k in RETAINED_CHARACTERISTICS}
    out = _deep_copy_without_pixels(ds)
    out.remove_private_tags()
    _apply_profile(out, salt)
    # Curves (50xx) and overlay comments/labels (60xx) may carry text: drop the groups' text elements.
    for elem in list(out):
        if elem.tag.group & 0xFF00 in (0x5000,) or (elem.tag.group & 0xFF00 == 0x6000 and elem.VR in ("LO", "LT")):
            del out[elem.tag]
    if retained["PatientSex"] in ("M", "F", "O"):
        out.PatientSex = retained["PatientSex"]
    age = cap_age(str(retained["PatientAge"])) if retained["PatientAge"] else None
    if age:
        out.PatientAge = age
    out.PatientIdentityRemoved = "YES"
    out.DeidentificationMethod = METHOD
    if hasattr(out, "file_meta") and "MediaStorageSOPInstanceUID" in out.file_meta:
        out.file_meta.MediaStorageSOPInstanceUID = pseudonymous_uid(
            str(out.file_meta.MediaStorageSOPInstanceUID), salt
        )
    return out


def _deep_copy_without_pixels(ds: Dataset) -> Dataset:
    """Element values are shared by a shallow copy: copy deeply, but leave the (large) pixel data out."""
    shallow = ds.copy()
    for keyword in ("PixelData", "FloatPixelData", "DoubleFloatPixelData"):
        if keyword in shallow:
            del shallow[keyword]
    out = copy.deepcopy(shallow)
    if hasattr(ds, "file_meta"):
        out.file_meta = copy.deepcopy(ds.file_meta)
    return out


def _apply_profile(ds: Dataset, salt: bytes) -> None:
    for elem in list(ds):
        keyword = elem.keyword
        if elem.VR == "SQ" and keyword not in BASIC_PROFILE:
            for item in elem.value:
                item.remove_private_tags()
                _apply_profile(item, salt)
            continue
        action = BASIC_PROFILE.get(keyword)
        if action is None and elem.VR == "PN":
            action = "Z"  # any person name the table does not list is still a person name
        if action is None and elem.VR in ("DA", "DT", "TM") and keyword not in ("PatientAge",):
            action = "X"
        if action == "X":
            del ds[elem.tag]
        elif action == "Z":
            elem.value = ""
        elif action == "D":
            elem.value = "ANONYMOUS"
        elif action == "U" and elem.value:
            if elem.VM > 1:
                elem.value = [pseudonymous_uid(str(v), salt) for v in elem.value]
            else:
                elem.value = pseudonymous_uid(str(elem.value), salt)
