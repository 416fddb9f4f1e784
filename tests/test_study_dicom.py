"""Pixel correctness of the DICOM loader on real files."""

from __future__ import annotations

import io
import random
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.uid import RLELossless, generate_uid

from tools.study import StudyError, StudyErrorReason, StudyLimits, load_study


def test_cr_chest_pa_jpeg_baseline(samples: Path) -> None:
    study = load_study(samples / "cr-chest-pa.dcm")
    assert study.shape == (1, 1024, 1024)
    assert study.pixels.dtype == np.float32
    assert study.pixels.min() >= 0.0 and study.pixels.max() <= 1.0
    assert study.modality == "CR"
    assert study.metadata.view_position == "PA"
    assert study.pixel_spacing_mm == (0.168, 0.168)
    assert study.spacing_source == "PixelSpacing"
    assert study.metadata.transfer_syntax == "JPEG Baseline (Process 1)"


def test_monochrome1_is_displayed_inverted(samples: Path) -> None:
    # The two samples store the same values; only the photometric interpretation differs.
    mono2 = load_study(samples / "cr-chest-pa.dcm")
    mono1 = load_study(samples / "cr-chest-monochrome1.dcm")
    np.testing.assert_allclose(mono1.pixels, 1.0 - mono2.pixels, atol=1e-6)


def test_lossless_transfer_syntaxes_decode_identically(testdata) -> None:
    pairs = [("RG1_UNCR.dcm", "RG1_J2KR.dcm"), ("MR_small.dcm", "MR_small_RLE.dcm"),
             ("emri_small.dcm", "emri_small_jpeg_ls_lossless.dcm"), ("MR_small.dcm", "MR_small_jpeg_ls_lossless.dcm")]
    for plain, compressed in pairs:
        a, b = load_study(testdata(plain)), load_study(testdata(compressed))
        assert np.array_equal(a.pixels, b.pixels), (plain, compressed)
        assert np.array_equal(a.modality_values, b.modality_values)
        assert a.id == b.id


def test_rg1_monochrome1_window_and_unknown_spacing(testdata) -> None:
    study = load_study(testdata("RG1_UNCR.dcm"))
    assert study.shape == (1, 1955, 1841)
    assert study.metadata.photometric == "MONOCHROME1"
    assert study.voi_source == "WindowCenter/WindowWidth"
    raw = pydicom.dcmread(testdata("RG1_UNCR.dcm")).pixel_array.astype(np.float64)
    # MONOCHROME1: larger stored values are displayed darker.
    assert np.corrcoef(raw.ravel()[::97], study.pixels.ravel()[::97])[0, 1] < -0.9
    assert study.pixel_spacing_mm is None
    assert any("pixels, not millimetres" in w for w in study.warnings)


def test_rle_roundtrip_encoded_here(samples: Path, tmp_path: Path) -> None:
    ds = pydicom.dcmread(samples / "ct-3slice" / "01.dcm")
    ds.compress(RLELossless)
    ds.save_as(tmp_path / "rle.dcm")
    plain, rle = load_study(samples / "ct-3slice" / "01.dcm"), load_study(tmp_path / "rle.dcm")
    assert np.array_equal(plain.modality_values, rle.modality_values)


def test_ct_modality_lut_signed_16_bit(samples: Path) -> None:
    ds = pydicom.dcmread(samples / "ct-3slice" / "01.dcm")
    study = load_study(samples / "ct-3slice" / "01.dcm")
    expected = ds.pixel_array.astype(np.float32) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    np.testing.assert_array_equal(study.modality_values[0], expected)
    assert study.metadata.signed is True
    assert study.window == (40.0, 400.0)
    # Soft-tissue window 40/400: -160 HU and below is black, 240 HU and above is white.
    hu = study.modality_values[0]
    assert np.all(study.pixels[0][hu <= -161] == 0.0)
    assert np.all(study.pixels[0][hu >= 241] == 1.0)


def test_voi_lut_sequence(testdata) -> None:
    study = load_study(testdata("vlut_04.dcm"))
    assert study.voi_source == "VOI LUT Sequence"
    assert 0.0 <= study.pixels.min() < study.pixels.max() <= 1.0


def test_multiframe_and_colour(testdata) -> None:
    frames = load_study(testdata("emri_small.dcm"))
    assert frames.shape == (10, 64, 64)
    rgb = load_study(testdata("SC_rgb.dcm"))
    assert rgb.rgb is not None and rgb.rgb.shape == (1, 100, 100, 3)
    ybr = load_study(testdata("SC_ybr_full_uncompressed.dcm"))
    np.testing.assert_allclose(ybr.rgb, rgb.rgb, atol=0.03)  # YBR is converted to RGB
    rgb16 = load_study(testdata("SC_rgb_16bit_2frame.dcm"))
    assert rgb16.rgb.shape == (2, 100, 100, 3) and rgb16.rgb.max() <= 1.0
    palette = load_study(testdata("OT-PAL-8-face.dcm"))
    assert palette.rgb is not None and palette.metadata.photometric == "PALETTE COLOR"


