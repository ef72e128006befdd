"""Joint transforms keep image and depth aligned, and each reproduces its official parameters."""

import numpy as np
import pytest

from data_pipelines.resize import resize_bilinear
from data_pipelines.sources.base import make_example
from data_pipelines.transforms import (
    CenterCropOrPad,
    Finalize,
    KBCrop,
    PhotometricJitter,
    RandomCrop,
    RandomHorizontalFlip,
    RandomRotate,
    RemoveWhiteBorder,
    ResizeImage,
    kb_crop_box,
    white_border_box,
)
from data_pipelines.transforms.photometric import apply_lut, jitter_lut


def coded_example(h=48, w=64):
    """Image R = 4 * column, G = 5 * row; depth = 1 + 0.1 * column + 0.05 * row metres (all valid)."""
    yy, xx = np.mgrid[0:h, 0:w]
    image = np.stack([4 * xx, 5 * yy, np.full_like(xx, 100)], axis=-1).astype(np.uint8)
    depth = (1.0 + 0.1 * xx + 0.05 * yy).astype(np.float32)
    return make_example(image, depth, np.ones((h, w), bool), 500.0, 0)


def decoded_depth(image):
    """The depth the coded image implies at each pixel."""
    x, y = image[..., 0].astype(np.float64) / 4, image[..., 1].astype(np.float64) / 5
    return 1.0 + 0.1 * x + 0.05 * y


def _misalignment(ex):
    v = ex["valid"] & (ex["image"][..., 2] > 90)  # away from the zero-filled rotation corners
    return np.abs(decoded_depth(ex["image"])[v] - ex["depth"][v]).max()


def test_flip_crop_keep_alignment_exactly():
    ex = coded_example()
    for seed in range(6):
        rng = np.random.default_rng(seed)
        out = RandomCrop((32, 40)).random_map(RandomHorizontalFlip(0.5).random_map(ex, rng), rng)
        assert out["image"].shape == (32, 40, 3) and out["depth"].shape == (32, 40)
        assert _misalignment(out) < 1e-5
    flipped = RandomHorizontalFlip(1.0).random_map(ex, np.random.default_rng(0))
    np.testing.assert_array_equal(flipped["depth"], ex["depth"][:, ::-1])
    assert RandomHorizontalFlip(0.0).random_map(ex, np.random.default_rng(0)) is ex


def test_rotation_keeps_alignment_and_invalidates_corners():
    ex = coded_example()
    rotated = RandomRotate(1.0).random_map(ex, np.random.default_rng(3))
    assert rotated["image"].shape == ex["image"].shape and rotated["depth"].dtype == np.float32
    # Bilinear image vs nearest depth: at most half a pixel apart in each axis (0.05 + 0.025 m).
    assert 0 < _misalignment(rotated) <= 0.1  # plus the uint8 quantisation of the coded image
    big = RandomRotate(30.0).random_map(ex, np.random.default_rng(0))  # angle = (u - 0.5) * 60, u ~ 0.64
    for corner in [(0, 0), (0, -1), (-1, 0), (-1, -1)]:
        assert not big["valid"][corner] and big["depth"][corner] == 0
        assert np.all(big["image"][corner] == 0)
    assert big["valid"].mean() > 0.5
    assert _misalignment(big) <= 0.1


def test_rotation_angle_is_the_official_draw():
    # angle = (u - 0.5) * 2 * degree with u ~ U[0, 1): PIL rotation (counter-clockwise) by exactly that.
    from PIL import Image

    ex = coded_example()
    for seed in range(3):
        u = np.random.default_rng(seed).random()
        out = RandomRotate(1.0).random_map(ex, np.random.default_rng(seed))
        expected = Image.fromarray(ex["depth"]).rotate((u - 0.5) * 2.0, resample=Image.Resampling.NEAREST)
        np.testing.assert_array_equal(out["depth"], np.asarray(expected))


def test_kb_crop_offsets_match_the_official_formula(kitti_root):
    assert kb_crop_box(375, 1242) == (23, 13)
    assert kb_crop_box(370, 1224) == (18, 4)
    assert kb_crop_box(374, 1238) == (22, 11)
    assert kb_crop_box(376, 1241) == (24, 12)
    h, w = 375, 1242
    yy, xx = np.mgrid[0:h, 0:w]
    image = np.stack([xx % 256, yy % 256, np.zeros_like(xx)], -1).astype(np.uint8)
    depth = (xx + 1000.0 * yy).astype(np.float32)
    out = KBCrop().map(make_example(image, depth, np.ones((h, w), bool), 721.5, 1))
    assert out["image"].shape == (352, 1216, 3) and out["valid"].shape == (352, 1216)
    assert tuple(out["image"][0, 0, :2]) == (13, 23)
    assert out["depth"][0, 0] == 13 + 1000 * 23 and out["depth"][-1, -1] == (13 + 1215) + 1000 * 374


