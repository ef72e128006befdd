"""The synthetic two-stage run (``benchmarks/two_stage.py``), test-sized: relative pre-training on synthetic rooms
halves the relative model's aligned AbsRel on held-out rooms, and the ZoeD_N fine-tune started from
that run beats the same fine-tune from scratch at equal steps. Marked slow: three short training runs, two
compiled train steps (the relative and the metric one)."""

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "two_stage.py"


@pytest.mark.slow
def test_relative_pretraining_halves_aligned_abs_rel_and_helps_the_metric_fine_tune(tmp_path):
    spec = importlib.util.spec_from_file_location("two_stage", SCRIPT)
    two_stage = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(two_stage)
    lines = []
    result = two_stage.run_two_stage(tmp_path, backbone="tiny", relative_steps=800, metric_steps=60, batch=4,
                                     eval_scenes=8, lr=1e-3, relative_scenes=("synthetic_indoor",),
                                     log=lines.append)
    assert result["relative_abs_rel_after"] <= 0.5 * result["relative_abs_rel_before"], lines
    assert result["metric_abs_rel_from_relative"] < result["metric_abs_rel_from_scratch"], lines
    assert len(lines) == 2 and "aligned AbsRel" in lines[0]
