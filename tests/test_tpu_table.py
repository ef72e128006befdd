"""benchmarks/tpu_table.py: the accelerators page's table from tpu_aot.py's JSON lines."""

import json
import math
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "benchmarks"))

import tpu_table  # noqa: E402


def _result(config, topology, chips, batch, ips, fits=True, slices=1, basis="model"):
    return {"mode": "train", "config": config, "topology": topology, "chips": chips, "global_batch": batch,
            "images_per_s": ips, "mfu": 0.25, "mfu_basis": basis, "fits": fits, "hbm_gib": 9.0,
            "capacity_gib": 95, "override": [], "num_slices": slices, "mesh": [slices, chips // slices, 1]}


def test_nyu_finetune_hours_is_five_epochs_of_the_training_set():
    assert math.isclose(tpu_table.nyu_finetune_hours(24_231 * 5 / 3600), 1.0)
    assert math.isnan(tpu_table.nyu_finetune_hours(float("nan"))) and math.isnan(tpu_table.nyu_finetune_hours(0))


def test_best_rows_take_the_fastest_fitting_batch_per_model_topology_and_slices(tmp_path, capsys):
    results = [_result("configs/zoedepth_n.py", "v5p:2x2x1", 4, 16, 225.3),
               _result("configs/zoedepth_n.py", "v5p:2x2x1", 4, 32, 240.0),
               _result("configs/zoedepth_n.py", "v5p:2x2x1", 4, 64, 300.0, fits=False),
               _result("configs/zoedepth_n.py", "v5p:2x2x1", 8, 32, 430.0, slices=2),
               _result("configs/zoedepth_nk.py", "v5e:2x4", 8, 32, float("nan"), basis="xla"),
               _result("configs/zoedepth_nk.py", "v5e:2x4", 8, 64, float("nan"), basis="xla"),
               _result("configs/zoedepth_nk.py", "v5e:2x4", 8, 128, float("nan"), fits=False, basis="xla")]
    rows = tpu_table.best_rows(results)
    assert [(r["model"], r["slices"], r["global_batch"], r["batches"]) for r in rows] == [
        ("ZoeD_N", 1, 32, [4, 8, 16]), ("ZoeD_N", 2, 32, [4]), ("ZoeD_NK", 1, 64, [4, 8, 16])]
    path = tmp_path / "r.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in results))
    tpu_table.main([str(path)])
    table = capsys.readouterr().out.splitlines()
    assert table[0].startswith("| model | topology |") and len(table) == 2 + 3
    # 5 x 24,231 images at 240 images/s: 0.14 h; the two-slice row names its slices; without a speed estimate
    # the largest batch that fits, and n/a.
    assert "| ZoeD_N | v5p:2x2x1 | 4 | yes | 9.00 of 95 | 8 (4, 8, 16) | 240.0 | 25.0% | 0.14 |" in table
    assert "v5p:2x2x1 x 2 slices" in table[3] and table[4].endswith("| 8 (4, 8, 16) | n/a | n/a | n/a |")
