"""The training loop: metrics.jsonl, checkpoints, the work directory as a model, and the zoejax-train CLI
(resuming bitwise after SIGKILL is tests/test_resume_kill.py)."""

import json

import jax
import numpy as np
import pytest
from fast_compile import fast_compile_env

from data_pipelines.config import DataConfig
from data_pipelines.pipeline import build_train
from zoejax.models import presets
from zoejax.storage.workdir import load_params
from zoejax.training.loop import TrainConfig, train
from zoejax.training.optim import OptimConfig
from zoejax.training.step import LossConfig

pytestmark = pytest.mark.usefixtures("fast_compiles")


def _batches():
    data = DataConfig.synthetic(64, size=(64, 96), image_size=(64, 96), batch_size=2)
    return iter(build_train(data, seed=0, process_index=0, process_count=1))


def _run(workdir, steps, batches=None, init_from="", log_every=1):
    cfg = presets.zoed_n("tiny")
    run = TrainConfig(num_train_steps=steps, global_batch_size=2, log_every_steps=log_every, checkpoint_every_steps=2,
                      mesh_shape=(1, 1, 1), async_checkpoints=False, init_from=init_from)
    return train(cfg, run, OptimConfig(total_steps=6, lr=1e-3), LossConfig(), str(workdir),
                 batches or _batches())


def test_checkpoints_kept_config_written_and_workdir_loads_as_a_model(tmp_path):
    import zoejax

    result = _run(tmp_path, 6)
    lines = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines if "loss" in x] == [1, 2, 3, 4, 5, 6]
    assert all(np.isfinite(x["loss"]) for x in lines if "loss" in x) and result["step"] == 6
    steps = sorted(int(p.name) for p in (tmp_path / "checkpoints").iterdir() if p.name.isdigit())
    assert steps == [2, 4, 6]
    assert json.loads((tmp_path / "model_config.json").read_text())["backbone"]["depth"] == 4
    params, meta, restored_step = load_params(tmp_path, 4)
    assert restored_step == 4 and meta["step"] == 4
    model = zoejax.load(tmp_path)  # the latest step
    assert model.provenance == {"source": str(tmp_path.absolute()), "format": "workdir", "step": 6}
    assert model.input_size == (64, 96)  # predicts at the size it trained at, not the official 384x512
    assert zoejax.load(tmp_path, input_size=(96, 128)).input_size == (96, 128)
    assert not all(jax.tree.leaves(jax.tree.map(lambda x, y: bool(np.array_equal(x, y)), params, model.params)))
    depth = model.predict(np.full((40, 60, 3), 128, np.uint8))
    assert depth.shape == (40, 60) and np.all(np.isfinite(depth))

    # A trained work directory goes back to PyTorch layouts, and those import to the same model.
    from zoejax.conversion.convert import export_checkpoint

    for to, out in (("official", tmp_path / "exported.pt"), ("hf", tmp_path / "exported_hf")):
        back = zoejax.load(export_checkpoint(tmp_path, out, to))
        assert back.config == model.config and back.provenance["format"] == to
        assert jax.tree.all(jax.tree.map(np.array_equal, back.params, model.params)), to


def test_progress_bar_counts_finished_steps_and_continuing_does_not_recompile(tmp_path, monkeypatch, caplog):
    from zoejax.training import loop

    taken, updates = [0], []  # batches handed to the loop; (bar count, batches taken) at each bar update

    def counted(batches):
        for batch in batches:
            taken[0] += 1
            yield batch

    class Bar:
        def __init__(self, total, initial, **_):
            self.n = initial

        def update(self, n):
            self.n += n
            updates.append((self.n, taken[0]))

        def set_postfix(self, **_):
            pass

        def close(self):
            pass

    monkeypatch.setattr(loop, "tqdm", Bar)
    _run(tmp_path, 5, counted(_batches()), log_every=4)
    # Step n is counted once step n + 1 is queued behind it and it has finished, or when its metrics are
    # fetched (log steps 4 and 5): never when merely dispatched, and the host is never more than one step ahead.
    assert updates == [(1, 2), (2, 3), (3, 4), (4, 4), (5, 5)]

    # Continuing the run in the same process (a notebook, a restarted phase) reuses the compiled train step.
    with jax.log_compiles():
        result = _run(tmp_path, 6)
    assert result["resumed_from"] == 5 and result["step"] == 6
    compiled = [r.getMessage()[:40] for r in caplog.records if "Compiling" in r.getMessage()]
    assert not any("train_step" in m for m in compiled), compiled


