"""Every source loads its native layout with the right scale, validity and metadata (hand-checked pixels).

Fixture datasets come from tests/data/conftest.py: 48x64 frames (375x1242 for KITTI/vKITTI2) with constant
stored depth, 0 at (0, 0) and 65000 at (1, 1).
"""

import importlib.util
import os

import numpy as np
import pytest

from data_pipelines.config import DATASET_NAMES, SourceConfig
from data_pipelines.errors import CorruptFileError, DataError, ListFormatError, MissingFileError
from data_pipelines.sources import (
    DATASETS,
    KINDS,
    DDADSource,
    DIMLIndoorSource,
    DIMLOutdoorSource,
    DIODESource,
    HyperSimSource,
    IBimsSource,
    KITTISource,
    NYUSource,
    SUNRGBDSource,
    VKITTI2Source,
    make_source,
)
from data_pipelines.sources.zero_shot import HYPERSIM_FOCAL, hypersim_distance_to_depth
from zoejax.evaluation.protocols import PROTOCOLS

H, W = 48, 64
KITTI_H, KITTI_W = 375, 1242


def _check_common(ex, shape, domain):
    assert ex["dataset"]  # the dataset key rides along as metadata
    assert ex["image"].dtype == np.uint8 and ex["image"].shape == shape + (3,)
    assert ex["depth"].dtype == np.float32 and ex["depth"].shape == shape
    assert ex["valid"].dtype == bool and ex["valid"].shape == shape
    assert ex["domain"] == domain
    assert np.all(ex["depth"][~ex["valid"]] == 0)


def test_nyu_bts_list(nyu_root):
    src = NYUSource(nyu_root + "/sync", nyu_root + "/train.txt")
    assert len(src) == 8
    ex = src[3]
    _check_common(ex, (H, W), 0)
    assert ex["depth"][5, 5] == pytest.approx(1.75)  # 1750 mm
    assert not ex["valid"][0, 0] and ex["depth"][0, 0] == 0  # stored 0 = invalid
    assert ex["valid"][1, 1] and ex["depth"][1, 1] == pytest.approx(65.0)  # range applied later
    assert ex["focal"] == pytest.approx(518.8579)
    assert np.abs(ex["image"][10, 10].astype(int) - [70, 90, 110]).max() <= 2  # JPEG of a flat colour
    assert "train.txt:4" in src.describe(3) and ex["dataset"] == "nyu"


def test_kitti_bts_list_and_none_rows(kitti_root):
    train = KITTISource(kitti_root + "/raw", os.path.join(kitti_root, "eigen.txt"), kitti_root + "/gts")
    assert len(train) == 3  # the None row has no ground truth: dropped for training
    ex = train[1]
    _check_common(ex, (KITTI_H, KITTI_W), 1)
    assert ex["depth"][0, 0] == pytest.approx(6.0) and ex["valid"][0, 0]  # 256 * 6 / 256
    assert ex["depth"][0, 1] == 0 and not ex["valid"][0, 1]  # sparse: no point there
    assert ex["depth"][KITTI_H - 1, 100] == pytest.approx(90.0)
    assert ex["focal"] == pytest.approx(721.5377)
    evaluation = make_source(SourceConfig("kitti", root=kitti_root + "/raw", depth_root=kitti_root + "/gts",
                                          list_file=os.path.join(kitti_root, "eigen.txt")), training=False)
    assert len(evaluation) == 4
    last = evaluation[3]
    assert not last["has_depth"] and not last["valid"].any() and last["image"].shape == (KITTI_H, KITTI_W, 3)


def test_bts_list_errors_name_the_line(tmp_path, nyu_root):
    bad = tmp_path / "bad.txt"
    bad.write_text("/kitchen_0000/rgb_00000.jpg /kitchen_0000/sync_depth_00000.png 518.8\nonly_one_column\n")
    with pytest.raises(ListFormatError, match=r"bad.txt:2"):
        NYUSource(nyu_root + "/sync", str(bad))
    missing = tmp_path / "missing.txt"
    missing.write_text("kitchen_0000/rgb_00000.jpg kitchen_0000/sync_depth_00000.png\n"
                       "kitchen_0000/nope.jpg kitchen_0000/sync_depth_00000.png\n")
    src = NYUSource(nyu_root + "/sync", str(missing))
    with pytest.raises(MissingFileError, match=r"nope.jpg \(.*missing.txt:2\)"):
        src.check_files()
    with pytest.raises(MissingFileError, match=r"missing.txt:2"):
        src[1]
    # A list path that does not exist is named as given: absolute stays absolute (not joined under the root, as
    # a BTS list's own "/kitchen_0000/..." entries are), relative is taken under the root.
    absent = str(tmp_path / "lists" / "absent.txt")
    with pytest.raises(MissingFileError) as info:
        NYUSource(nyu_root + "/sync", absent)
    assert str(info.value) == f"missing list file: {absent}"
    with pytest.raises(MissingFileError) as info:
        NYUSource(nyu_root + "/sync", "absent.txt")
    assert str(info.value) == f"missing list file: {nyu_root}/sync/absent.txt"


