"""Study loading: DICOM (file, folder, zip), PNG and JPEG into a de-identified `Study`."""

from tools.study.errors import StudyError, StudyErrorReason
from tools.study.limits import StudyLimits
from tools.study.loader import load_study
from tools.study.model import SafeMetadata, Study
from tools.study.preview import preview_image, write_preview

__all__ = [
    "SafeMetadata",
    "Study",
    "StudyError",
    "StudyErrorReason",
    "StudyLimits",
    "load_study",
    "preview_image",
    "write_preview",
]
