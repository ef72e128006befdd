"""build_train / build_eval: batch contract, determinism, host sharding, resumption, NK mix, evaluation."""

import itertools
import os

import numpy as np
import pytest
from batch_contract import check_batch

from data_pipelines.config import DataConfig
from data_pipelines.pipeline import build_eval, build_train

IMAGE_SIZE = (32, 48)


def nyu_cfg(nyu_root, **kw):
    d = {"sources": [{"name": "nyu", "root": nyu_root + "/sync", "list_file": nyu_root + "/train.txt"}],
         "batch_size": 2, "image_size": list(IMAGE_SIZE)}
    d.update(kw)
    return DataConfig.from_dict(d)


def take(ds_or_it, n):
    return list(itertools.islice(ds_or_it, n))


def assert_batches_equal(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert set(x) == set(y)
        for k in x:
            np.testing.assert_array_equal(x[k], y[k], err_msg=k)


def frame_ids(batch):
    """NYU fixture frame i has a flat image of red level 10 + 20 i (augmentation off)."""
    red = batch["image"][..., 0].reshape(len(batch["image"]), -1).mean(1) * 255
    return [int(round((r - 10) / 20)) for r in red]


def test_train_batches_follow_the_contract(nyu_root):
    batches = take(build_train(nyu_cfg(nyu_root), seed=0, process_index=0, process_count=1), 6)  # > 1 epoch
    for b in batches:
        check_batch(b, batch_size=2, image_size=IMAGE_SIZE)
        assert b["depth"].shape == (2, 48, 64)  # native size, not resized
        assert np.all(b["domain"] == 0) and np.allclose(b["focal"], 518.8579)
        assert b["depth"].max() < 10.0  # the 65 m pixel is outside NYU's (1e-3, 10) training range
        assert np.all(b["valid"] == (b["depth"] > 0))


def test_same_seed_same_batches_and_different_seed_differs(nyu_root):
    cfg = nyu_cfg(nyu_root)
    a = take(build_train(cfg, seed=3, process_index=0, process_count=1), 5)
    b = take(build_train(cfg, seed=3, process_index=0, process_count=1), 5)
    c = take(build_train(cfg, seed=4, process_index=0, process_count=1), 5)
    synchronous = take(build_train(cfg.replace(read_threads=0), seed=3, process_index=0, process_count=1), 5)
    assert_batches_equal(a, b)
    assert_batches_equal(a, synchronous)  # reading threads change speed, not content
    assert any(not np.array_equal(x["image"], y["image"]) for x, y in zip(a, c, strict=True))


def test_process_shards_are_disjoint_and_cover_the_data(nyu_root):
    cfg = nyu_cfg(nyu_root, num_epochs=1, augment={"enabled": False})
    single = [i for b in build_train(cfg, 0, 0, 1) for i in frame_ids(b)]
    assert sorted(single) == list(range(8)) and single != list(range(8))  # globally shuffled
    shards = [[i for b in build_train(cfg, 0, p, 2) for i in frame_ids(b)] for p in range(2)]
    assert len(shards[0]) == len(shards[1]) == 4  # every host runs the same number of batches
    assert not set(shards[0]) & set(shards[1])
    assert sorted(shards[0] + shards[1]) == list(range(8))
    three = [[i for b in build_train(cfg, 0, p, 3) for i in frame_ids(b)] for p in range(3)]
    assert [len(s) for s in three] == [2, 2, 2]  # 8 -> 6: whole global batches of 3 x 2 only
    assert len(set(sum(three, []))) == 6


def test_resume_mid_epoch_reproduces_the_uninterrupted_run(nyu_root):
    cfg = nyu_cfg(nyu_root)  # full augmentation: rotation, flip, photometric
    reference = take(build_train(cfg, 7, 0, 1), 9)
    it = iter(build_train(cfg, 7, 0, 1))
    take(it, 3)
    state = it.get_state()
    resumed = iter(build_train(cfg, 7, 0, 1))
    resumed.set_state(state)
    assert_batches_equal(take(resumed, 6), reference[3:])  # crosses the epoch boundary at batch 4


def test_worker_processes_give_identical_batches_and_resume(nyu_root):
    cfg = nyu_cfg(nyu_root)
    reference = take(build_train(cfg, 5, 0, 1), 7)
    it = iter(build_train(cfg.replace(num_workers=2), 5, 0, 1))
    assert_batches_equal(take(it, 3), reference[:3])
    state = it.get_state()
    it.close()
    resumed = iter(build_train(cfg.replace(num_workers=2), 5, 0, 1))
    resumed.set_state(state)
    assert_batches_equal(take(resumed, 4), reference[3:])
    resumed.close()


def test_iterator_state_through_orbax(nyu_root, tmp_path):
    import grain
    import orbax.checkpoint as ocp

    cfg = nyu_cfg(nyu_root)
    reference = take(build_train(cfg, 1, 0, 1), 5)
    it = iter(build_train(cfg, 1, 0, 1))
    take(it, 2)
    with ocp.CheckpointManager(tmp_path / "ckpt") as mngr:
        mngr.save(2, args=ocp.args.Composite(data_iter=grain.checkpoint.CheckpointSave(it)))
        mngr.wait_until_finished()
    fresh = iter(build_train(cfg, 1, 0, 1))
    with ocp.CheckpointManager(tmp_path / "ckpt") as mngr:
        mngr.restore(2, args=ocp.args.Composite(data_iter=grain.checkpoint.CheckpointRestore(fresh)))
    assert_batches_equal(take(fresh, 3), reference[2:])


def test_nk_mix_round_robin_single_domain_batches(nyu_root, kitti_root):
    kitti = {"name": "kitti", "root": kitti_root + "/raw", "depth_root": kitti_root + "/gts",
             "list_file": os.path.join(kitti_root, "eigen.txt")}
    nyu = {"name": "nyu", "root": nyu_root + "/sync", "list_file": nyu_root + "/train.txt"}
    cfg = DataConfig.from_dict({"sources": [nyu, kitti], "batch_size": 2, "image_size": list(IMAGE_SIZE)})
    batches = take(build_train(cfg, 0, 0, 1), 6)
    assert [int(b["domain"][0]) for b in batches] == [0, 1, 0, 1, 0, 1]
    for b in batches:
        check_batch(b, 2, IMAGE_SIZE)
        assert len(set(b["domain"].tolist())) == 1
        assert b["depth"].shape == ((2, 48, 64) if b["domain"][0] == 0 else (2, 352, 1216))  # KB crop
        if b["domain"][0] == 1:
            assert not b["valid"][:, 351, 100 - 13].any()  # the 90 m point: beyond 80 m
            assert np.isin(np.unique(b["depth"][b["valid"]]), [5.0, 6.0, 7.0]).all()
    weighted = cfg.replace(sources=(cfg.sources[0].__class__(**{**nyu, "weight": 2.0}), cfg.sources[1]))
    domains = [int(b["domain"][0]) for b in take(build_train(weighted, 0, 0, 1), 6)]
    assert domains.count(0) == 4 and domains.count(1) == 2


def test_pipeline_keeps_image_and_depth_aligned(tmp_path):
    """Coded custom dataset (lossless PNG, exact .npy depth) through the full augmentation pipeline."""
    from PIL import Image

    h, w = 40, 56
    yy, xx = np.mgrid[0:h, 0:w]
    rows = ["image,depth,depth_scale"]
    for i in range(4):  # blue codes the frame, whose depth is offset by i metres
        image = np.stack([4 * xx, 6 * yy, np.full_like(xx, 200 + 10 * i)], -1).astype(np.uint8)
        Image.fromarray(image).save(tmp_path / f"{i}.png")
        np.save(tmp_path / f"{i}.npy", (1.0 + 0.1 * xx + 0.05 * yy + i).astype(np.float32))
        rows.append(f"{i}.png,{i}.npy,1")
    (tmp_path / "list.csv").write_text("\n".join(rows) + "\n")
    cfg = DataConfig.from_dict({
        "sources": [{"name": "custom", "list_file": str(tmp_path / "list.csv")}], "batch_size": 4,
        "image_size": [h, w], "augment": {"photometric_prob": 0.0, "rotate_degrees": 2.0}})
    batch = next(iter(build_train(cfg, 0, 0, 1)))
    code = np.round(batch["image"] * 255)
    frame = np.round((np.median(code[..., 2].reshape(4, -1), axis=1) - 200) / 10)[:, None, None]
    expected = 1.0 + 0.1 * code[..., 0] / 4 + 0.05 * code[..., 1] / 6 + frame
    v = batch["valid"] & (np.abs(code[..., 2] - 200 - 10 * frame) < 2)  # away from rotation-filled corners
    assert v.sum() > 0.8 * v.size
    # Bilinear image vs nearest depth under rotation: within half a pixel in each axis, plus quantisation.
    assert np.abs(batch["depth"] - expected)[v].max() < 0.1
    assert sorted(frame.ravel().tolist()) == [0, 1, 2, 3]
    assert (~batch["valid"]).sum() > 0  # rotation corners became invalid
    flipped = [np.argmax(code[k, 20, :, 0]) == 0 for k in range(4)]  # red decreases left to right
    assert any(flipped)


def test_eval_pads_equal_batch_counts_per_host(nyu_root):
    cfg = nyu_cfg(nyu_root, batch_size=2)
    seen = []
    for p in range(3):  # 8 examples over 3 hosts: 3 + 3 + 2 real, each padded to 2 batches of 2
        batches = list(build_eval(cfg, p, 3))
        assert len(batches) == 2
        for b in batches:
            check_batch(b, 2, IMAGE_SIZE)
            seen += [i for i, real in zip(frame_ids(b), b["valid"].any((1, 2)), strict=True) if real]
    assert seen == list(range(8))  # in order, each exactly once


def test_eval_kitti_keeps_rows_without_ground_truth(kitti_root):
    cfg = DataConfig.from_dict({"sources": [{"name": "kitti", "root": kitti_root + "/raw",
                                             "depth_root": kitti_root + "/gts",
                                             "list_file": os.path.join(kitti_root, "eigen.txt")}],
                                "batch_size": 1, "image_size": [48, 160]})
    batches = list(build_eval(cfg, 0, 1))
    assert len(batches) == 4
    assert [bool(b["valid"].any()) for b in batches] == [True, True, True, False]
    assert all(b["depth"].shape == (1, 352, 1216) for b in batches)


@pytest.mark.parametrize("name,check", [
    ("sunrgbd", lambda b: not b["valid"][0, 2, 2] and b["valid"][0, 5, 5]),
    ("diml_outdoor", lambda b: not b["valid"][0, 3, 3] and b["depth"][0, 4, 4] == pytest.approx(20.0)),
    ("vkitti2", lambda b: b["depth"].shape == (1, 352, 1216) and b["depth"][0, 5, 5] == pytest.approx(12.34)),
    ("ibims", lambda b: b["valid"][0, 10, 10] and not b["valid"][0, 10, 0]),
    ("diode_outdoor", lambda b: b["depth"][0, 5, 5] == pytest.approx(4.5)),
])
def test_eval_on_zero_shot_layouts(zero_shot_roots, name, check):
    cfg = DataConfig.from_dict({"sources": [{"name": name, "root": zero_shot_roots[name], "split": "test"}],
                                "batch_size": 1, "image_size": list(IMAGE_SIZE)})
    batches = list(build_eval(cfg, 0, 1))
    assert len(batches) == 2
    for b in batches:
        check_batch(b, 1, IMAGE_SIZE)
    assert check(batches[0])


def test_synthetic_nk_stand_in_needs_no_files():
    cfg = DataConfig.synthetic(6, nk=True, size=(40, 56), batch_size=2, image_size=IMAGE_SIZE)
    batches = take(build_train(cfg, 0, 0, 1), 4)
    assert [int(b["domain"][0]) for b in batches] == [0, 1, 0, 1]
    for b in batches:
        check_batch(b, 2, IMAGE_SIZE)
        assert b["depth"].shape == (2, 40, 56)
    assert batches[1]["depth"].max() > 10.0 and batches[0]["depth"].max() < 10.0  # street vs room depths
