"""The training loop: mesh -> state (fresh, from converted weights, or resumed) -> jitted sharded steps ->
logging (``metrics.jsonl``, TensorBoard, progress bar), periodic evaluation and checkpoints. One process per
host; logs from host 0 only.

The input is any iterator of per-host batches (``data_pipelines``'s grain iterators, or a synthetic one);
when it has ``get_state()`` / ``set_state()`` its position is saved with each checkpoint and restored on
resume, so a resumed run sees exactly the batches an uninterrupted one would.

Evaluation is a callback ``evaluate(params) -> {metric: float}`` run on every host every ``eval_every_steps``
(and after the last step); ``zoejax-train`` builds it from the config's eval datasets with
``zoejax.evaluation.Evaluator``. Its metrics go to ``metrics.jsonl`` (keys prefixed ``eval/``) and TensorBoard,
and the step's checkpoint records them, so the checkpoints best by ``best_metric`` are kept.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import os
import signal
import time
from collections.abc import Callable, Iterator
from typing import Any

import jax
import numpy as np
import optax
from jax.sharding import Mesh
from tqdm import tqdm

from zoejax.models.config import ZoeDepthConfig, backbone_summary
from zoejax.models.family import module_for
from zoejax.ops.platform import OpForms
from zoejax.training import checkpointing, monitoring
from zoejax.training import workdir as run_files
from zoejax.training.config import TrainConfig
from zoejax.training.divergence import check_divergence
from zoejax.training.optim import OptimConfig, lr_schedules, make_optimizer
from zoejax.training.resume import check_resume
from zoejax.training.sharding import batch_sharding, check_batch_divisible, make_mesh, shard_batch, traced_under
from zoejax.training.state import TrainState, abstract_train_state, create_sharded_state, key_path, state_shardings
from zoejax.training.step import LossConfig, make_train_step

METRICS_FILE = "metrics.jsonl"
TENSORBOARD_DIR = "tensorboard"

EvaluateFn = Callable[[Any], dict[str, float]]


class _Preemption:
    """Turns SIGTERM (TPU VM maintenance, SLURM) into a flag the loop checks after each step."""

    def __init__(self):
        self.requested = False
        self._previous = None

    def __enter__(self):
        try:
            self._previous = signal.signal(signal.SIGTERM, self._handle)
        except ValueError:  # not the main thread: no signal handling
            self._previous = None
        return self

    def _handle(self, *_):
        self.requested = True

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)


class InitFromError(ValueError):
    """``init_from`` cannot start this run: unreadable, or another architecture than the config's."""


def load_init_from(init_from: str, model_config: ZoeDepthConfig, seed: int = 0):
    """The ``StoredModel`` at ``init_from`` (any checkpoint ``zoejax.load`` reads), checked against
    ``model_config``; None when ``init_from`` is empty. Raises InitFromError naming the file and, for another
    architecture, the differing entries.

    Between the relative model and ZoeDepth (the paper's M12 -> ZoeD_N path) the shared part moves: a relative run
    or folder starts a ZoeDepth run's ``core`` with a fresh metric head (``seed``), and a ZoeDepth / MiDaS
    checkpoint starts a relative run with its ``core``. A relative Depth Anything model starts a metric Depth
    Anything run with its encoder only and a fresh DPT head, as Depth Anything V2's metric training does."""
    if not init_from:
        return None
    from zoejax.conversion.load import load_weights
    from zoejax.models.init import param_shapes

    try:
        loaded = load_weights(init_from)
    except (OSError, ValueError) as e:  # missing file, unreadable or refused checkpoint, conversion errors
        raise InitFromError(f"init_from={init_from}: {e}") from None
    loaded = _shared_core(loaded, model_config, seed)

    def named(tree):
        return {"/".join(key_path(p)): np.shape(x) for p, x in jax.tree_util.tree_leaves_with_path(tree)}

    want, have = named(param_shapes(model_config)), named(loaded.params)
    problems = [f"  shape: {k} is {have[k]}, the config's is {want[k]}" for k in want if k in have
                and have[k] != want[k]]
    problems += [f"  missing: {k} {want[k]}" for k in want if k not in have]
    problems += [f"  unexpected: {k} {have[k]}" for k in have if k not in want]
    if problems:
        shown = "\n".join(problems[:12]) + (f"\n  ... and {len(problems) - 12} more" if len(problems) > 12 else "")
        raise InitFromError(
            f"init_from={init_from} holds another architecture than the config ({len(problems)} differing "
            f"params; its encoder: {backbone_summary(loaded.config)}, the config's: "
            f"{backbone_summary(model_config)}):\n{shown}")
    return loaded


