"""The training loop: metrics.jsonl, checkpoints, and resume == uninterrupted (bitwise), with the input
position restored from the checkpoint."""

import json

import jax
import numpy as np
import pytest

from data_pipelines.config import DataConfig
from data_pipelines.pipeline import build_train
from zoejax.models import presets
from zoejax.training import checkpointing
from zoejax.training.loop import TrainConfig, train
from zoejax.training.optim import OptimConfig
from zoejax.training.step import LossConfig


@pytest.fixture(autouse=True)
def fast_compiles():
    previous = jax.config.read("jax_disable_most_optimizations")
    jax.config.update("jax_disable_most_optimizations", True)
    yield
    jax.config.update("jax_disable_most_optimizations", previous)


def _batches():
    data = DataConfig.synthetic(64, size=(64, 96), image_size=(64, 96), batch_size=2)
    return iter(build_train(data, seed=0, process_index=0, process_count=1))


def _run(workdir, steps, batches=None):
    cfg = presets.zoed_n("tiny")
    run = TrainConfig(num_train_steps=steps, global_batch_size=2, log_every_steps=1, checkpoint_every_steps=2,
                      mesh_shape=(1, 1, 1), async_checkpoints=False)
    return train(cfg, run, OptimConfig(total_steps=6, lr=1e-3), LossConfig(), str(workdir),
                 batches or _batches())


def _params(workdir, step):
    params, meta, restored_step = checkpointing.load_params(workdir, step)
    assert restored_step == step and meta["step"] == step
    return params


def test_resume_equals_uninterrupted(tmp_path):
    full = _run(tmp_path / "a", 6)
    assert full["step"] == 6 and full["resumed_from"] is None
    lines = [json.loads(x) for x in (tmp_path / "a" / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines] == [1, 2, 3, 4, 5, 6] and all(np.isfinite(x["loss"]) for x in lines)

    first = _run(tmp_path / "b", 4)
    assert first["step"] == 4
    fresh_iterator = _batches()  # a new process: the input position comes from the checkpoint
    resumed = _run(tmp_path / "b", 6, fresh_iterator)
    assert resumed["resumed_from"] == 4 and resumed["step"] == 6
    uninterrupted = _batches()
    for _ in range(6):
        next(uninterrupted)
    assert fresh_iterator.get_state() == uninterrupted.get_state()
    a, b = _params(tmp_path / "a", 6), _params(tmp_path / "b", 6)
    assert all(jax.tree.leaves(jax.tree.map(lambda x, y: bool(np.array_equal(x, y)), a, b)))
    assert np.isclose(resumed["loss"], full["loss"])


def test_checkpoints_are_kept_and_config_written(tmp_path):
    _run(tmp_path, 6)
    steps = sorted(int(p.name) for p in (tmp_path / "checkpoints").iterdir() if p.name.isdigit())
    assert steps == [2, 4, 6]
    assert json.loads((tmp_path / "model_config.json").read_text())["backbone"]["depth"] == 4


def test_workdir_loads_as_a_model(tmp_path):
    import zoejax

    _run(tmp_path, 2)
    model = zoejax.load(tmp_path)
    assert model.provenance == {"source": str(tmp_path.absolute()), "format": "workdir", "step": 2}
    depth = model.predict(np.full((40, 60, 3), 128, np.uint8))
    assert depth.shape == (40, 60) and np.all(np.isfinite(depth))


def test_train_cli_runs_and_resumes(tmp_path):
    import os
    import subprocess
    import sys

    def run(steps, *extra):
        cmd = [sys.executable, "-m", "zoejax.cli.train", "--config", "configs/zoedepth_nk.py:tiny",
               "--workdir", str(tmp_path), f"--config.num_train_steps={steps}", "--config.global_batch_size=2",
               "--config.log_every_steps=1", "--config.mesh_shape=(1, 1, 1)", *extra]
        env = {**os.environ, "JAX_DISABLE_MOST_OPTIMIZATIONS": "1"}
        return subprocess.run(cmd, capture_output=True, text=True, env=env)

    first = run(2)
    assert first.returncode == 0, first.stderr[-2000:]
    result = json.loads(first.stdout.strip().splitlines()[-1])
    assert result["step"] == 2 and "domain_loss" in result and result["resumed_from"] is None
    again = run(3)
    assert again.returncode == 0, again.stderr[-2000:]
    assert json.loads(again.stdout.strip().splitlines()[-1])["resumed_from"] == 2
    bad = run(3, "--config.optim.lrr=1")
    assert bad.returncode != 0 and "lrr" in bad.stderr
