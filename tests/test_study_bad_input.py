"""Bad input gives a typed StudyError a clinician understands; nothing crashes or half-loads."""

from __future__ import annotations

import contextlib
import io
import zipfile
from pathlib import Path

import numpy as np
import pydicom
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from tools.study import Study, StudyError, StudyErrorReason, StudyLimits, load_study


def _reason(path: Path, **kwargs: object) -> StudyErrorReason:
    with pytest.raises(StudyError) as info:
        load_study(path, **kwargs)  # type: ignore[arg-type]
    assert info.value.message and "Traceback" not in info.value.message
    return info.value.reason


def test_missing_empty_and_text_files(tmp_path: Path) -> None:
    assert _reason(tmp_path / "nope.dcm") is StudyErrorReason.NOT_FOUND
    (tmp_path / "empty.dcm").write_bytes(b"")
    assert _reason(tmp_path / "empty.dcm") is StudyErrorReason.EMPTY
    (tmp_path / "notes.txt").write_text("Patient feels fine.\n" * 20)
    assert _reason(tmp_path / "notes.txt") in (StudyErrorReason.NOT_DICOM, StudyErrorReason.NOT_AN_IMAGE)


def test_truncated_dicom_and_jpeg(samples: Path, data_dir: Path, tmp_path: Path) -> None:
    data = (samples / "ct-3slice" / "01.dcm").read_bytes()
    (tmp_path / "cut.dcm").write_bytes(data[: len(data) // 2])
    assert _reason(tmp_path / "cut.dcm") is StudyErrorReason.TRUNCATED
    header_only = (samples / "cr-chest-pa.dcm").read_bytes()[:200]
    (tmp_path / "header.dcm").write_bytes(header_only)
    assert _reason(tmp_path / "header.dcm") in (StudyErrorReason.TRUNCATED, StudyErrorReason.UNREADABLE)
    jpeg = next((data_dir / "cxr-pediatric-pneumonia" / "train" / "NORMAL").iterdir()).read_bytes()
    (tmp_path / "cut.jpeg").write_bytes(jpeg[: len(jpeg) // 3])
    assert _reason(tmp_path / "cut.jpeg") in (StudyErrorReason.TRUNCATED, StudyErrorReason.UNREADABLE)


def test_no_pixel_data_and_unsupported_photometric(samples: Path, tmp_path: Path) -> None:
    ds = pydicom.dcmread(samples / "ct-3slice" / "01.dcm")
    del ds.PixelData
    ds.save_as(tmp_path / "header-without-pixels.dcm")  # an image header whose pixels never arrived
    assert _reason(tmp_path / "header-without-pixels.dcm") is StudyErrorReason.TRUNCATED
    for keyword in ("Rows", "Columns", "BitsAllocated", "BitsStored", "HighBit", "PixelRepresentation"):
        delattr(ds, keyword)
    ds.save_as(tmp_path / "nopix.dcm")
    assert _reason(tmp_path / "nopix.dcm") is StudyErrorReason.NO_PIXEL_DATA
    ds = pydicom.dcmread(samples / "ct-3slice" / "01.dcm")
    ds.PhotometricInterpretation = "HSV"
    ds.save_as(tmp_path / "hsv.dcm")
    assert _reason(tmp_path / "hsv.dcm") is StudyErrorReason.UNSUPPORTED_PHOTOMETRIC


def test_missing_decoder_names_the_fix(samples: Path, tmp_path: Path) -> None:
    ds = pydicom.dcmread(samples / "cr-chest-pa.dcm")
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.100"  # MPEG2: no pixel decoder exists for it
    ds.save_as(tmp_path / "mpeg.dcm")
    with pytest.raises(StudyError) as info:
        load_study(tmp_path / "mpeg.dcm")
    assert info.value.reason is StudyErrorReason.DECODER_MISSING
    assert "MPEG2" in info.value.message


def test_size_limits(samples: Path, tmp_path: Path) -> None:
    path = samples / "cr-chest-pa.dcm"
    assert _reason(path, limits=StudyLimits(max_bytes=10_000)) is StudyErrorReason.TOO_LARGE
    assert _reason(path, limits=StudyLimits(max_pixels=1000)) is StudyErrorReason.TOO_LARGE
    assert _reason(samples / "ct-3slice", limits=StudyLimits(max_frames=2)) is StudyErrorReason.TOO_LARGE
    big = Image.fromarray(np.zeros((600, 600), dtype=np.uint8))
    big.save(tmp_path / "big.png")
    assert _reason(tmp_path / "big.png", limits=StudyLimits(max_pixels=100_000)) is StudyErrorReason.TOO_LARGE


def test_zip_slip_bomb_and_member_count(samples: Path, tmp_path: Path) -> None:
    slip = tmp_path / "slip.zip"
    with zipfile.ZipFile(slip, "w") as zf:
        zf.write(samples / "cr-chest-pa.dcm", "../../etc/evil.dcm")
    assert _reason(slip) is StudyErrorReason.UNSAFE_ARCHIVE
    absolute = tmp_path / "absolute.zip"
    with zipfile.ZipFile(absolute, "w") as zf:
        zf.writestr(zipfile.ZipInfo("/tmp/evil.dcm"), (samples / "cr-chest-pa.dcm").read_bytes())
    assert _reason(absolute) is StudyErrorReason.UNSAFE_ARCHIVE
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("zeros.dcm", b"\0" * (20 * 1024 * 1024))
    assert _reason(bomb) is StudyErrorReason.TOO_LARGE
    many = tmp_path / "many.zip"
    with zipfile.ZipFile(many, "w") as zf:
        for i in range(12):
            zf.writestr(f"{i}.txt", b"x")
    assert _reason(many, limits=StudyLimits(max_zip_members=10)) is StudyErrorReason.TOO_LARGE
    broken = tmp_path / "broken.zip"
    broken.write_bytes(b"PK\x03\x04" + b"\x00" * 40)
    assert _reason(broken) is StudyErrorReason.UNREADABLE


def test_png_8_and_16_bit_and_jpeg(data_dir: Path, tmp_path: Path) -> None:
    png8 = load_study(data_dir / "cxr-jsrt-scr" / "images" / "JPCNN001.png")
    assert png8.shape == (1, 512, 512) and png8.voi_source == "8-bit raster"
    assert png8.pixel_spacing_mm is None and png8.source_format == "png"
    ramp = (np.linspace(0, 4095, 256 * 256).reshape(256, 256)).astype(np.uint16)
    Image.fromarray(ramp).save(tmp_path / "ramp16.png")
    png16 = load_study(tmp_path / "ramp16.png")
    assert png16.metadata.bits_stored == 16
    assert png16.pixels.min() == 0.0 and png16.pixels.max() == 1.0
    jpeg_dir = data_dir / "cxr-pediatric-pneumonia" / "train" / "PNEUMONIA"
    jpeg = load_study(next(jpeg_dir.iterdir()))
    assert jpeg.source_format == "jpeg" and jpeg.rgb is None  # grey stored as RGB is grey
    colour = np.zeros((64, 64, 3), dtype=np.uint8)
    colour[..., 0] = 200
    Image.fromarray(colour).save(tmp_path / "red.jpg")
    assert load_study(tmp_path / "red.jpg").rgb is not None


SEED_FILES = ["ct-3slice/01.dcm", "cr-chest-pa.dcm"]


def _mutations() -> st.SearchStrategy[list[tuple[int, int]]]:
    return st.lists(st.tuples(st.integers(0, 10**9), st.integers(0, 255)), min_size=1, max_size=12)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.sampled_from(SEED_FILES), edits=_mutations(), cut=st.one_of(st.none(), st.integers(0, 10**9)))
def test_mutated_real_dicom_gives_study_or_study_error(samples: Path, tmp_path: Path, seed: str, edits, cut) -> None:
    data = bytearray((samples / seed).read_bytes())
    header_end = 2048  # most mutations land in the header, where parsers are most fragile
    for position, value in edits:
        data[position % header_end if position % 3 else position % len(data)] = value
    if cut is not None:
        data = data[: cut % len(data)]
    path = tmp_path / "mutated.dcm"
    path.write_bytes(bytes(data))
    try:
        study = load_study(path, limits=StudyLimits(max_pixels=20_000_000))
    except StudyError as err:
        assert isinstance(err.reason, StudyErrorReason) and err.message
        return
    assert isinstance(study, Study)
    assert study.pixels.ndim == 3 and study.pixels.dtype == np.float32
    assert np.isfinite(study.pixels).all()
    assert float(study.pixels.min()) >= 0.0 and float(study.pixels.max()) <= 1.0


def test_mutated_zip_bytes(samples: Path, tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for path in sorted((samples / "ct-3slice").iterdir()):
            zf.write(path, path.name)
    data = bytearray(buffer.getvalue())
    rng = np.random.default_rng(0)
    for _ in range(30):
        mutated = bytearray(data)
        for position in rng.integers(0, len(mutated), size=8):
            mutated[position] = int(rng.integers(0, 256))
        (tmp_path / "m.zip").write_bytes(bytes(mutated))
        with contextlib.suppress(StudyError):
            load_study(tmp_path / "m.zip")