def test_ct_folder_becomes_sorted_volume(samples: Path) -> None:
    study = load_study(samples / "ct-3slice")
    assert study.shape == (3, 512, 512)
    assert study.slice_spacing_mm == pytest.approx(1.0)
    positions = [float(pydicom.dcmread(samples / "ct-3slice" / f"0{i}.dcm").ImagePositionPatient[2]) for i in (1, 2, 3)]
    order = np.argsort(positions)  # ascending along the slice normal
    first = load_study(samples / "ct-3slice" / f"0{order[0] + 1}.dcm")
    np.testing.assert_array_equal(study.modality_values[0], first.modality_values[0])


def test_zip_with_shuffled_names_matches_folder(samples: Path, tmp_path: Path) -> None:
    names = ["c.dcm", "a.dcm", "b.dcm"]
    random.Random(1).shuffle(names)
    archive = tmp_path / "series.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for name, src in zip(names, sorted((samples / "ct-3slice").iterdir()), strict=True):
            zf.write(src, f"export/{name}")
        zf.writestr("export/README.txt", "not dicom")
    from_zip, from_folder = load_study(archive), load_study(samples / "ct-3slice")
    assert from_zip.id == from_folder.id
    assert any("without an image were skipped" in w for w in from_zip.warnings)


def test_several_uploaded_files_are_one_series(samples: Path, tmp_path: Path) -> None:
    """A browser uploads a series as separate files (reversed order here): same volume as the folder."""
    files = sorted((samples / "ct-3slice").iterdir(), reverse=True)
    assert load_study(files).id == load_study(samples / "ct-3slice").id
    assert load_study(files[:1]).id == load_study(files[0]).id
    png = tmp_path / "photo.png"
    Image.new("L", (8, 8)).save(png)
    with pytest.raises(StudyError) as info:
        load_study([png, png])
    assert info.value.reason is StudyErrorReason.NOT_AN_IMAGE and "on its own" in info.value.message
    with pytest.raises(StudyError) as info:
        load_study([files[0], tmp_path / "gone.dcm"])
    assert info.value.reason is StudyErrorReason.NOT_FOUND
    with pytest.raises(StudyError) as info:
        load_study(files, limits=StudyLimits(max_bytes=1000))
    assert info.value.reason is StudyErrorReason.TOO_LARGE


def test_several_series_ask_for_a_choice(samples: Path, tmp_path: Path) -> None:
    folder = tmp_path / "two-series"
    shutil.copytree(samples / "ct-3slice", folder)
    other = pydicom.dcmread(folder / "01.dcm")
    other.SeriesInstanceUID = generate_uid()
    other.SOPInstanceUID = generate_uid()
    other.save_as(folder / "other.dcm")
    with pytest.raises(StudyError) as info:
        load_study(folder)
    assert info.value.reason is StudyErrorReason.MULTIPLE_SERIES
    assert len(info.value.choices) == 2
    chosen = next(c.split()[0] for c in info.value.choices if "3 image" in c)
    assert load_study(folder, series=chosen).shape == (3, 512, 512)


def test_imager_pixel_spacing_carries_caveat(samples: Path, tmp_path: Path) -> None:
    ds = pydicom.dcmread(samples / "cr-chest-pa.dcm")
    del ds.PixelSpacing
    ds.ImagerPixelSpacing = [0.2, 0.2]
    ds.save_as(tmp_path / "imager.dcm")
    study = load_study(tmp_path / "imager.dcm")
    assert study.pixel_spacing_mm == (0.2, 0.2)
    assert study.spacing_source == "ImagerPixelSpacing"
    assert any("magnification" in w for w in study.warnings)


def test_content_id_is_stable_and_input_sensitive(samples: Path) -> None:
    a = load_study(samples / "cr-chest-pa.dcm")
    b = load_study(io_copy := samples / "cr-chest-pa.dcm")
    assert a.id == b.id and len(a.id) == 64
    assert a.id != load_study(samples / "cr-chest-monochrome1.dcm").id
    assert io_copy.exists()


def test_segmentation_object_is_refused_clearly(samples: Path) -> None:
    with pytest.raises(StudyError) as info:
        load_study(samples / "liver.dcm")
    assert info.value.reason is StudyErrorReason.NON_IMAGE_OBJECT
    assert "Segmentation" in info.value.message


def test_bytes_of_zip_in_memory_are_not_written_anywhere(samples: Path, tmp_path: Path) -> None:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(samples / "cr-chest-pa.dcm", "one.dcm")
    (tmp_path / "one.zip").write_bytes(archive.getvalue())
    load_study(tmp_path / "one.zip")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one.zip"]