def test_sunrgbd(zero_shot_roots):
    src = SUNRGBDSource(zero_shot_roots["sunrgbd"])
    ex = src[0]
    _check_common(ex, (H, W), 0)
    assert ex["depth"][5, 5] == pytest.approx(3.0)
    assert not ex["valid"][2, 2]  # 9 m > 8 m
    assert not ex["valid"][1, 1]  # 65 m
    assert ex["focal"] == 0


def test_ibims_masks_and_scale(zero_shot_roots):
    src = IBimsSource(zero_shot_roots["ibims"])
    assert len(src) == 2
    ex = src[1]
    _check_common(ex, (H, W), 0)
    assert ex["depth"][10, 10] == pytest.approx(6553 * 50 / 65535, rel=1e-6)
    assert not ex["valid"][10, :4].any() and not ex["valid"][:3, 10].any()  # mask_invalid, mask_transp
    assert ex["valid"][3:, 4:].all()


@pytest.mark.parametrize("name", ["diode_indoor", "diode_outdoor"])
def test_diode(zero_shot_roots, name):
    src = DIODESource(zero_shot_roots[name], outdoor=name.endswith("outdoor"))
    assert len(src) == 2 and src.info.name == name
    ex = src[0]
    _check_common(ex, (H, W), int(name.endswith("outdoor")))
    assert ex["depth"][7, 7] == pytest.approx(4.5)
    assert not ex["valid"][0, 0]
    # The all-zero _depth_mask.npy is ignored, as by the official evaluation.
    assert ex["valid"].sum() == H * W - 1


def test_hypersim_distance_to_planar_depth(zero_shot_roots):
    src = HyperSimSource(zero_shot_roots["hypersim"], depth_reader=_npy_reader)
    ex = src[0]
    _check_common(ex, (H, W), 0)
    assert not ex["valid"][0, 0]  # NaN
    u, v = 10 - (W - 1) / 2, 20 - (H - 1) / 2
    f = HYPERSIM_FOCAL
    assert ex["depth"][20, 10] == pytest.approx(5.0 * f / np.sqrt(u * u + v * v + f * f), rel=1e-6)
    # At 1024x768 the centre is (511.5, 383.5), as hard-coded officially.
    big = hypersim_distance_to_depth(np.ones((768, 1024), np.float32))
    assert big[383, 511] == pytest.approx(f / np.sqrt(0.25 + 0.25 + f * f), rel=1e-6)


def _npy_reader(path):
    return np.load(path)


def test_hypersim_without_h5py_says_what_to_install(zero_shot_roots):
    try:
        import h5py  # noqa: F401
    except ImportError:
        with pytest.raises(DataError, match="h5py"):  # said when the source is made, before any evaluation
            HyperSimSource(zero_shot_roots["hypersim"])
    else:  # with h5py installed the fixture (an .npy under an .hdf5 name) is not valid HDF5: a corrupt file
        with pytest.raises(CorruptFileError, match="depth_meters.hdf5"):
            HyperSimSource(zero_shot_roots["hypersim"])[0]


def test_vkitti2_split_file_scale_and_sky(zero_shot_roots):
    src = VKITTI2Source(zero_shot_roots["vkitti2"], split="test")
    assert len(src) == 2
    ex = src[0]
    _check_common(ex, (KITTI_H, KITTI_W), 1)
    assert ex["depth"][100, 100] == pytest.approx(12.34)
    assert not ex["valid"][-1, 600]  # 655.35 m
    assert ex["focal"] == pytest.approx(725.0087)
    assert src.info.kb_crop
    assert len(VKITTI2Source(zero_shot_roots["vkitti2"], split="all")) == 2
    path = VKITTI2Source.depth_path("/d/rgb/Scene02/fog/frames/rgb/Camera_0/rgb_00012.jpg")
    assert path == "/d/depth/Scene02/fog/frames/depth/Camera_0/depth_00012.png"


