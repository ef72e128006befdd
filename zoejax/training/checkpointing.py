"""Orbax checkpointing of a training run: one ``CheckpointManager`` per work directory.

Each step holds the items ``state`` (the sharded ``TrainState``), ``meta`` (JSON: model config, step, metrics)
and, when the input pipeline is checkpointable, ``data`` (its iterator state as JSON). Orbax writes each step
under a temporary name and renames it when complete, so a half-written checkpoint is never restored. Saves
are asynchronous; keep-N and best-by-metric retention come from ``CheckpointManagerOptions``.
"""

from __future__ import annotations

import os
from typing import Any

import jax
import orbax.checkpoint as ocp

CHECKPOINT_DIR = "checkpoints"


def make_manager(workdir: str | os.PathLike, keep: int = 3, best_metric: str | None = None,
                 best_mode: str = "min", async_save: bool = True) -> ocp.CheckpointManager:
    """A manager for ``workdir/checkpoints``; with ``best_metric`` it keeps the ``keep`` best by that metric."""
    best_fn = (lambda metrics: metrics[best_metric]) if best_metric else None
    options = ocp.CheckpointManagerOptions(
        max_to_keep=keep, best_fn=best_fn, best_mode=best_mode, keep_checkpoints_without_metrics=True,
        enable_async_checkpointing=async_save, create=True)
    return ocp.CheckpointManager(os.path.join(os.path.abspath(workdir), CHECKPOINT_DIR), options=options,
                                 item_names=("state", "meta", "data"))


def save(manager: ocp.CheckpointManager, step: int, state: Any, meta: dict, data_state: dict | None = None,
         metrics: dict | None = None, force: bool = False) -> bool:
    items = {"state": ocp.args.StandardSave(state), "meta": ocp.args.JsonSave(meta),
             "data": ocp.args.JsonSave(data_state or {})}
    return manager.save(step, args=ocp.args.Composite(**items), metrics=metrics, force=force)


def abstract_like(state: Any, shardings: Any) -> Any:
    """ShapeDtypeStructs carrying the target shardings: restore places every array directly where it lives."""
    return jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s), state, shardings)


def restore(manager: ocp.CheckpointManager, step: int, abstract_state: Any) -> tuple[Any, dict, dict]:
    """(state, meta, data_state) of ``step`` (``data_state`` is {} when the input was not checkpointable)."""
    items = {"state": ocp.args.StandardRestore(abstract_state), "meta": ocp.args.JsonRestore(),
             "data": ocp.args.JsonRestore()}
    restored = manager.restore(step, args=ocp.args.Composite(**items))
    return restored.state, restored.meta, restored.data


def load_params(workdir: str | os.PathLike, step: int | None = None) -> tuple[dict, dict, int]:
    """(params as host arrays, meta, step) of a work directory's checkpoint (latest when ``step`` is None),
    without rebuilding the optimizer: what ``zoejax.load(workdir)`` uses."""
    manager = make_manager(workdir, async_save=False)
    try:
        step = manager.latest_step() if step is None else step
        if step is None:
            raise FileNotFoundError(f"{workdir} has no checkpoint yet")
        restored = manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore(),
                                                                 meta=ocp.args.JsonRestore()))
    finally:
        manager.close()
    state = restored.state
    params = state["params"] if isinstance(state, dict) else state.params
    return jax.device_get(params), restored.meta, step