def _shared_core(loaded, model_config, seed: int):
    """``loaded`` as the start of a ``model_config`` run across the relative / ZoeDepth boundary (see
    ``load_init_from``); unchanged otherwise."""
    from zoejax.models.depth_anything_config import DepthAnythingConfig
    from zoejax.models.relative_depth import RelativeDepthConfig, relative_config

    have_relative = isinstance(loaded.config, RelativeDepthConfig)
    # The Depth Anything V1 metric recipe starts from the relative Depth Anything model (depth_anything_vitl14.pth):
    # its encoder and DPT head are the Depth Anything core's.
    have_depth_anything = isinstance(loaded.config, DepthAnythingConfig) and isinstance(
        model_config, ZoeDepthConfig) and model_config.core == "depth_anything"
    # Depth Anything V2's metric training (metric_depth/train.py) loads only the relative checkpoint's "pretrained"
    # weights: the DPT head, whose output the sigmoid now reads as a fraction of max_depth, starts afresh.
    relative_to_metric = isinstance(loaded.config, DepthAnythingConfig) and isinstance(
        model_config, DepthAnythingConfig) and (loaded.config.head.depth_type, model_config.head.depth_type) == (
        "relative", "metric")
    if relative_to_metric:
        from zoejax.models.init import init_params

        head = jax.device_get(init_params(model_config, seed, only="depth_head"))
        loaded.params = {"pretrained": loaded.params["pretrained"], "depth_head": head}
        loaded.provenance = {**loaded.provenance, "fresh_depth_head": True}
    elif isinstance(model_config, RelativeDepthConfig) and isinstance(loaded.config, ZoeDepthConfig):
        loaded.config, loaded.params = relative_config(loaded.config), {"core": loaded.params["core"]}
    elif isinstance(model_config, ZoeDepthConfig) and (have_relative and "core" in loaded.params
                                                       or have_depth_anything):
        from zoejax.models.init import init_params

        core = {k: loaded.params[k] for k in ("pretrained", "depth_head")} if have_depth_anything else \
            loaded.params["core"]
        head = jax.device_get(init_params(model_config, seed, only="metric_head"))
        loaded.params = {"core": core, "metric_head": head}
        loaded.provenance = {**loaded.provenance, "fresh_metric_head": True}
    return loaded


def log_dir_of(workdir: str, train_config: TrainConfig) -> str:
    if train_config.log_dir:
        return train_config.log_dir
    if "://" in workdir:
        return os.path.join("zoejax_logs", workdir.rstrip("/").rsplit("/", 1)[-1])
    return workdir


@functools.lru_cache(maxsize=4)
def _jitted_train_step(model_config: ZoeDepthConfig, optim_config: OptimConfig, loss_config: LossConfig,
                       mesh: Mesh, ops: OpForms | None = None
                       ) -> tuple[optax.GradientTransformation, TrainState, Callable]:
    """(optimizer, the state's shardings, jitted sharded train step with the state donated). Kept per
    configuration and mesh, so that ``train`` called again in the same process (a notebook continuing a run,
    a restarted phase) reuses the compiled step instead of compiling it again (~15 s for the tiny test model,
    minutes at full size). ``ops``: the model's op forms (``zoejax.ops.platform``); None: this machine's
    backend's, as a run needs; a TPU AOT compile on a CPU host passes TPU's."""
    tx = make_optimizer(optim_config)
    train_step = make_train_step(module_for(model_config, ops), tx, loss_config)
    shardings = state_shardings(model_config, tx, mesh)
    return tx, shardings, jax.jit(traced_under(mesh, train_step), in_shardings=(shardings, batch_sharding(mesh), None),
                                  out_shardings=(shardings, None), donate_argnums=0)


def train(model_config: ZoeDepthConfig, train_config: TrainConfig, optim_config: OptimConfig,
          loss_config: LossConfig, workdir: str, batches: Iterator[dict[str, np.ndarray]],
          evaluate: EvaluateFn | None = None) -> dict[str, Any]:
    """Train until ``num_train_steps`` (resuming from the latest readable checkpoint in ``workdir`` if any).

    Args:
      evaluate: ``params -> {metric: float}``, called on every host (it may be collective) every
        ``train_config.eval_every_steps`` steps and after the last step.
    Returns the last logged metrics (host floats) plus ``step``, ``resumed_from``, ``preempted`` (SIGTERM stopped
    the run early, after saving a checkpoint) and, when evaluation ran, ``eval`` (the last evaluation's metrics).
    Raises WorkdirLockedError while another trainer uses ``workdir``, WorkdirMismatchError when its
    model_config.json is another model's, ResumeMismatchError when its checkpoint cannot be continued with
    these settings, and DivergedError (a FloatingPointError) when no step was finite for
    ``optim_config.max_consecutive_nonfinite`` steps in a row; non-finite weights are never saved.
    """
    workdir = os.fspath(workdir)
    log_dir = log_dir_of(workdir, train_config)
    os.makedirs(log_dir, exist_ok=True)
    with run_files.lock_for_run(workdir, log_dir):
        return _train(model_config, train_config, optim_config, loss_config, workdir, log_dir, batches, evaluate)