def test_photometric_lut_equals_the_float_formula():
    rng_img = np.random.default_rng(1)
    image = rng_img.integers(0, 256, (16, 20, 3), dtype=np.uint8)
    ex = make_example(image, np.ones((16, 20), np.float32), np.ones((16, 20), bool), 0.0, 0)
    t = PhotometricJitter(1.0, (0.9, 1.1), (0.75, 1.25), (0.9, 1.1))
    out = t.random_map(ex, np.random.default_rng(7))
    ref = np.random.default_rng(7)
    ref.random()  # the coin
    g, b = ref.uniform(0.9, 1.1), ref.uniform(0.75, 1.25)
    c = ref.uniform(0.9, 1.1, 3)
    expected = np.clip((image / 255.0) ** g * b * c, 0, 1)
    assert out["image"].dtype == np.float32
    np.testing.assert_allclose(out["image"], expected, atol=2e-6)
    np.testing.assert_array_equal(out["depth"], ex["depth"])  # image only
    assert PhotometricJitter(0.0).random_map(ex, np.random.default_rng(0)) is ex
    applied = [PhotometricJitter(0.5).random_map(ex, np.random.default_rng(s)) is not ex for s in range(200)]
    assert 70 < sum(applied) < 130  # probability 0.5
    lut = jitter_lut(1.0, 1.0, np.ones(3))
    np.testing.assert_allclose(apply_lut(image, lut), image / 255.0, atol=1e-7)


def test_resize_bilinear_hand_values():
    x = np.array([[0.0, 10.0], [20.0, 30.0]], np.float32)
    out = resize_bilinear(x, (3, 3), align_corners=True)
    np.testing.assert_allclose(out, [[0, 5, 10], [10, 15, 20], [20, 25, 30]], atol=1e-6)
    row = resize_bilinear(np.array([[0.0, 10.0]], np.float32), (1, 4), align_corners=False)
    np.testing.assert_allclose(row, [[0.0, 2.5, 7.5, 10.0]], atol=1e-6)
    img = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    out = ResizeImage((24, 32)).map({"image": img})["image"]
    assert out.dtype == np.float32 and out.shape == (24, 32, 3) and 0 <= out.min() and out.max() <= 1
    assert out[0, 0, 0] == pytest.approx(img[0, 0, 0] / 255)  # align_corners: corners are kept
    assert out[-1, -1, 2] == pytest.approx(img[-1, -1, 2] / 255)


def test_resize_matches_the_model_side_resize():
    import jax.numpy as jnp

    from zoejax.ops.resize import resize_bilinear as model_resize

    img = np.random.default_rng(0).random((1, 30, 41, 3), dtype=np.float32)
    for align in (True, False):
        ref = np.asarray(model_resize(jnp.asarray(img), (17, 64), align_corners=align))[0]
        np.testing.assert_allclose(resize_bilinear(img[0], (17, 64), align_corners=align), ref, atol=2e-6)


def test_white_border_removal():
    # The scan counts a row/column as border while > 10 % of it is within 5 grey levels of white, so the
    # bands are sized to stay under 10 % of the perpendicular lines.
    h, w = 200, 80
    image = np.full((h, w, 3), 90, np.uint8)
    image[:12] = 255  # 6 % of each column
    image[:, -7:] = 252  # 8.75 % of each row
    image[20::40, 5:9] = 255  # with the top band, 8.5 % of those columns: not a border
    assert white_border_box(image) == (12, h - 5, 5, w - 7)
    assert white_border_box(np.full((h, w, 3), 255, np.uint8))[0] == 21  # stops once more than 20 px in
    depth = np.full((h, w), 2.0, np.float32)
    out = RemoveWhiteBorder().map(make_example(image, depth, np.ones((h, w), bool), 0.0, 0))
    assert out["image"].shape == image.shape and out["depth"].shape == depth.shape
    expected = np.zeros((h, w), bool)
    expected[12:h - 5, 5:w - 7] = True
    np.testing.assert_array_equal(out["valid"], expected)
    np.testing.assert_array_equal(out["depth"], np.where(expected, 2.0, 0.0))
    assert np.all(out["image"][:, 10:] == 90)  # the white bands are replaced by reflected content


def test_center_crop_or_pad_marks_padding_invalid():
    ex = coded_example(30, 70)
    out = CenterCropOrPad((40, 64)).map(ex)
    assert out["image"].shape == (40, 64, 3) and out["depth"].shape == (40, 64)
    assert not out["valid"][:5].any() and not out["valid"][35:].any() and out["valid"][5:35].all()
    assert out["depth"][5, 0] == ex["depth"][0, 3]


def test_finalize_applies_the_strict_range():
    depth = np.array([[0.0, 1e-3, 0.5], [10.0, 9.99, 12.0]], np.float32)
    valid = np.array([[True, True, True], [True, True, False]])
    ex = make_example(np.zeros((2, 3, 3), np.uint8), depth, valid, 518.0, 1)
    out = Finalize(1e-3, 10.0).map(ex)
    np.testing.assert_array_equal(out["valid"], [[False, False, True], [False, True, False]])
    np.testing.assert_array_equal(out["depth"], np.where(out["valid"], depth, 0))
    assert out["image"].dtype == np.float32 and out["domain"] == 1 and out["domain"].dtype == np.int32
    assert set(out) == {"image", "depth", "valid", "domain", "focal", "disparity"}
