"""Synthetic scenes: exact metric depth, determinism, domain ranges, full-size frames and learnable depth cues."""

import numpy as np
import pytest

from data_pipelines.sources import SyntheticSource
from data_pipelines.synthetic.raycast import Camera
from data_pipelines.synthetic.scenes import INDOOR, OUTDOOR, Box, Scene, render, render_frame
from data_pipelines.synthetic.textures import CHECKER, PLAIN, Material

GREY = Material(PLAIN, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), 1.0, 0.0)


def test_depth_is_exact_planar_depth():
    h, w, f, cam_h = 60, 80, 50.0, 1.5
    cam = Camera(h, w, f, (0.0, cam_h, 0.0))
    wall = Box((-50.0, 0.0, 7.0), (50.0, 30.0, 8.0), GREY)  # fronto-parallel face at z = 7 m
    _, depth = render(Scene(cam, ground=(GREY, GREY, 100.0), boxes=(wall,), max_depth=80.0))
    cy = (h - 1) / 2
    for row in (40, 45, 59):  # below the horizon the ground plane y = 0: depth = h_cam * f / (v - cy)
        expected = cam_h * f / (row - cy)
        if expected < 7.0:
            np.testing.assert_allclose(depth[row], expected, rtol=1e-5)
    np.testing.assert_allclose(depth[10], 7.0, rtol=1e-6)  # the wall: planar depth is constant on it
    sky = render(Scene(cam, ground=(GREY, GREY, 100.0), max_depth=80.0))[1]
    assert np.all(sky[:int(cy)] == 0)  # above the horizon nothing is hit: invalid


def test_rotated_camera_depth_is_along_the_optical_axis():
    cam = Camera(40, 40, 40.0, (0.0, 1.0, 0.0), yaw=np.deg2rad(30.0))
    wall = Box((-100.0, -10.0, 10.0), (100.0, 10.0, 11.0), GREY)  # plane z = 10 m
    _, depth = render(Scene(cam, boxes=(wall,), max_depth=80.0))
    # A pixel at column u sees the plane at distance 10 / cos(yaw + atan(x)) along z ... its planar depth
    # is the z-distance projected on the optical axis: 10 * cos(yaw) / cos(yaw + atan(x)) / cos(atan(x)).
    u = np.arange(40)
    x = (u - 19.5) / 40.0
    theta = np.deg2rad(30.0) + np.arctan(x)
    expected = 10.0 / np.cos(theta) * np.cos(np.arctan(x))  # distance along ray * cos(angle to axis)
    np.testing.assert_allclose(depth[20], expected, rtol=1e-5)


def test_frames_are_deterministic_and_distinct():
    a = render_frame(3, 5, INDOOR, 48, 64)
    b = render_frame(3, 5, INDOOR, 48, 64)
    c = render_frame(3, 6, INDOOR, 48, 64)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[1], c[1])
    src = SyntheticSource(4, seed=3, size=(48, 64))
    np.testing.assert_array_equal(src[1]["depth"], render_frame(3, 1, INDOOR, 48, 64)[1])
    assert not np.array_equal(SyntheticSource(4, seed=4, size=(48, 64))[1]["depth"], src[1]["depth"])


def test_domain_depth_ranges():
    for i in range(4):
        _, depth, focal = render_frame(0, i, INDOOR, 60, 80)
        assert depth.min() > 0.3 and depth.max() < 10.0  # rooms are closed: every pixel is measured
        _, depth, _ = render_frame(0, i, OUTDOOR, 44, 152)
        valid = depth > 0
        assert depth.max() <= 80.0 and depth[valid].max() > 30.0
        assert not valid[0].all() and valid[-1].all()  # sky at the top, road at the bottom
    src = SyntheticSource(2, outdoor=True, size=(44, 152))
    assert src[0]["domain"] == 1 and src.info.train_range == (1e-3, 80.0)


def test_full_size_frames():
    # Render speed (~50-60 ms a frame on one core) is measured by benchmarks/input_pipeline.py, not here.
    for domain, far in ((INDOOR, 10.0), (OUTDOOR, 80.0)):
        image, depth, focal = render_frame(0, 1, domain, 480, 640)
        assert image.shape == (480, 640, 3) and image.dtype == np.uint8 and depth.shape == (480, 640)
        assert depth.max() <= far and focal > 0 and image.std() > 10  # a scene, not a blank frame


def test_texture_scale_shrinks_with_distance():
    """A checkered floor seen level: a row twice as far shows twice as many checker cells."""
    h, w, f = 120, 160, 80.0
    floor = Material(CHECKER, (0.1, 0.1, 0.1), (0.9, 0.9, 0.9), 0.5, 0.0)
    cam = Camera(h, w, f, (0.2, 1.6, 0.0))
    image, depth = render(Scene(cam, ground=(floor, floor, 100.0), max_depth=80.0))
    grey = image.mean(axis=2)

    def cells(row):
        bright = grey[row] > 127
        return np.count_nonzero(bright[1:] != bright[:-1])

    near, far = 119, 89  # depths ~2.2 m and ~4.4 m
    ratio = depth[far, 80] / depth[near, 80]
    assert 1.8 < ratio < 2.2
    assert cells(far) / cells(near) == pytest.approx(ratio, rel=0.25)
