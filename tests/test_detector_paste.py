"""Copy-paste nodule augmentation on real JSRT images: the lifted nodule is the nodule (not its background), the paste
puts it where the targets say, and the sampler's default recipe is unchanged."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tools.detector.data import Case, load_cases
from tools.detector.paste import lift_nodule, paste
from tools.detector.targets import CropSampler


def _image(data_dir: Path, name: str) -> np.ndarray:
    with Image.open(data_dir / "cxr-jsrt-scr" / "images" / f"{name}.png") as im:
        return np.asarray(im.convert("L"), dtype=np.uint8)


def _image_at(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("L")) > 127


@pytest.fixture(scope="module")
def cases(data_dir: Path) -> dict[str, Case]:
    return {c.name: c for c in load_cases(data_dir / "cxr-jsrt-scr")}


def test_lifted_nodule_is_brighter_than_its_surroundings_and_fades_out(data_dir: Path,
                                                                       cases: dict[str, Case]) -> None:
    case = cases["JPCLN001"]  # subtlety 5, 15 mm
    patch = lift_nodule(_image(data_dir, case.name), case.x, case.y, case.radius_px)  # type: ignore[arg-type]
    res = patch.residual
    half = res.shape[0] // 2
    ys, xs = np.mgrid[-half : half + 1, -half : half + 1]
    r = np.hypot(xs, ys) / case.radius_px
    assert res[r <= 0.5].mean() > 0.03  # an obvious nodule stands out by several grey levels of 255
    assert res[r <= 0.5].mean() > 4 * abs(res[(r > 1.1) & (r < 1.5)].mean())
    assert np.abs(res[0]).max() == 0 and np.abs(res[:, -1]).max() == 0  # nothing of the patch border is pasted


def test_paste_adds_the_nodule_at_the_requested_point(data_dir: Path, cases: dict[str, Case]) -> None:
    donor = cases["JPCLN001"]
    patch = lift_nodule(_image(data_dir, donor.name), donor.x, donor.y, donor.radius_px)  # type: ignore[arg-type]
    target = _image(data_dir, "JPCNN001").astype(np.float32) / 255  # a negative image
    out = paste(target, patch, cx=150, cy=200, rng=np.random.default_rng(0), contrast=(1.0, 1.0))
    diff = out - target
    changed = np.argwhere(np.abs(diff) > 1e-6)
    centre = changed.mean(axis=0)
    assert np.hypot(centre[0] - 200, centre[1] - 150) < 3
    assert np.hypot(*(changed.max(axis=0) - changed.min(axis=0))) <= 2 * 1.6 * donor.radius_px * np.sqrt(2) + 2
    assert diff[195:206, 145:156].mean() > 0.02  # the nodule (not a flat offset) sits at the point
    edge = paste(target, patch, cx=2, cy=2, rng=np.random.default_rng(0))  # cut at the image border, no error
    assert edge.shape == target.shape and edge.min() >= 0 and edge.max() <= 1


def test_sampler_targets_the_pasted_nodule_and_default_recipe_pastes_nothing(data_dir: Path,
                                                                             cases: dict[str, Case]) -> None:
    names = ["JPCLN001", "JPCLN002", "JPCNN001", "JPCNN002"]
    sub = [cases[n] for n in names]
    images = np.stack([_image(data_dir, n) for n in names])
    masks = data_dir / "cxr-jsrt-scr" / "masks"
    lungs = np.stack([_image_at(masks / "right_lung" / f"{n}.png") | _image_at(masks / "left_lung" / f"{n}.png")
                      for n in names])
    plain = CropSampler(images, lungs, sub, crop=256, seed=1)
    assert not plain.donors
    for _ in range(5):
        _, heat, _, weight = plain.sample(2)  # a negative image: no peak without pasting
        assert heat.max() < 1 and weight.sum() == 0

    pasting = CropSampler(images, lungs, sub, crop=256, seed=1, paste_probability=1.0)
    assert sorted(pasting.donors) == [0, 1]
    peaks = 0
    for _ in range(10):
        x, heat, log_size, weight = pasting.sample(3)  # negative image, every crop gets another image's nodule
        if heat.max() == 1:
            peaks += 1
            assert weight.sum() > 0 and np.all(log_size[weight > 0] > 0)
        assert x.shape == (256, 256) and x.min() >= 0 and x.max() <= 1
    assert peaks >= 8  # a paste can only miss when its Gaussian centre falls just outside the crop