def _train(model_config: ZoeDepthConfig, train_config: TrainConfig, optim_config: OptimConfig,
           loss_config: LossConfig, workdir: str, log_dir: str, batches: Iterator[dict[str, np.ndarray]],
           evaluate: EvaluateFn | None) -> dict[str, Any]:
    run_files.write_model_config(workdir, model_config, write=False)  # refuses another model's folder first
    mesh = make_mesh(train_config.mesh_shape)
    check_batch_divisible(train_config.global_batch_size, mesh)
    tx, shardings, step_fn = _jitted_train_step(model_config, optim_config, loss_config, mesh)
    rng = jax.random.key(train_config.seed)
    evaluating = evaluate is not None and train_config.eval_every_steps > 0
    manager = checkpointing.make_manager(
        workdir, train_config.keep_checkpoints, train_config.best_metric if evaluating else None,
        train_config.best_mode, async_save=train_config.async_checkpoints,
        keep_best=train_config.keep_best_checkpoints, cleanup_tmp=True)  # the lock: no other writer
    try:
        return _run(manager, model_config, train_config, optim_config, workdir, log_dir, batches, evaluate,
                    mesh, tx, shardings, step_fn, rng, evaluating)
    finally:
        manager.wait_until_finished()
        manager.close()


def _run(manager, model_config, train_config, optim_config, workdir, log_dir, batches, evaluate, mesh, tx, shardings,
         step_fn, rng, evaluating) -> dict[str, Any]:
    """The body of ``train`` once the work directory is locked and its checkpoint manager open."""
    is_host0 = jax.process_index() == 0
    resumed_from = None
    if manager.all_steps():
        # Resuming: restore straight into the sharded layout. Neither a fresh init nor init_from (a converted
        # .pt may take a minute, and may be gone by now) is built just to be overwritten.
        restored = checkpointing.restore_latest(manager, abstract_train_state(model_config, tx, shardings))
        state, saved_meta, data_state, resumed_from = restored
        restoring_input = bool(data_state) and hasattr(batches, "set_state")
        check_resume(saved_meta, resumed_from, train_config.global_batch_size, train_config.init_from, workdir,
                     restoring_input)
        if restoring_input:
            batches.set_state(data_state)
    else:
        init = load_init_from(train_config.init_from, model_config, train_config.seed)
        state, shardings = create_sharded_state(model_config, tx, mesh, rng,
                                                None if init is None else jax.device_get(init.params))
        if is_host0 and init is not None and init.extras:
            run_files.write_extras(workdir, init.extras)
    run_files.write_model_config(workdir, model_config, write=is_host0)

    head_lr = lr_schedules(optim_config)["head"]
    peak = train_config.peak_flops_per_device or monitoring.peak_flops_per_device(
        jax.devices()[0].device_kind, model_config.dtype)
    flops_per_step: float | None = None
    meta = {"model": model_config.to_dict(), "train": dataclasses.asdict(train_config)}
    start = int(jax.device_get(state.step))
    last: dict[str, Any] = {}
    last_eval: dict[str, float] | None = None
    latest_saved = resumed_from
    preempted = False
    metrics_path = os.path.join(log_dir, METRICS_FILE)
    torn = run_files.repair_jsonl(metrics_path) if is_host0 else None
    if torn is not None:
        logging.warning("%s: removed a torn last record left by a killed run (%r)", metrics_path, torn[:80])
    board = monitoring.TensorBoard(os.path.join(log_dir, TENSORBOARD_DIR), train_config.tensorboard)
    window_start, window_steps = time.perf_counter(), 0
    unfinished = None  # the loss of the latest dispatched step that the progress bar has not counted yet

    def save(done: int, eval_metrics: dict[str, float] | None) -> None:
        nonlocal latest_saved
        check_divergence(state.opt_state, done, optim_config.max_consecutive_nonfinite, latest_saved)
        data_state = batches.get_state() if hasattr(batches, "get_state") else None
        checkpointing.save(manager, done, state, {**meta, "step": done}, data_state, metrics=eval_metrics,
                           force=True)
        latest_saved = done

    try:
        with _Preemption() as preemption, open(metrics_path, "a") as log:
            bar = tqdm(total=train_config.num_train_steps, initial=start, disable=not is_host0, desc="train")
            for step in range(start, train_config.num_train_steps):
                batch = shard_batch(next(batches), mesh)
                if step == start:
                    # Compile once, explicitly, to read the step's FLOPs (the jitted function reuses it).
                    compiled = step_fn.lower(state, batch, rng).compile()
                    flops_per_step = (monitoring.model_flops_per_device(model_config, batch["image"].shape,
                                                                        mesh.size)
                                      or monitoring.step_flops(compiled))
                    if is_host0:
                        run_files.write_inference_info(workdir, batch["image"].shape)
                    window_start = time.perf_counter()
                state, metrics = step_fn(state, batch, rng)
                window_steps += 1
                if unfinished is not None:
                    # Waits for the previous step only (this one is already queued behind it, so the devices
                    # do not idle): the bar counts finished steps, and at most two steps and their batches are in
                    # flight, instead of one more per step until the next log step.
                    unfinished.block_until_ready()
                    bar.update(1)
                unfinished = metrics["loss"]
                done = step + 1
                final = done == train_config.num_train_steps
                if done % train_config.log_every_steps == 0 or final:
                    host = {k: float(v) for k, v in jax.device_get(metrics).items()}  # the only transfer to the host
                    elapsed = time.perf_counter() - window_start
                    step_time = elapsed / window_steps
                    host.update(step=done, lr=float(head_lr(done - 1)), steps_per_s=1.0 / step_time,
                                images_per_s=train_config.global_batch_size / step_time, step_time_s=step_time)
                    utilisation = monitoring.mfu(flops_per_step, step_time, peak)
                    if utilisation is not None:
                        host["mfu"] = utilisation
                    finite = host.pop("finite")
                    if is_host0:
                        log.write(json.dumps(host) + "\n")
                        log.flush()
                        board.scalars(done, {k: v for k, v in host.items() if k != "step"}, "train/")
                        bar.set_postfix(loss=f"{host['loss']:.4f}", img_s=f"{host['images_per_s']:.1f}")
                    if not finite and train_config.halt_on_nonfinite:
                        raise FloatingPointError(f"non-finite loss at step {done}; stopping (halt_on_nonfinite)")
                    check_divergence(state.opt_state, done, optim_config.max_consecutive_nonfinite, latest_saved)
                    last = host
                    window_start, window_steps = time.perf_counter(), 0
                    bar.update(1)  # this step's metrics are on the host: it has finished
                    unfinished = None
                eval_metrics = None
                if evaluating and (done % train_config.eval_every_steps == 0 or final):
                    try:
                        eval_metrics = _run_evaluation(evaluate, state.params, train_config, done)
                    except Exception:
                        _save_before_raising(save, done)
                        raise
                    last_eval = eval_metrics
                    if is_host0:
                        record = {"step": done, **{f"eval/{k}": v for k, v in eval_metrics.items()}}
                        if _is_empty(eval_metrics, train_config):
                            record["eval/empty"] = True
                        log.write(json.dumps(record) + "\n")
                        log.flush()
                        board.scalars(done, eval_metrics, "eval/")
                        board.flush()
                    window_start = time.perf_counter()  # evaluation time is not step time
                if (done % train_config.checkpoint_every_steps == 0 or final or preemption.requested
                        or eval_metrics is not None):
                    ranked = eval_metrics is not None and not _is_empty(eval_metrics, train_config)
                    save(done, eval_metrics if ranked else None)
                if preemption.requested:
                    preempted = not final
                    break
            if unfinished is not None:
                unfinished.block_until_ready()
                bar.update(1)
            bar.close()
    finally:
        board.close()
    result = {**last, "step": int(jax.device_get(state.step)), "resumed_from": resumed_from,
              "preempted": preempted}
    if last_eval is not None:
        result["eval"] = last_eval
    return result


