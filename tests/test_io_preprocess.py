"""Depth file writers and the official preprocessing rules."""

import numpy as np
import pytest
from PIL import Image

from zoejax.io.depth_files import colorize, depth_to_uint16_mm, write_depth
from zoejax.preprocess import as_float_image, infer_padding, network_size


@pytest.mark.parametrize("image,target,keep,expected", [
    # Architecture spec 2.1's table (padded image sizes, "minimal" rule, multiples of 32).
    ((572, 746), (384, 512), True, (384, 512)),
    ((440, 1288), (384, 512), True, (384, 1120)),
    ((480, 640), (384, 512), False, (384, 512)),
    ((572, 746), (384, 768), True, (576, 768)),
    ((352, 1216), (384, 512), False, (384, 512)),
])
def test_network_size(image, target, keep, expected):
    assert network_size(*image, target, keep) == expected


def test_network_size_rounds_half_to_even():
    # 400 * (384/480) / 32 = 10.0; 420 * 0.8 / 32 = 10.5 -> 10 (half to even), not 11.
    assert network_size(420, 640, (336, 512), keep_aspect_ratio=False)[0] == 320


def test_infer_padding():
    assert infer_padding(480, 640) == (46, 53)


def test_write_depth_round_trip(tmp_path):
    depth = np.array([[0.5, 1.2344], [10.0, np.nan]], np.float32)
    files = write_depth(tmp_path / "frame", depth)
    assert [f.name for f in files] == ["frame.png", "frame.npy", "frame_color.png"]
    png = np.asarray(Image.open(files[0]))
    assert png.dtype == np.uint16 and png.tolist() == [[500, 1234], [10000, 0]]
    np.testing.assert_array_equal(np.load(files[1]), depth)
    assert np.asarray(Image.open(files[2])).shape == (2, 2, 3)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary files left


def test_uint16_clips_and_colorize_orders():
    assert depth_to_uint16_mm(np.array([-1.0, 70.0, np.inf])).tolist() == [0, 65535, 0]
    rgb = colorize(np.array([[1.0, 2.0, 3.0]]))
    assert rgb[0, 0].sum() > rgb[0, 1].sum() > rgb[0, 2].sum()  # near is brighter


def test_as_float_image():
    assert as_float_image(np.full((2, 2, 3), 255, np.uint8)).max() == 1.0
    with pytest.raises(ValueError, match="RGB"):
        as_float_image(np.zeros((2, 2), np.float32))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        as_float_image(np.full((2, 2, 3), 3.0, np.float32))
