"""Camera intrinsics in zoejax-predict: --focal-px / --fov rescale the metric depth from the training camera's
focal length, and the point cloud is back-projected through that same camera."""

import json

import numpy as np
import pytest
from PIL import Image

from zoejax.cli import predict as predict_cli
from zoejax.io.camera import TRAINING_CAMERAS, focal_from_fov, focal_rescale
from zoejax.io.ply import Intrinsics, backproject
from zoejax.models import presets
from zoejax.models.init import init_params
from zoejax.storage.converted import save_converted

SHAPE = (60, 80)


def read_ply_points(path):
    raw = path.read_bytes()
    end = raw.index(b"end_header\n") + len(b"end_header\n")
    dtype = np.dtype([("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("r", "u1"), ("g", "u1"), ("b", "u1")])
    v = np.frombuffer(raw[end:], dtype)
    return np.stack([v["x"], v["y"], v["z"]], -1)


def test_rescale_is_the_ratio_of_focal_lengths_per_image_width():
    nyu = TRAINING_CAMERAS["nyu"]
    assert focal_rescale("nyu", nyu.focal_px, nyu.width) == pytest.approx(1.0)
    assert focal_rescale("nyu", nyu.focal_px, 2 * nyu.width) == pytest.approx(0.5)  # same focal, wider image
    assert focal_rescale("kitti", 2 * 721.5377, 1242) == pytest.approx(2.0)
    assert focal_from_fov(100, 90.0) == pytest.approx(50.0)
    with pytest.raises(ValueError, match="no training camera"):
        focal_rescale("hypersim", 500.0, 640)


def test_focal_and_fov_rescale_the_depth_and_the_point_cloud_agrees(tmp_path, fast_compiles):
    cfg = presets.zoed_n("tiny")
    save_converted(tmp_path / "model", cfg, init_params(cfg, 0), {}, {"source": "random init (test)"})
    image = np.random.default_rng(5).integers(0, 256, (*SHAPE, 3), dtype=np.uint8)
    Image.fromarray(image).save(tmp_path / "room.png")

    def run(name, *flags):
        out = tmp_path / name
        args = ["--checkpoint", str(tmp_path / "model"), "--output", str(out), "--input-size", "64x96",
                "--no-flip-tta", "--no-color", "--ply", *flags, str(tmp_path / "room.png")]
        assert predict_cli.main(args) == 0
        return out

    plain = np.load(run("plain") / "room.npy")
    focal = 1.5 * TRAINING_CAMERAS["nyu"].focal_per_width * SHAPE[1]  # 1.5x the training camera's, per width
    by_focal = run("focal", "--focal-px", str(focal))
    depth = np.load(by_focal / "room.npy")
    np.testing.assert_allclose(depth, 1.5 * plain, rtol=1e-5)
    record = json.loads((by_focal / "predictions.json").read_text())["predictions"][0]
    assert record["depth_rescale"] == pytest.approx(1.5) and record["focal_px"] == pytest.approx(focal)
    # the point cloud is the rescaled depth through the same focal length
    camera = Intrinsics(focal, focal, (SHAPE[1] - 1) / 2, (SHAPE[0] - 1) / 2)
    np.testing.assert_allclose(read_ply_points(by_focal / "room.ply"), backproject(depth, camera).reshape(-1, 3),
                               rtol=1e-5, atol=1e-6)
    # --fov is the same camera spelled as an angle
    fov = float(np.degrees(2 * np.arctan(SHAPE[1] / 2 / focal)))
    by_fov = run("fov", "--fov", repr(fov))
    np.testing.assert_allclose(np.load(by_fov / "room.npy"), depth, rtol=1e-5)
    np.testing.assert_allclose(read_ply_points(by_fov / "room.ply"), read_ply_points(by_focal / "room.ply"),
                               rtol=1e-4, atol=1e-5)
    with pytest.raises(SystemExit):
        predict_cli.main(["--checkpoint", str(tmp_path / "model"), "--output", str(tmp_path / "x"), "--fov", "60",
                          "--focal-px", "500", str(tmp_path / "room.png")])
