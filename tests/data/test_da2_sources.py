"""Depth Anything V2's metric training data: the Hypersim and Virtual KITTI 2 split-file sources (metres, validity,
errors) and the cover-resize-and-crop that brings their frames to the network size, against the official formulas
and PyTorch's resizes (fixtures: tests/data/conftest.py ``da2_roots``)."""

import sys

import numpy as np
import pytest
import torch
from conftest import DA2_H, DA2_W, hypersim_distance, vkitti2_centimetres

from data_pipelines.config import AugmentConfig, DataConfig, SourceConfig
from data_pipelines.errors import DataError, ListFormatError, MissingFileError
from data_pipelines.pipeline import build_train
from data_pipelines.sources import DATASETS, HypersimSplitSource, VKITTI2SplitSource, make_source
from data_pipelines.sources.zero_shot import hypersim_distance_to_depth
from data_pipelines.transforms import CoverResizeCrop, cover_size

F = 886.81


def _planar(distance: np.ndarray) -> np.ndarray:
    """The official conversion written out in float64: r / |(x, y, f)| * f on the image plane's pixel centres."""
    h, w = distance.shape
    x = np.linspace(-0.5 * w + 0.5, 0.5 * w - 0.5, w)[None, :]
    y = np.linspace(-0.5 * h + 0.5, 0.5 * h - 0.5, h)[:, None]
    return distance / np.sqrt(x * x + y * y + F * F) * F


def test_hypersim_ray_distance_becomes_planar_depth(da2_roots):
    src = HypersimSplitSource(da2_roots["hypersim"], "train.txt")
    assert len(src) == 2 and src.info.train_range == (1e-3, 20.0) and src.info.domain == 0
    for i in range(2):  # frame 0 from .hdf5 (h5py), frame 1 from the same array as .npy
        ex = src[i]
        distance = hypersim_distance(i).astype(np.float16).astype(np.float64)
        expected = _planar(distance)
        assert ex["image"].shape == (DA2_H, DA2_W, 3) and ex["focal"] == pytest.approx(F)
        assert not ex["valid"][0, 0] and ex["depth"][0, 0] == 0  # NaN: nothing rendered
        keep = ~np.isnan(expected)
        np.testing.assert_array_equal(ex["valid"], keep)  # 25 m at (1, 1) is valid here; the range drops it later
        np.testing.assert_allclose(ex["depth"][keep], expected[keep], rtol=1e-6)
    # One value by hand: row 5, column 9 of frame 0 is 3 + 0.25 * 9 = 5.25 m along the ray through (-4.5, -1.5).
    assert src[0]["depth"][5, 9] == pytest.approx(5.25 * F / np.sqrt(4.5**2 + 1.5**2 + F**2), rel=1e-6)
    # At Hypersim's own 1024x768 the plane is the official one: corner (-511.5, -383.5), centre (-0.5, -0.5).
    full = hypersim_distance_to_depth(np.full((768, 1024), 10.0, np.float32))
    np.testing.assert_allclose(full, _planar(np.full((768, 1024), 10.0)), rtol=1e-6)
    assert full[0, 0] == pytest.approx(10.0 * F / np.sqrt(511.5**2 + 383.5**2 + F**2), rel=1e-6)


def test_vkitti2_centimetres_and_sky(da2_roots):
    src = VKITTI2SplitSource(da2_roots["vkitti2"], "train.txt")
    assert len(src) == 2 and src.info.train_range == (1e-3, 80.0) and not src.info.kb_crop
    for i in range(2):
        ex = src[i]
        stored = vkitti2_centimetres(i)
        metres = stored.astype(np.float32) / np.float32(100.0)
        expected_valid = (stored > 0) & (metres <= 80.0)
        np.testing.assert_array_equal(ex["valid"], expected_valid)
        np.testing.assert_array_equal(ex["depth"], np.where(expected_valid, metres, 0.0))
        assert ex["focal"] == pytest.approx(725.0087) and ex["domain"] == 1
    ex = src[1]
    assert ex["depth"][5, 5] == pytest.approx(13.34) and ex["depth"][0, 1] == 80.0  # 8000 cm: the last valid
    assert not ex["valid"][0, 2] and not ex["valid"][1, 1]  # 80.01 m and the sky's 655.35 m


def test_missing_files_and_bad_lines_are_named(da2_roots, tmp_path):
    with open(f"{da2_roots['vkitti2']}/train.txt") as f:
        good = f.read().splitlines()[0]
    listed = tmp_path / "train.txt"
    listed.write_text(f"{good}\nScene01/clone/frames/rgb/Camera_0/rgb_00007.jpg gone/depth_00007.png\n")
    src = make_source(SourceConfig("vkitti2_da2", root=da2_roots["vkitti2"], list_file=str(listed)), training=True)
    with pytest.raises(MissingFileError, match=r"2 listed file\(s\) do not exist:[\s\S]*rgb_00007.jpg "
                                               rf"\({listed}:2\)[\s\S]*gone/depth_00007.png \({listed}:2\)"):
        src.check_files()
    with pytest.raises(MissingFileError, match="gone/depth_00007.png"):  # the pipeline checks before it is built
        build_train(DataConfig(sources=(SourceConfig("vkitti2_da2", root=da2_roots["vkitti2"],
                                                     list_file=str(listed)),), batch_size=1), seed=0)
    listed.write_text(f"{good}\nonly_an_image.jpg\n")
    with pytest.raises(ListFormatError, match=rf"{listed}:2: expected 'IMAGE DEPTH'.*got 1 field"):
        VKITTI2SplitSource(da2_roots["vkitti2"], str(listed))
    with pytest.raises(ValueError, match="needs list_file"):
        make_source(SourceConfig("hypersim_da2", root=da2_roots["hypersim"]), training=True)


