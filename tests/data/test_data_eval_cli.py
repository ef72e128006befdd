"""zoejax-eval on small datasets in their native layouts (NYU, KITTI, iBims): table, JSON, counts, reference."""

import json

import pytest

from zoejax.cli import evaluate as eval_cli
from zoejax.models import presets
from zoejax.models.init import init_params
from zoejax.storage.converted import save_converted


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    cfg = presets.zoed_nk("tiny")
    path = tmp_path_factory.mktemp("ckpt") / "nk"
    save_converted(path, cfg, init_params(cfg, 0), {}, {"source": "random init (test)"})
    return path


def test_eval_cli_on_native_layouts(tiny_checkpoint, nyu_root, kitti_root, zero_shot_roots, tmp_path, capsys):
    out = tmp_path / "results.json"
    argv = ["--checkpoint", str(tiny_checkpoint), "--datasets", "nyu,kitti,ibims", "--input-size", "64x96",
            "--batch-size", "3", "--no-progress", "--output", str(out),
            "--root", f"nyu={nyu_root}/sync", "--list", f"nyu={nyu_root}/train.txt",
            "--root", f"kitti={kitti_root}/raw", "--depth-root", f"kitti={kitti_root}/gts",
            "--list", f"kitti={kitti_root}/eigen.txt", "--root", f"ibims={zero_shot_roots['ibims']}"]
    assert eval_cli.main(argv) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].split()[:7] == ["dataset", "d1", "d2", "d3", "REL", "RMSE", "log10"]
    payload = json.loads(out.read_text())
    rows = {r["dataset"]: r for r in payload["results"]}
    assert list(rows) == ["nyu", "kitti", "ibims"]
    assert rows["nyu"]["num_images"] == 8 and rows["nyu"]["num_without_depth"] == 1  # 8 frames, batch 3: 1 pad
    # KITTI: three frames with depth, the "None" row is kept but skipped, padded to 6.
    assert rows["kitti"]["num_images"] == 3 and rows["kitti"]["num_without_depth"] == 3
    assert rows["ibims"]["num_images"] == 2
    for r in rows.values():
        assert 0 <= r["metrics"]["a1"] <= 1 and r["metrics"]["abs_rel"] > 0
    assert payload["flip_tta"] is True

    # The results file is itself a reference: every relative improvement against it is zero.
    assert eval_cli.main(argv[:-8] + ["--datasets", "nyu", "--root", f"nyu={nyu_root}/sync", "--list",
                                      f"nyu={nyu_root}/train.txt", "--reference", str(out)]) == 0
    text = capsys.readouterr().out
    assert "mRItheta nyu" in text and "mRID     abs_rel            +0.00 %" in text
    assert "nyu/a1" in text  # the random model's d1 is 0 in the reference: that RI is undefined, and said so


def test_eval_cli_errors_name_the_problem(tiny_checkpoint, tmp_path, capsys):
    assert eval_cli.main(["--checkpoint", str(tmp_path / "none"), "--datasets", "synthetic_indoor"]) == 1
    assert "checkpoint not found" in capsys.readouterr().err
    rc = eval_cli.main(["--checkpoint", str(tiny_checkpoint), "--datasets", "nyu", "--data-root", str(tmp_path)])
    assert rc == 1
    assert "nyudepthv2_test_files_with_gt.txt" in capsys.readouterr().err  # the missing list file is named
    with pytest.raises(SystemExit) as exit_info:
        eval_cli.main(["--checkpoint", str(tiny_checkpoint), "--datasets", "nyuv3"])
    assert exit_info.value.code == 2 and "unknown dataset 'nyuv3'" in capsys.readouterr().err
    assert eval_cli.main(["--list-protocols"]) == 0
    assert "garg" in capsys.readouterr().out
