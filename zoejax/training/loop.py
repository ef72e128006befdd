"""The training loop: mesh -> state (fresh, from converted weights, or resumed) -> jitted sharded steps ->
logging (``metrics.jsonl``, progress bar) and checkpoints. One process per host; logs from host 0 only.

The input is any iterator of per-host batches (``data_pipelines``'s grain iterators, or a synthetic one);
when it has ``get_state()`` / ``set_state()`` its position is saved with each checkpoint and restored on
resume, so a resumed run sees exactly the batches an uninterrupted one would.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import time
from collections.abc import Iterator
from typing import Any

import jax
import numpy as np
from tqdm import tqdm

from zoejax.models.config import ZoeDepthConfig
from zoejax.models.zoedepth import ZoeDepth
from zoejax.training import checkpointing
from zoejax.training.optim import OptimConfig, make_optimizer
from zoejax.training.sharding import batch_sharding, check_batch_divisible, make_mesh, shard_batch
from zoejax.training.state import create_sharded_state
from zoejax.training.step import LossConfig, make_steps

METRICS_FILE = "metrics.jsonl"


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Run settings (the model and optimizer have their own configs)."""

    num_train_steps: int
    global_batch_size: int = 16
    log_every_steps: int = 50
    checkpoint_every_steps: int = 500
    keep_checkpoints: int = 3
    seed: int = 0
    init_from: str = ""  # a converted folder, an official / MiDaS / HF checkpoint, or "" for random init
    mesh_shape: tuple[int, int, int] = (-1, 1, 1)
    halt_on_nonfinite: bool = False
    async_checkpoints: bool = True


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


def _initial_params(init_from: str, model_config: ZoeDepthConfig):
    if not init_from:
        return None
    from zoejax.api import load

    loaded = load(init_from)
    if loaded.config.backbone != model_config.backbone or len(loaded.config.bins) != len(model_config.bins):
        raise ValueError(f"init_from={init_from} holds a different architecture than the config")
    return jax.device_get(loaded.params)


def train(model_config: ZoeDepthConfig, train_config: TrainConfig, optim_config: OptimConfig,
          loss_config: LossConfig, workdir: str, batches: Iterator[dict[str, np.ndarray]]) -> dict[str, Any]:
    """Train until ``num_train_steps`` (resuming from the latest checkpoint in ``workdir`` if any).

    Returns the last logged metrics (host floats) plus ``step`` and ``resumed_from``.
    """
    os.makedirs(workdir, exist_ok=True)
    is_host0 = jax.process_index() == 0
    mesh = make_mesh(train_config.mesh_shape)
    check_batch_divisible(train_config.global_batch_size, mesh)
    tx = make_optimizer(optim_config)
    train_step, _ = make_steps(ZoeDepth(model_config), tx, loss_config)
    rng = jax.random.key(train_config.seed)
    state, shardings = create_sharded_state(model_config, tx, mesh, rng,
                                            _initial_params(train_config.init_from, model_config))
    manager = checkpointing.make_manager(workdir, train_config.keep_checkpoints,
                                         async_save=train_config.async_checkpoints)
    resumed_from = manager.latest_step()
    if resumed_from is not None:
        state, _, data_state = checkpointing.restore(
            manager, resumed_from, checkpointing.abstract_like(state, shardings))
        if data_state and hasattr(batches, "set_state"):
            batches.set_state(data_state)
    if is_host0:
        with open(os.path.join(workdir, "model_config.json"), "w") as f:
            json.dump(model_config.to_dict(), f, indent=2)

    step_fn = jax.jit(train_step, in_shardings=(shardings, batch_sharding(mesh), None),
                      out_shardings=(shardings, None), donate_argnums=0)
    meta = {"model": model_config.to_dict(), "train": dataclasses.asdict(train_config)}
    start = int(jax.device_get(state.step))
    last: dict[str, Any] = {}
    window_start, window_steps = time.perf_counter(), 0
    with _Preemption() as preemption, open(os.path.join(workdir, METRICS_FILE), "a") as log:
        bar = tqdm(total=train_config.num_train_steps, initial=start, disable=not is_host0, desc="train")
        for step in range(start, train_config.num_train_steps):
            batch = shard_batch(next(batches), mesh)
            state, metrics = step_fn(state, batch, rng)
            window_steps += 1
            done = step + 1
            if done % train_config.log_every_steps == 0 or done == train_config.num_train_steps:
                host = {k: float(v) for k, v in jax.device_get(metrics).items()}  # the only host sync
                elapsed = time.perf_counter() - window_start
                host.update(step=done, steps_per_s=window_steps / elapsed,
                            images_per_s=window_steps * train_config.global_batch_size / elapsed)
                if not host.pop("finite") and train_config.halt_on_nonfinite:
                    raise FloatingPointError(f"non-finite loss at step {done}; stopping (halt_on_nonfinite)")
                if is_host0:
                    log.write(json.dumps(host) + "\n")
                    log.flush()
                    bar.set_postfix(loss=f"{host['loss']:.4f}", img_s=f"{host['images_per_s']:.1f}")
                last = host
                window_start, window_steps = time.perf_counter(), 0
            bar.update(1)
            final = done == train_config.num_train_steps
            if done % train_config.checkpoint_every_steps == 0 or final or preemption.requested:
                data_state = batches.get_state() if hasattr(batches, "get_state") else None
                checkpointing.save(manager, done, state, {**meta, "step": done}, data_state, force=True)
            if preemption.requested:
                break
        bar.close()
    manager.wait_until_finished()
    manager.close()
    return {**last, "step": int(jax.device_get(state.step)), "resumed_from": resumed_from}