def test_ddad(zero_shot_roots):
    ex = DDADSource(zero_shot_roots["ddad"])[1]
    _check_common(ex, (H, W), 1)
    assert ex["depth"][4, 4] == pytest.approx(33.0) and not ex["valid"][0, 0]


def test_diml_indoor_and_outdoor(zero_shot_roots):
    ex = DIMLIndoorSource(zero_shot_roots["diml_indoor"])[0]
    _check_common(ex, (H, W), 0)
    assert ex["depth"][4, 4] == pytest.approx(2.5)
    out = DIMLOutdoorSource(zero_shot_roots["diml_outdoor"])
    ex = out[1]
    _check_common(ex, (H, W), 1)
    assert ex["depth"][4, 4] == pytest.approx(20.0)
    assert out.info.eval_range == (2.0, 80.0)  # the 1.5 m pixel at (3, 3) is masked by the range later


class _PreparedSplit:
    """Stands in for a prepared tfds builder: two NYU-sized records."""

    def is_prepared(self):
        return True

    def as_data_source(self, split):
        return [{"image": np.zeros((480, 640, 3), np.uint8), "depth": np.ones((480, 640), np.float32)}] * 2


def test_every_dataset_row_builds_its_source(nyu_root, kitti_root, zero_shot_roots, da2_roots, custom_root,
                                             monkeypatch):
    """Each row of the one dataset table builds, through make_source, a source carrying that row's constants."""
    monkeypatch.setattr("data_pipelines.sources.tfds_nyu._default_builder", lambda data_dir: _PreparedSplit())
    custom_list = os.path.join(custom_root, "list.csv")
    with open(custom_list, "w") as f:
        f.write("image,depth,depth_scale\nimg/a.png,dep/a.png,1000\n")
    configs = {name: SourceConfig(name, root=root, split="test") for name, root in zero_shot_roots.items()}
    configs.update({
        "nyu": SourceConfig("nyu", root=nyu_root + "/sync", list_file=nyu_root + "/train.txt"),
        "nyu_tfds": SourceConfig("nyu_tfds", root=nyu_root, split="validation"),
        "kitti": SourceConfig("kitti", root=kitti_root + "/raw", depth_root=kitti_root + "/gts",
                              list_file=kitti_root + "/eigen.txt"),
        "custom": SourceConfig("custom", list_file=custom_list),
        "hypersim_da2": SourceConfig("hypersim_da2", root=da2_roots["hypersim"], list_file="train.txt"),
        "vkitti2_da2": SourceConfig("vkitti2_da2", root=da2_roots["vkitti2"], list_file="train.txt"),
        "synthetic_indoor": SourceConfig("synthetic_indoor", num_examples=2, size=(32, 48)),
        "synthetic_outdoor": SourceConfig("synthetic_outdoor", num_examples=2, size=(32, 48)),
    })
    assert set(configs) == set(DATASETS) == set(DATASET_NAMES) and set(PROTOCOLS) <= set(DATASETS)
    for name, row in DATASETS.items():
        assert row.name == name and row.kind in KINDS, name
        if name == "hypersim" and importlib.util.find_spec("h5py") is None:
            with pytest.raises(DataError, match="h5py"):  # said when the source is made, before any reading
                make_source(configs[name], training=False)
            continue
        src = make_source(configs[name], training=False)
        assert src.info == row.info and len(src) >= 1, name
        if name not in ("hypersim", "nyu_tfds"):  # hypersim's fixture is an .npy read by an injected reader
            example = src[0]
            assert example["dataset"] == name and example["depth"].shape == example["image"].shape[:2], name
        if row.protocol is not None:  # the evaluation protocol is the row's, with the row's depth range
            assert (PROTOCOLS[name].crop, PROTOCOLS[name].max_depth) == (row.protocol.crop, row.info.eval_range[1])


def test_missing_root_and_corrupt_file(tmp_path, zero_shot_roots):
    with pytest.raises(MissingFileError, match="nowhere"):
        DDADSource(str(tmp_path / "nowhere"))
    root = tmp_path / "ddad"
    root.mkdir()
    (root / "000000_rgb.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    np.save(root / "000000_depth.npy", np.ones((4, 4), np.float32))
    with pytest.raises(CorruptFileError, match="000000_rgb.png"):
        DDADSource(str(root))[0]