def test_init_from_starts_there_keeps_extras_and_names_mismatches(tmp_path):
    from zoejax.conversion.table import default_extras
    from zoejax.models.init import init_params
    from zoejax.storage.converted import save_converted
    from zoejax.training.loop import InitFromError, load_init_from

    cfg = presets.zoed_n("tiny")
    start = jax.device_get(init_params(cfg, 7))  # another seed than the run's own init
    # An official file's never-used tensors (ImageNet head, ...) come along, as a conversion keeps them.
    extras = default_extras(cfg.decoder.features, cfg.backbone.embed_dim, seed=3)
    source = save_converted(tmp_path / "init", cfg, start, extras, {})
    got = load_init_from(str(source), cfg).params
    assert jax.tree.all(jax.tree.map(np.array_equal, got, start))
    with pytest.raises(InitFromError, match=r"another architecture.*its encoder: BEiT 32x4 .*\n  shape: core/"):
        load_init_from(str(source), presets.zoed_n("small"))
    with pytest.raises(InitFromError, match="init_from=.*nowhere: no checkpoint at"):
        load_init_from(str(tmp_path / "nowhere"), cfg)

    run = tmp_path / "run"
    _run(run, 1, init_from=str(source))
    after_one_step, _, _ = load_params(run)
    # One Adam step moves each parameter by about the learning rate (<= 1e-3 here); the run's own seed-0 init
    # is ~1.1 away from the seed-7 one in the largest coordinate.
    moved = max(float(np.max(np.abs(x - y))) for x, y in zip(jax.tree.leaves(after_one_step),
                                                              jax.tree.leaves(start), strict=True))
    assert moved < 0.01
    import zoejax

    kept = zoejax.load(run).extras  # so exporting the trained model gives them back unchanged
    assert sorted(kept) == sorted(extras) and all(np.array_equal(kept[k], extras[k]) for k in extras)
    # (That a resumed run never opens init_from is checked by the CLI test below.)


def test_train_cli_runs_and_resumes(tmp_path):
    import subprocess
    import sys

    def run(steps, *extra):
        cmd = [sys.executable, "-m", "zoejax.cli.train", "--config", "configs/zoedepth_nk.py:tiny",
               "--workdir", str(tmp_path / "run"), f"--config.num_train_steps={steps}", "--config.global_batch_size=2",
               "--config.log_every_steps=1", "--config.mesh_shape=(1, 1, 1)", "--config.eval_every_steps=0",
               "--config.optim.total_steps=3", *extra]
        # One 3-step schedule for both runs, as for a job preempted at step 2: the resumed run compiles the same
        # train step, which it finds in the run's compilation cache (tests/conftest.py).
        return subprocess.run(cmd, capture_output=True, text=True, env=fast_compile_env())

    first = run(2)
    assert first.returncode == 0, first.stderr[-2000:]
    result = json.loads(first.stdout.strip().splitlines()[-1])
    assert result["step"] == 2 and "domain_loss" in result and result["resumed_from"] is None
    # The resumed run restores its checkpoint and never opens init_from (here a file that does not exist).
    again = run(3, f"--config.init_from={tmp_path / 'moved_away.pt'}")
    assert again.returncode == 0, again.stderr[-2000:]
    assert "could not be restored" not in again.stderr  # orbax knows every checkpoint item: no warnings
    assert json.loads(again.stdout.strip().splitlines()[-1])["resumed_from"] == 2
    bad = run(3, "--config.optim.lrr=1")
    assert bad.returncode == 2 and "has no field 'optim.lrr' (did you mean 'optim.lr'?)" in bad.stderr
    assert "Traceback" not in bad.stderr
    # Missing data: one line naming the file, no traceback (init_from errors: the test above).
    missing = tmp_path / "lists" / "train.txt"
    no_data = run(1, f"--config.data.sources=[{{'name': 'nyu', 'root': '/data', 'list_file': '{missing}'}}]")
    assert no_data.returncode == 1 and f"missing list file: {missing}" in no_data.stderr
    assert "Traceback" not in no_data.stderr
