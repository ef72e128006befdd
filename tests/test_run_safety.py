"""Nothing a training run owns is lost or poisoned (issue 28 items 4-6, 8-13, 20): divergence stops the run and
never reaches a checkpoint, a damaged latest checkpoint is moved aside, an empty or failing evaluation keeps the
step, the work directory is locked and its model_config.json never rewritten with another model, a torn
metrics.jsonl line is cut, unfinished saves are deleted, a changed batch size is refused on resume, and every
such failure is one line of ``zoejax-train`` with a documented exit code (the CLI end to end: preemption)."""

import errno
import json
import logging
import os
import shutil
import signal
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import pytest
from fast_compile import fast_compile_env

from data_pipelines.config import DataConfig
from data_pipelines.errors import CorruptFileError
from data_pipelines.pipeline import build_train
from zoejax.models import presets
from zoejax.storage import workdir as stored_workdir
from zoejax.training import checkpointing
from zoejax.training import workdir as run_files
from zoejax.training.divergence import DivergedError
from zoejax.training.loop import TrainConfig, train
from zoejax.training.optim import OptimConfig
from zoejax.training.resume import ResumeMismatchError
from zoejax.training.step import LossConfig

pytestmark = pytest.mark.usefixtures("fast_compiles")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL = presets.zoed_n("tiny")
# One optimizer config for every run here, so that the train step compiles once for the file.
OPTIM = OptimConfig(total_steps=6, lr=1e-3, max_consecutive_nonfinite=2)


def _batches(batch_size=2):
    data = DataConfig.synthetic(64, size=(64, 96), image_size=(64, 96), batch_size=batch_size)
    return iter(build_train(data, seed=0, process_index=0, process_count=1))


class Tampered:
    """The pipeline's batches, with ``change(step, batch)`` applied to each (step counted from 1 per iterator);
    keeps the pipeline's get_state / set_state."""

    def __init__(self, it, change):
        self.it, self.change, self.n = it, change, 0

    def __iter__(self):
        return self

    def __next__(self):
        self.n += 1
        return self.change(self.n, dict(next(self.it)))

    def get_state(self):
        return self.it.get_state()

    def set_state(self, state):
        self.it.set_state(state)


def _train(workdir, steps, batches=None, evaluate=None, **overrides):
    settings = dict(num_train_steps=steps, global_batch_size=2, log_every_steps=1, checkpoint_every_steps=2,
                    mesh_shape=(1, 1, 1), async_checkpoints=False, eval_every_steps=2 if evaluate else 0)
    run = TrainConfig(**{**settings, **overrides})
    return train(MODEL, run, OPTIM, LossConfig(), str(workdir), batches or _batches(run.global_batch_size),
                 evaluate)


def _steps(workdir):
    return sorted(int(p.name) for p in (workdir / "checkpoints").iterdir() if p.name.isdigit())


def _log(workdir):
    return [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]


def _finite(workdir, step):
    params, _, _ = stored_workdir.load_params(workdir, step)
    return all(np.all(np.isfinite(x)) for x in jax.tree.leaves(params))


@pytest.fixture(scope="module")
def four_steps(tmp_path_factory):
    """A finished 4-step run (checkpoints 2 and 4) to copy."""
    workdir = tmp_path_factory.mktemp("four") / "run"
    _train(workdir, 4)
    assert _steps(workdir) == [2, 4]
    return workdir


def _copy(four_steps, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(four_steps, copy)
    return copy


# Item 4 ------------------------------------------------------------------------------------------------------


def test_divergence_stops_the_run_and_no_checkpoint_holds_nonfinite_weights(tmp_path):
    def nan_from_step_3(step, batch):
        if step >= 3:
            batch["image"] = np.full_like(batch["image"], np.nan)
        return batch

    with pytest.raises(DivergedError, match=r"steps 3-4 \(2 in a row\) had a non-finite.*"
                                            r"max_consecutive_nonfinite=2.*latest checkpoint \(step 3\)"):
        _train(tmp_path, 6, Tampered(_batches(), nan_from_step_3), checkpoint_every_steps=1)
    # Step 3 was skipped (its weights are step 2's) and saved; the run stopped at step 4, before saving it.
    assert _steps(tmp_path) == [1, 2, 3]
    assert all(_finite(tmp_path, s) for s in (1, 2, 3))
    assert [x["step"] for x in _log(tmp_path)] == [1, 2, 3, 4]


def test_a_nonfinite_state_is_never_saved_and_never_resumed_from(tmp_path):
    manager = checkpointing.make_manager(tmp_path, async_save=False)
    good = {"params": {"w": jnp.ones(3)}, "count": jnp.zeros((), jnp.int32)}
    bad = {"params": {"w": jnp.array([1.0, jnp.nan, 1.0])}, "count": jnp.zeros((), jnp.int32)}
    checkpointing.save(manager, 1, good, {"step": 1})
    with pytest.raises(checkpointing.NonFiniteStateError, match=r"step 2: the train state is not finite.*'w'"):
        checkpointing.save(manager, 2, bad, {"step": 2})
    assert manager.all_steps() == [1]
    # One an older zoejax wrote (bypassing the check) is moved aside on resume, like a damaged one.
    manager.save(2, args=ocp.args.Composite(state=ocp.args.StandardSave(bad), meta=ocp.args.JsonSave({}),
                                            data=ocp.args.JsonSave({})))
    manager.wait_until_finished()
    abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), good)
    state, _, _, step = checkpointing.restore_latest(manager, abstract)
    assert step == 1 and manager.all_steps() == [1]
    assert (tmp_path / "checkpoints_damaged" / "2").is_dir()
    manager.close()