def test_hdf5_depth_without_h5py_says_what_to_install(da2_roots, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "h5py", None)  # import h5py now raises ImportError
    with pytest.raises(DataError, match=r"needs the h5py package \(pip install h5py\)"):
        HypersimSplitSource(da2_roots["hypersim"], "train.txt")
    with open(f"{da2_roots['hypersim']}/train.txt") as f:
        npy_only = tmp_path / "npy.txt"
        npy_only.write_text(f.read().splitlines()[1] + "\n")  # the pre-converted .npy row needs no h5py
    assert len(HypersimSplitSource(da2_roots["hypersim"], str(npy_only))) == 1


def test_cover_size_is_the_official_keep_aspect_lower_bound():
    assert cover_size(768, 1024, (518, 518), 14) == (518, 686)  # Hypersim
    assert cover_size(375, 1242, (518, 518), 14) == (518, 1722)  # Virtual KITTI 2: 1715.6 -> 123 * 14
    assert cover_size(480, 640, (518, 518), 14) == (518, 686)  # the synthetic rooms
    assert cover_size(1000, 500, (518, 518), 14) == (1036, 518)
    # Both sides scale to 45: the height rounds to 42 (>= 30), the width's 42 < 45 rounds up to 49.
    assert cover_size(20, 20, (30, 45), 7) == (42, 49)


def test_cover_crop_is_torch_bicubic_and_nearest_in_a_random_window():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (30, 41, 3), dtype=np.uint8)
    depth = rng.uniform(1, 9, (30, 41)).astype(np.float32)
    valid = rng.random((30, 41)) > 0.2
    crop = CoverResizeCrop((21, 21), 7)
    out = crop.random_map({"image": image, "depth": depth, "valid": valid}, np.random.default_rng(5))
    full = cover_size(30, 41, (21, 21), 7)
    assert full == (21, 28)
    draw = np.random.default_rng(5)
    top, left = int(draw.integers(0, full[0] - 21 + 1)), int(draw.integers(0, full[1] - 21 + 1))
    window = (slice(top, top + 21), slice(left, left + 21))
    as_torch = torch.from_numpy(image.astype(np.float32) / 255.0).permute(2, 0, 1)[None]
    bicubic = torch.nn.functional.interpolate(as_torch, full, mode="bicubic", align_corners=False)
    bicubic = bicubic[0].permute(1, 2, 0).numpy()
    assert out["image"].shape == (21, 21, 3) and out["image"].dtype == np.float32
    np.testing.assert_allclose(out["image"], bicubic[window], atol=2e-6)  # not clipped: the kernel overshoots
    nearest = torch.nn.functional.interpolate(torch.from_numpy(depth)[None, None], full, mode="nearest")[0, 0]
    np.testing.assert_array_equal(out["depth"], nearest.numpy()[window])
    mask = torch.nn.functional.interpolate(torch.from_numpy(valid.astype(np.float32))[None, None], full,
                                           mode="nearest")[0, 0].numpy() > 0.5
    np.testing.assert_array_equal(out["valid"], mask[window])


def test_training_batches_are_cropped_image_and_depth(da2_roots):
    """hypersim_da2 through build_train with the V2 geometry: 14x28 frames cover 14x14 at scale 1, so each batch row
    is a 14-column window of the planar depth, masked to the recipe's (0.001, 20) m."""
    cfg = DataConfig(sources=(SourceConfig("hypersim_da2", root=da2_roots["hypersim"], list_file="train.txt"),),
                     batch_size=2, image_size=(14, 14), train_resize="cover_crop", num_epochs=1, shuffle=False,
                     augment=AugmentConfig(rotate_degrees=0, photometric_prob=0, flip_prob=0))
    batch = next(iter(build_train(cfg, seed=0, process_index=0, process_count=1)))
    assert batch["image"].shape == (2, 14, 14, 3) and batch["depth"].shape == batch["valid"].shape == (2, 14, 14)
    for i in range(2):
        planar = hypersim_distance_to_depth(hypersim_distance(i).astype(np.float16).astype(np.float32))
        windows = [left for left in range(DA2_W - 13) if np.allclose(
            np.nan_to_num(planar[:, left:left + 14]) * batch["valid"][i], batch["depth"][i], rtol=1e-6)]
        assert len(windows) == 1, windows
        kept = planar[:, windows[0]:windows[0] + 14]
        np.testing.assert_array_equal(batch["valid"][i], np.isfinite(kept) & (kept > 1e-3) & (kept < 20.0))


def test_both_rows_are_training_sets_of_the_table():
    for name in ("hypersim_da2", "vkitti2_da2"):
        assert DATASETS[name].kind == "split"
    assert DATASETS["vkitti2_da2"].protocol is None  # the official VKITTI recipe validates on KITTI
    assert DATASETS["hypersim_da2"].protocol.scoring == "da2"  # splits/hypersim/val.txt
    with pytest.raises(ValueError, match="train_resize must be one of"):
        DataConfig(sources=(SourceConfig("hypersim_da2"),), train_resize="crop")
