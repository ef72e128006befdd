"""One table per concept, every name defined once: metrics (name, column, direction) and run fields (one
dataclass the config files and the override list derive from)."""

import dataclasses
import importlib.util
import os

import numpy as np
import pytest

from zoejax.cli.config_loading import run_configs
from zoejax.evaluation.metrics import METRIC_TABLE, METRICS, compute_errors
from zoejax.evaluation.report import format_table, improvement_scores
from zoejax.training.config import RUN_FIELDS, TrainConfig

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SECTIONS = {"model", "input_size", "optim", "loss", "data", "eval"}  # the ConfigDict's non-run entries


def _config(name: str, arg: str | None = None):
    spec = importlib.util.spec_from_file_location(f"cfg_{name}", os.path.join(ROOT, "configs", f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config(arg)


def test_every_computed_metric_is_a_row_of_the_one_metric_table():
    rng = np.random.default_rng(0)
    gt = rng.uniform(0.5, 10.0, 100)
    computed = compute_errors(gt, gt * rng.uniform(0.8, 1.2, 100))
    assert tuple(computed) == METRICS == tuple(m.name for m in METRIC_TABLE)
    assert len({m.column for m in METRIC_TABLE}) == len(METRIC_TABLE)
    # Every computed metric has a column and a direction: the table and the relative improvement take them all.
    header = format_table([{"dataset": "x", "metrics": computed, "num_images": 1}]).splitlines()
    assert header[0].split()[1:-1] == [m.column for m in METRIC_TABLE] and "-" not in header[2].split()[1:]
    better = {k: v * (1.1 if m.higher_is_better else 0.9) for (k, v), m in zip(computed.items(), METRIC_TABLE,
                                                                               strict=True)}
    scores = improvement_scores({"x": better}, {"x": computed}, metrics=METRICS)
    assert scores["compared"] == list(METRICS) and all(v == pytest.approx(0.1) for v in scores["mRID"].values())
    with pytest.raises(ValueError, match="unknown metric 'delta1'"):
        improvement_scores({"x": {"delta1": 1.0}}, {"x": {"delta1": 1.0}}, metrics=("delta1",))


@pytest.mark.parametrize("name, arg", [("zoedepth_n", "tiny"), ("zoedepth_k", "tiny"), ("zoedepth_nk", "tiny"),
                                       ("demo", None), ("finetune_custom", "train=/d/t.csv,val=/d/v.csv")])
def test_run_fields_are_the_train_config_dataclass(name, arg):
    config = _config(name, arg)
    assert set(config.keys()) - SECTIONS == set(RUN_FIELDS)
    # Every field is an override: a changed value reaches TrainConfig, with the type the dataclass declares.
    changed = {"num_train_steps": 11, "global_batch_size": 3, "log_every_steps": 2, "checkpoint_every_steps": 5,
               "keep_checkpoints": 4, "seed": 9, "init_from": "x.pt", "mesh_shape": (1, -1, 1),
               "halt_on_nonfinite": True, "async_checkpoints": False, "eval_every_steps": 7, "best_metric": "rmse",
               "best_mode": "max", "keep_best_checkpoints": 2, "tensorboard": False, "peak_flops_per_device": 1e12,
               "log_dir": "/logs"}
    assert set(changed) == set(RUN_FIELDS)
    with config.unlocked():
        for key, value in changed.items():
            config[key] = value
    _, run, optim, _ = run_configs(config)
    assert dataclasses.asdict(run) == changed and optim.total_steps == 11
    defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
    untouched = {k: v for k, v in dataclasses.asdict(run_configs(_config(name, arg))[1]).items()
                 if k not in ("num_train_steps", "eval_every_steps", "init_from", "global_batch_size",
                              "log_every_steps", "checkpoint_every_steps")}
    assert untouched == {k: defaults[k] for k in untouched}  # the config files' defaults are the dataclass's
