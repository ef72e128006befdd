"""The loop's periodic evaluation (zoejax-train's Evaluator callback), best-by-metric checkpoint retention,
TensorBoard event files, a NaN batch skipped and counted while training continues, and a damaged latest
checkpoint skipped with a warning on resume."""

import importlib.util
import json
import logging
import os
import shutil
import struct

import jax
import numpy as np
import pytest

from zoejax.storage.workdir import load_params
from zoejax.training import checkpointing, monitoring
from zoejax.training.loop import TrainConfig, train

SCRIPTED_ABS_REL = {2: 0.5, 4: 0.2, 6: 0.4}  # the best evaluation (step 4) is neither the first nor the latest
NAN_STEP = 3
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


pytestmark = pytest.mark.usefixtures("fast_compiles")


def _config_file(name):
    spec = importlib.util.spec_from_file_location(f"config_{name}", os.path.join(ROOT, "configs", f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _config(**overrides):
    """configs/zoedepth_n.py:tiny (its synthetic eval set) shrunk to a few steps."""
    config = _config_file("zoedepth_n").get_config("tiny")
    with config.unlocked():
        config.num_train_steps = 6
        config.global_batch_size = 2
        config.log_every_steps = 1
        config.checkpoint_every_steps = 100
        config.keep_checkpoints = 1
        config.eval_every_steps = 2
        config.eval.num_examples = 4
        config.eval.batch_size = 2
        config.mesh_shape = (1, 1, 1)
        config.async_checkpoints = False
        config.optim.lr = 1e-3
        for k, v in overrides.items():
            config[k] = v
    return config


class NaNAt:
    """Yields the pipeline's batches with a NaN in one batch's image (the step-``at`` batch)."""

    def __init__(self, it, at):
        self.it, self.at, self.n = it, at, 0

    def __iter__(self):
        return self

    def __next__(self):
        batch = dict(next(self.it))
        self.n += 1
        if self.n == self.at:
            batch["image"] = batch["image"].copy()
            batch["image"][0, 0, 0, 0] = np.nan
        return batch


def read_scalars(log_dir):
    """{tag: [(step, value)]} from the TFRecord event files in ``log_dir`` (a minimal reader)."""
    from tensorboardX.proto import event_pb2

    out = {}
    files = [f for f in os.listdir(log_dir) if f.startswith("events.out.tfevents")]
    assert files, f"no event file in {log_dir}"
    for name in files:
        data = open(os.path.join(log_dir, name), "rb").read()
        pos = 0
        while pos < len(data):
            (length,) = struct.unpack("<Q", data[pos:pos + 8])
            record = data[pos + 12:pos + 12 + length]
            pos += 12 + length + 4
            event = event_pb2.Event.FromString(record)
            for value in event.summary.value:
                out.setdefault(value.tag, []).append((event.step, value.simple_value))
    return out


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from zoejax.cli.train import build_run

    workdir = tmp_path_factory.mktemp("run")
    model, train_cfg, optim, loss, batches, evaluate = build_run(_config(), 0, 1)
    assert evaluate is not None and train_cfg.eval_every_steps == 2
    calls = []

    def scripted(params):
        metrics = evaluate(params)  # the real Evaluator on held-out synthetic rooms
        calls.append(metrics)
        return {**metrics, "abs_rel": SCRIPTED_ABS_REL[2 * len(calls)]}

    result = train(model, train_cfg, optim, loss, str(workdir), NaNAt(batches, NAN_STEP), scripted)
    return workdir, result, calls


def test_periodic_evaluation_is_logged(run):
    workdir, result, calls = run
    assert len(calls) == 3
    real = calls[0]
    assert set(real) >= {"abs_rel", "a1", "rmse", "synthetic_indoor/abs_rel", "synthetic_indoor/silog"}
    assert real["abs_rel"] == real["synthetic_indoor/abs_rel"] and 0 < real["abs_rel"] < 10
    lines = [json.loads(x) for x in (workdir / "metrics.jsonl").read_text().splitlines()]
    evals = [x for x in lines if "eval/abs_rel" in x]
    assert [(x["step"], x["eval/abs_rel"]) for x in evals] == sorted(SCRIPTED_ABS_REL.items())
    assert evals[0]["eval/synthetic_indoor/rmse"] == real["synthetic_indoor/rmse"]
    assert result["eval"]["abs_rel"] == 0.4 and result["step"] == 6


def test_best_checkpoint_is_kept_besides_the_latest(run):
    workdir, _, _ = run
    steps = sorted(int(p.name) for p in (workdir / "checkpoints").iterdir() if p.name.isdigit())
    assert steps == [4, 6]  # keep_checkpoints=1 latest + the best by abs_rel (step 4); step 2 deleted
    for mode, best in (("min", 4), ("max", 6)):  # "max": the best of those kept
        manager = checkpointing.make_manager(workdir, best_metric="abs_rel", best_mode=mode, async_save=False)
        try:
            assert manager.best_step() == best
        finally:
            manager.close()


def test_nan_batch_is_skipped_counted_and_training_continues(run):
    workdir, result, _ = run
    lines = {x["step"]: x for x in (json.loads(s) for s in (workdir / "metrics.jsonl").read_text().splitlines())
             if "loss" in x}
    assert sorted(lines) == [1, 2, 3, 4, 5, 6]
    assert np.isnan(lines[NAN_STEP]["loss"])
    assert [lines[s]["skipped_steps"] for s in range(1, 7)] == [0, 0, 1, 1, 1, 1]
    assert all(np.isfinite(lines[s]["loss"]) for s in (4, 5, 6)) and np.isfinite(result["loss"])
    assert lines[4]["loss"] != lines[5]["loss"]  # still updating after the skipped step


def test_tensorboard_event_files(run):
    workdir, _, _ = run
    scalars = read_scalars(workdir / "tensorboard")
    for tag in ("train/loss", "train/lr", "train/grad_norm", "train/skipped_steps", "train/images_per_s",
                "train/step_time_s"):
        assert [s for s, _ in scalars[tag]] == [1, 2, 3, 4, 5, 6], tag
    assert dict(scalars["train/skipped_steps"])[6] == 1.0
    assert dict(scalars["eval/abs_rel"]) == pytest.approx(SCRIPTED_ABS_REL)
    assert "eval/synthetic_indoor/a1" in scalars
    assert "train/mfu" not in scalars  # a CPU is not in the peak table: no MFU rather than a guess


def test_damaged_latest_checkpoint_is_skipped_with_a_warning(run, tmp_path, caplog):
    workdir, _, _ = run
    copy = tmp_path / "copy"
    shutil.copytree(workdir, copy)
    damaged = 0
    for root, _, files in os.walk(copy / "checkpoints" / "6" / "state"):
        for name in files:
            path = os.path.join(root, name)
            size = os.path.getsize(path)
            if size > 1024:  # the array data: truncate to half
                with open(path, "r+b") as f:
                    f.truncate(size // 2)
                damaged += 1
    assert damaged
    with caplog.at_level(logging.WARNING):
        params, meta, step = load_params(copy)
    assert step == 4 and meta["step"] == 4
    assert any("step 6" in r.getMessage() and "unreadable" in r.getMessage() for r in caplog.records)
    assert all(np.all(np.isfinite(x)) for x in jax.tree.leaves(params))

    # Resuming training takes the same fallback: continues from step 4, with an explicit peak for MFU.
    from zoejax.cli.train import build_run

    caplog.clear()
    model, train_cfg, optim, loss, batches, _ = build_run(_config(num_train_steps=5, eval_every_steps=0,
                                                                  peak_flops_per_device=1e12), 0, 1)
    with caplog.at_level(logging.WARNING):
        result = train(model, train_cfg, optim, loss, str(copy), batches)
    assert result["resumed_from"] == 4 and result["step"] == 5
    assert any("unreadable" in r.getMessage() for r in caplog.records)
    # Model FLOPs (the analytic count for the global batch, per device) / step time / the configured peak.
    from zoejax.models import flops

    image = next(iter(batches))["image"].shape  # the run's batch shape (the iterator is not used again)
    expected = flops.train_step_flops(model, *image[:3]) / 1e12 / result["step_time_s"]
    assert result["mfu"] == pytest.approx(expected, rel=1e-6) and 0 < result["mfu"] < 1


def test_peak_table():
    assert monitoring.peak_flops_per_device("TPU v4") == 275e12
    assert monitoring.peak_flops_per_device("TPU v5 lite") == 197e12
    assert monitoring.peak_flops_per_device("TPU v6 lite") == 918e12
    assert monitoring.peak_flops_per_device("NVIDIA H100 80GB HBM3") == 989e12
    assert monitoring.peak_flops_per_device("NVIDIA H100 PCIe", "float32") == 378e12
    assert monitoring.peak_flops_per_device("NVIDIA A100-SXM4-40GB", "float32") == 156e12
    assert monitoring.peak_flops_per_device("TPU v4", "float32") is None
    assert monitoring.peak_flops_per_device("cpu") is None
    assert monitoring.mfu(1e9, 0.5, None) is None and monitoring.mfu(1e9, 0.5, 4e9) == 0.5
    with pytest.raises(ValueError, match="best_mode"):
        TrainConfig(num_train_steps=1, best_mode="lowest")


def eval_sources(config) -> list:
    """(protocol, source) of each periodic-evaluation dataset of a run config, as the run builds them."""
    from zoejax.cli.train import eval_datasets, eval_settings
    from zoejax.evaluation.run import eval_sets

    return [(s.protocol, s.data.sources[0]) for s in eval_sets(eval_datasets(config), eval_settings(config, 1))]


def test_recipes():
    from zoejax.cli.config_loading import run_configs

    finetune = _config_file("finetune_custom")
    config = finetune.get_config("train=/d/train.csv,val=/d/val.csv,variant=nk,domain=1,size=352:1216")
    model, run, optim, loss = run_configs(config)
    assert model.is_multi_head and run.init_from == "ZoeD_M12_NK.pt" and run.eval_every_steps == 250
    assert optim.lr == pytest.approx(2.512e-5) and loss.w_domain == 100.0
    (source,) = config.data.to_dict()["sources"]
    assert (source["name"], source["list_file"], source["domain"], source["size"]) == (
        "custom", "/d/train.csv", 1, (352, 1216))
    ((protocol, eval_source),) = eval_sources(config)
    assert (protocol.dataset, protocol.domain, protocol.max_depth) == ("custom", 1, 80.0)
    assert (eval_source.list_file, eval_source.domain, eval_source.split, eval_source.size) == (
        "/d/val.csv", 1, "test", (352, 1216))
    plain = finetune.get_config("train=/d/train.csv")
    assert plain.eval_every_steps == 0 and plain.init_from == "ZoeD_M12_N.pt" and eval_sources(plain) == []
    with pytest.raises(ValueError, match="train="):
        finetune.get_config("")
    with pytest.raises(ValueError, match="key=value"):
        finetune.get_config("train=/a.csv,lr=1")
    # The Depth Anything variants: their recipes' input and resize, the official file names, the backbone family.
    da1 = finetune.get_config("train=/d/train.csv,variant=da1,domain=1")
    assert (tuple(da1.input_size), da1.init_from, da1.data.train_resize) == (
        (392, 518), "depth_anything_metric_depth_outdoor.pt", "image")
    assert run_configs(da1)[0].bins[0].name == "kitti"
    da2 = finetune.get_config("train=/d/train.csv,variant=da2,backbone=dinov2_vits14")
    assert (tuple(da2.input_size), da2.init_from, da2.data.train_resize, da2.global_batch_size) == (
        (518, 518), "depth_anything_v2_metric_hypersim_vits.pth", "cover_crop", 16)
    assert da2.data.to_dict()["sources"][0]["max_depth"] == 20.0  # the Hypersim model's range, not indoor 10 m
    with pytest.raises(ValueError, match="variant=da2 takes a DINOv2 backbone"):
        finetune.get_config("train=/a.csv,variant=da2,backbone=beit_l384")
    with pytest.raises(ValueError, match="variant=n takes a BEiT / Swin backbone"):
        finetune.get_config("train=/a.csv,backbone=dinov2_vitl14")

    demo = _config_file("demo").get_config()
    _, demo_run, demo_optim, _ = run_configs(demo)
    assert demo_run.num_train_steps == demo_optim.total_steps == 160 and demo_run.global_batch_size == 4
    demo.optim.total_steps = 400  # a longer schedule, stopped early: the run length stays
    _, demo_run, demo_optim, _ = run_configs(demo)
    assert (demo_run.num_train_steps, demo_optim.total_steps) == (160, 400)
    ((demo_protocol, demo_source),) = eval_sources(demo)
    assert demo_source.seed != demo.data.to_dict()["sources"][0]["seed"]  # held-out scenes


@pytest.mark.parametrize("overrides, message", [
    ({"input_size": (100, 130)}, r"input_size \(100, 130\): needs \(height, width\), both positive multiples of 32"),
    ({"input_size": (384,)}, r"input_size \(384,\)"),
    ({"mesh_shape": (2, 1, 1)}, r"needs 2 devices, 1 available"),
    ({"global_batch_size": 3, "mesh_shape": (-1, 1, 1)}, None),  # one device: any batch divides
])
def test_run_settings_are_checked_before_the_model_is_built(overrides, message, monkeypatch):
    from zoejax.cli import train as train_cli

    built = []
    monkeypatch.setattr(train_cli, "make_input", lambda *a: built.append(a) or iter(()))
    config = _config(**overrides)
    if message is None:
        train_cli.build_run(config, 0, 1)
        assert built
        return
    with pytest.raises(ValueError, match=message):
        train_cli.build_run(config, 0, 1)
    assert not built  # nothing was set up before the error


def test_checkpoint_of_another_state_layout_is_named_not_skipped(tmp_path):
    """A checkpoint whose train state has other entries (another config, or the optimizer state of an older
    zoejax) is reported with the differing entries; it is not taken for damage, so no older step is tried."""
    import jax.numpy as jnp

    manager = checkpointing.make_manager(tmp_path, async_save=False)
    saved = {"params": {"w": jnp.ones(3)}, "opt_state": {"mu": {"w": jnp.zeros(3)}, "inner_state": jnp.zeros(())}}
    for step in (1, 2):
        checkpointing.save(manager, step, saved, {"step": step})
    manager.wait_until_finished()
    expected = {"params": {"w": jnp.ones(3)}, "opt_state": {"mu": {"w": jnp.zeros(3)}, "count": jnp.zeros(())}}
    abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), expected)
    with pytest.raises(checkpointing.CheckpointLayoutError) as info:
        checkpointing.restore_latest(manager, abstract)
    message = str(info.value)
    assert "step 2" in message and "opt_state/inner_state" in message and "opt_state/count" in message
    state, meta, _, step = checkpointing.restore_latest(
        manager, jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), saved))
    assert step == 2 and meta["step"] == 2 and float(state["params"]["w"][0]) == 1.0
    manager.close()