# Item 5 ------------------------------------------------------------------------------------------------------


def test_damaged_latest_checkpoint_is_moved_aside_and_the_run_saves_that_step_again(four_steps, tmp_path, caplog):
    workdir = _copy(four_steps, tmp_path)
    for root, _, files in os.walk(workdir / "checkpoints" / "4" / "state"):
        for name in files:
            path = os.path.join(root, name)
            if os.path.getsize(path) > 1024:
                with open(path, "r+b") as f:
                    f.truncate(os.path.getsize(path) // 2)
    with caplog.at_level(logging.WARNING):
        result = _train(workdir, 6)  # saves step 4 again on its way: StepAlreadyExistsError before the fix
    assert result["resumed_from"] == 2 and result["step"] == 6
    assert _steps(workdir) == [2, 4, 6] and (workdir / "checkpoints_damaged" / "4" / "state").is_dir()
    assert any("step 4" in r.getMessage() and "checkpoints_damaged/4" in r.getMessage() for r in caplog.records)
    assert _finite(workdir, 4)


def test_every_checkpoint_damaged_is_one_error_and_nothing_is_moved(four_steps, tmp_path):
    workdir = _copy(four_steps, tmp_path)
    for step in (2, 4):
        shutil.rmtree(workdir / "checkpoints" / str(step) / "state")
    with pytest.raises(checkpointing.NoRestorableCheckpointError,
                       match=r"none of the 2 checkpoints .*\(step 4: KeyError.*; step 2: "):
        _train(workdir, 6)
    assert _steps(workdir) == [2, 4] and not (workdir / "checkpoints_damaged").exists()


# Item 6 ------------------------------------------------------------------------------------------------------


def test_an_empty_evaluation_is_reported_and_the_step_saved(tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        result = _train(tmp_path, 2, evaluate=lambda params: {})
    assert result["step"] == 2 and result["eval"] == {} and _steps(tmp_path) == [2]
    assert {"step": 2, "eval/empty": True} in _log(tmp_path)
    assert any("scored no image" in r.getMessage() for r in caplog.records)


def test_a_failing_evaluation_saves_the_step_before_raising(tmp_path):
    def broken(params):
        raise RuntimeError("evaluation data went away")

    with pytest.raises(RuntimeError, match="went away"):
        _train(tmp_path, 4, evaluate=broken, eval_every_steps=3)
    assert _steps(tmp_path) == [2, 3]  # step 3 (the evaluation's) saved first


# Item 8 ------------------------------------------------------------------------------------------------------


def test_training_into_a_folder_of_another_model_leaves_its_model_config(tmp_path):
    from zoejax.models.init import init_params
    from zoejax.storage.converted import save_converted

    other = presets.zoed_n("small")
    folder = save_converted(tmp_path / "converted", other, jax.device_get(init_params(other, 0)), {}, {})
    before = (folder / "model_config.json").read_bytes()
    with pytest.raises(run_files.WorkdirMismatchError, match=r"describes another model.*backbone/depth"):
        _train(folder, 1)
    assert (folder / "model_config.json").read_bytes() == before and not (folder / "checkpoints").exists()


def test_model_config_is_kept_when_only_compute_settings_differ_and_written_atomically(tmp_path, monkeypatch):
    import dataclasses

    from etils import epath

    # One left by a run that failed before its first checkpoint belongs to no weights: replaced.
    run_files.write_model_config(str(tmp_path), presets.zoed_n("small"))
    run_files.write_model_config(str(tmp_path), MODEL)
    before = (tmp_path / "model_config.json").read_bytes()
    assert json.loads(before)["backbone"]["depth"] == MODEL.backbone.depth
    (tmp_path / "checkpoints" / "2").mkdir(parents=True)  # now it describes the checkpoints' weights
    run_files.write_model_config(str(tmp_path), dataclasses.replace(MODEL, dtype="bfloat16"))
    assert (tmp_path / "model_config.json").read_bytes() == before
    with pytest.raises(run_files.WorkdirMismatchError):
        run_files.write_model_config(str(tmp_path), presets.zoed_n("small"))

    # A write that fails half-way (disk full) leaves the previous file whole and no temporary behind.
    target = epath.Path(tmp_path) / "inference.json"
    run_files.write_inference_info(str(tmp_path), (2, 64, 96, 3))
    original = type(target).write_text

    def half_then_full(self, text, *args, **kwargs):
        original(self, text[: len(text) // 2])
        raise OSError(errno.ENOSPC, "No space left on device", str(self))

    monkeypatch.setattr(type(target), "write_text", half_then_full)
    with pytest.raises(OSError):
        run_files.write_inference_info(str(tmp_path), (2, 96, 128, 3))
    assert json.loads(target.read_text()) == {"input_size": [64, 96]}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoints", "inference.json", "model_config.json"]


# Item 9 ------------------------------------------------------------------------------------------------------


def test_a_second_trainer_on_the_workdir_is_refused_naming_the_holder(tmp_path):
    import socket

    from zoejax.training.workdir import WorkdirLockedError

    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from zoejax.training.workdir import WorkdirLock\n"
         "with WorkdirLock(sys.argv[1]):\n    print('locked', flush=True); time.sleep(120)", str(tmp_path)],
        stdout=subprocess.PIPE, text=True, env=fast_compile_env())
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(WorkdirLockedError, match=rf"in use by another zoejax-train \(pid {holder.pid} on host "
                                                     rf"{socket.gethostname()}, since "):
            _train(tmp_path, 1)
        assert not (tmp_path / "checkpoints").exists() and not (tmp_path / "model_config.json").exists()
    finally:
        holder.kill()
        holder.wait()
    with run_files.WorkdirLock(str(tmp_path)):  # released when its holder died
        pass


# Item 10 -----------------------------------------------------------------------------------------------------


def test_a_torn_last_metrics_line_is_cut_on_resume(four_steps, tmp_path):
    workdir = _copy(four_steps, tmp_path)
    with open(workdir / "metrics.jsonl", "a") as f:
        f.write('{"step": 5, "loss": 0.12')  # SIGKILL mid-write
    _train(workdir, 5)
    assert [x["step"] for x in _log(workdir)] == [1, 2, 3, 4, 5]  # every line parses


# Item 11 (checkpoints) ---------------------------------------------------------------------------------------


def test_an_unfinished_save_is_deleted_when_the_next_run_starts(four_steps, tmp_path):
    workdir = _copy(four_steps, tmp_path)
    # What a save that hit a full disk leaves: a step folder under orbax's temporary name, never renamed.
    leftover = workdir / "checkpoints" / "6.orbax-checkpoint-tmp-1234567"
    shutil.copytree(workdir / "checkpoints" / "4", leftover)
    (leftover / "_CHECKPOINT_METADATA").unlink()
    result = _train(workdir, 5)
    assert result["resumed_from"] == 4 and not leftover.exists()
    assert sorted(p.name for p in (workdir / "checkpoints").iterdir()) == ["2", "4", "5"]


# Item 12 -----------------------------------------------------------------------------------------------------


def test_sigterm_saves_and_the_run_reports_preempted(tmp_path):
    def term_at_2(step, batch):
        if step == 2:
            os.kill(os.getpid(), signal.SIGTERM)
        return batch

    result = _train(tmp_path, 6, Tampered(_batches(), term_at_2), checkpoint_every_steps=100)
    assert result["preempted"] is True and result["step"] == 2 and _steps(tmp_path) == [2]


# Item 13 -----------------------------------------------------------------------------------------------------


def test_resuming_with_another_batch_size_is_refused_and_a_changed_init_from_reported(four_steps, tmp_path,
                                                                                     caplog):
    workdir = _copy(four_steps, tmp_path)
    with pytest.raises(ResumeMismatchError, match=r"step 4 was trained with global_batch_size=2, this run has 4.*"
                                                  r"--config.global_batch_size=2"):
        _train(workdir, 6, global_batch_size=4)
    assert _steps(workdir) == [2, 4]
    with caplog.at_level(logging.WARNING):
        result = _train(workdir, 5, init_from=str(tmp_path / "elsewhere.pt"))
    assert result["resumed_from"] == 4
    assert any("elsewhere.pt is ignored: resuming" in r.getMessage() for r in caplog.records)


# Item 20 and the exit codes ----------------------------------------------------------------------------------


def test_architecture_mismatch_on_resume_is_named_not_taken_for_damage(four_steps, tmp_path):
    import dataclasses

    workdir = _copy(four_steps, tmp_path)
    (workdir / "model_config.json").unlink()  # else the folder's model_config.json refuses it first
    more_bins = dataclasses.replace(MODEL, bins=(dataclasses.replace(MODEL.bins[0], n_bins=32),))
    run = TrainConfig(num_train_steps=6, global_batch_size=2, mesh_shape=(1, 1, 1), async_checkpoints=False)
    with pytest.raises(checkpointing.CheckpointLayoutError, match=r"step 4 .* another architecture .* differ in "
                                                                  r"shape"):
        train(more_bins, run, OPTIM, LossConfig(), str(workdir), _batches())
    assert _steps(workdir) == [2, 4] and not (workdir / "checkpoints_damaged").exists()


@pytest.mark.parametrize("error, code, message", [
    (DivergedError("diverged: steps 3-4"), 3, "diverged: steps 3-4"),
    (OSError(errno.ENOSPC, "No space left on device", "/w/checkpoints/6.orbax-checkpoint-tmp-1/state"), 1,
     r"disk full writing /w/checkpoints/6.orbax-checkpoint-tmp-1/state \(No space left on device\): free space"),
    (CorruptFileError("/d/a.png (train.csv line 3): not an image"), 1, r"/d/a.png \(train.csv line 3\)"),
    (ValueError("Expected all input elements to have the same structure but got: ..."), 1,
     r"frames of different sizes cannot be batched: give each .* size=\(height, width\)"),
    (jax.errors.JaxRuntimeError("RESOURCE_EXHAUSTED: Out of memory while trying to allocate 1.2G"), 1,
     r"device out of memory \(RESOURCE_EXHAUSTED: .*\): lower --config.global_batch_size"),
    (KeyError("a bug"), None, None),
])
def test_cli_failures_are_one_line_with_a_documented_code(error, code, message):
    from zoejax.cli.train import failure

    if code is None:
        assert failure(error, "/w") is None  # a bug keeps its traceback
        return
    text, got = failure(error, "/w")
    assert got == code and "\n" not in text
    assert __import__("re").search(message, text), text
    wrapped = RuntimeError("orbax: async save failed")  # how an asynchronous save reports a full disk
    wrapped.__cause__ = OSError(errno.ENOSPC, "No space left on device")
    assert failure(wrapped, "/w")[0].startswith("disk full writing /w")


@pytest.mark.slow  # a CLI process compiling the train step (run by make test)
def test_cli_exits_75_after_a_preemption_save(tmp_path):
    workdir = tmp_path / "run"
    cmd = [sys.executable, "-m", "zoejax.cli.train", "--config", "configs/zoedepth_nk.py:tiny", "--workdir",
           str(workdir), "--config.num_train_steps=1000", "--config.global_batch_size=2",
           "--config.log_every_steps=1", "--config.mesh_shape=(1, 1, 1)", "--config.eval_every_steps=0",
           "--config.optim.total_steps=3"]  # tests/test_train_loop.py's schedule: its compiled step is reused
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=fast_compile_env(), cwd=ROOT)
    try:
        import time

        deadline = time.monotonic() + 500
        while not (workdir / "metrics.jsonl").is_file() or not (workdir / "metrics.jsonl").read_text():
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()[-2000:]
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=300)
    finally:
        proc.kill()
    assert proc.returncode == 75, err[-2000:]
    result = json.loads(out.strip().splitlines()[-1])
    assert result["preempted"] is True and 0 < result["step"] < 1000
    assert _steps(workdir) == [result["step"]] and "rerun the same command to resume" in err


