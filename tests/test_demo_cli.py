"""The demo and zoejax-info command lines run end to end (tiny model)."""

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from zoejax.cli import demo


def test_demo_trains_evaluates_and_writes_depth_files(tmp_path, capsys, fast_compiles):
    # The run's logic and outputs are checked here, not convergence (make demo shows that).
    demo.main(["--output", str(tmp_path), "--backbone", "tiny", "--steps", "3", "--batch", "2", "--height", "64",
               "--width", "96", "--eval-scenes", "2"])
    out = capsys.readouterr().out
    assert "untrained" in out and "trained" in out and "abs_rel" in out
    for i in range(2):
        pred = np.load(tmp_path / f"scene{i}_pred_depth.npy")
        assert pred.shape == (64, 96) and np.all(np.isfinite(pred))
        gt = np.asarray(Image.open(tmp_path / f"scene{i}_gt_depth.png"))
        assert gt.dtype == np.uint16 and 0 < gt.max() <= 10000  # indoor rooms, millimetres
    assert (tmp_path / "run" / "metrics.jsonl").is_file() and (tmp_path / "run" / "checkpoints" / "3").is_dir()


@pytest.mark.parametrize("config,multiple", [("configs/zoedepth_nk.py:tiny", 32),
                                             ("configs/depth_anything_v2_metric_hypersim.py:dinov2_tiny", 14)])
def test_info_cli_reports_params(config, multiple):
    # Any model family (tests/test_info.py checks each one's counts): the DINOv2 one takes inputs of multiples of 14.
    result = subprocess.run([sys.executable, "-m", "zoejax.cli.info", "--config", config],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[-1].startswith("params: ") and int(lines[-1].split()[1]) > 0
    assert any("forward FLOPs" in line for line in lines)
    assert any(f"(multiples of {multiple})" in line for line in lines)


def test_info_cli_rejects_bad_override():
    result = subprocess.run([sys.executable, "-m", "zoejax.cli.info", "--config", "configs/zoedepth_n.py:tiny",
                             "--config.model.head.bin_centers_type=wrong"], capture_output=True, text=True)
    assert result.returncode != 0 and "bin_centers_type" in result.stderr