def _save_before_raising(save: Callable[[int, Any], None], done: int) -> None:
    """Keeps the steps since the last checkpoint when the evaluation fails; the evaluation's error is raised."""
    try:
        save(done, None)
        logging.warning("the evaluation at step %d failed; step %d was saved first", done, done)
    except Exception as e:  # the evaluation's error is the one to report
        logging.warning("the evaluation at step %d failed and saving step %d failed too (%s)", done, done, e)


def _is_empty(metrics: dict[str, float], train_config: TrainConfig) -> bool:
    return not metrics or bool(train_config.best_metric and train_config.best_metric not in metrics)


def _run_evaluation(evaluate: EvaluateFn, params: Any, train_config: TrainConfig, step: int) -> dict[str, float]:
    metrics = {k: float(v) for k, v in evaluate(params).items()}
    if _is_empty(metrics, train_config):
        # No scorable image (every ground truth invalid, a list of missing rows, ...): reported, not fatal; the
        # step is saved without metrics, so it does not compete for keep_best_checkpoints.
        what = f"no {train_config.best_metric!r} among {sorted(metrics)}" if metrics else "no metrics"
        logging.warning("the evaluation at step %d scored no image (%s): check eval.datasets and the evaluation "
                        "files; the step is saved without evaluation metrics", step, what)
    return metrics