def test_mixed_frame_sizes_are_one_line_naming_two_files(tmp_path):
    """A custom list whose frames differ in size: grain's batching error ("the same structure", no file) becomes
    one line naming a file of each size and the fix."""
    import importlib.util

    from PIL import Image

    from zoejax.cli.train import failure, make_input

    rows = ["image,depth,depth_scale"]
    for name, (h, w) in (("small", (48, 64)), ("large", (64, 96))):
        Image.fromarray(np.full((h, w, 3), 100, np.uint8)).save(tmp_path / f"{name}.png")
        np.save(tmp_path / f"{name}.npy", np.full((h, w), 2.0, np.float32))
        rows.append(f"{name}.png,{name}.npy,1")
    (tmp_path / "train.csv").write_text("\n".join(rows) + "\n")
    spec = importlib.util.spec_from_file_location("finetune_custom", os.path.join(ROOT, "configs",
                                                                                  "finetune_custom.py"))
    recipe = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(recipe)
    config = recipe.get_config(f"train={tmp_path / 'train.csv'},backbone=tiny")
    with config.unlocked():
        config.global_batch_size, config.input_size = 2, (64, 96)
        config.data.num_workers = 0
    with pytest.raises(ValueError) as info:
        next(make_input(config, 0, 1))  # one batch of both frames
    text, code = failure(info.value, "/w", config)
    assert code == 1 and "\n" not in text
    assert "frames of different sizes cannot be batched" in text and "size=(height, width)" in text
    assert "small.png" in text and "large.png" in text and "64x48" in text and "96x64" in text

