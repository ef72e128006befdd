"""Orbax checkpointing of a training run: one ``CheckpointManager`` per work directory.

Each step holds the items ``state`` (the sharded ``TrainState``), ``meta`` (JSON: model config, step, metrics)
and, when the input pipeline is checkpointable, ``data`` (its iterator state as JSON). Orbax writes each step
under a temporary name and renames it when complete, so a half-written checkpoint is never restored; a
committed one that was damaged later (truncated file, lost object) fails to restore and ``restore_latest``
falls back to the previous step with a warning. Saves are asynchronous. Retention: the ``keep`` latest
steps, plus, with ``best_metric``, the ``keep_best`` best steps by that evaluation metric.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import jax
import orbax.checkpoint as ocp
from orbax.checkpoint import checkpoint_managers as policies

CHECKPOINT_DIR = "checkpoints"


def checkpoint_dir(workdir: str | os.PathLike) -> str:
    workdir = os.fspath(workdir)
    root = workdir if "://" in workdir else os.path.abspath(workdir)  # gs:// etc. go to orbax as they are
    return os.path.join(root, CHECKPOINT_DIR)


def make_manager(workdir: str | os.PathLike, keep: int = 3, best_metric: str | None = None,
                 best_mode: str = "min", async_save: bool = True, keep_best: int = 1) -> ocp.CheckpointManager:
    """A manager for ``workdir/checkpoints``: keeps the ``keep`` latest steps and, with ``best_metric`` (a key
    of the metrics passed to ``save``), also the ``keep_best`` best steps by it (``best_mode`` "min" or
    "max"); ``manager.best_step()`` is then the best one."""
    if best_mode not in ("min", "max"):
        raise ValueError(f"best_mode must be 'min' or 'max', got {best_mode!r}")
    if best_metric:
        def best_fn(metrics):
            return float(metrics[best_metric])

        policy = policies.AnyPreservationPolicy([
            policies.LatestN(n=keep),
            policies.BestN(get_metric_fn=best_fn, reverse=best_mode == "min", n=keep_best,
                           keep_checkpoints_without_metrics=False)])
        options = ocp.CheckpointManagerOptions(
            best_fn=best_fn, best_mode=best_mode, preservation_policy=policy,
            enable_async_checkpointing=async_save, create=True)
    else:
        options = ocp.CheckpointManagerOptions(max_to_keep=keep, enable_async_checkpointing=async_save,
                                               create=True)
    # Handlers named up front (not inferred from the first save/restore), so that reading a step's metadata
    # before restoring it (``_check_layout``) knows every item instead of warning that it cannot read them.
    handlers = {"state": ocp.StandardCheckpointHandler(), "meta": ocp.JsonCheckpointHandler(),
                "data": ocp.JsonCheckpointHandler()}
    return ocp.CheckpointManager(checkpoint_dir(workdir), options=options, item_handlers=handlers)


def save(manager: ocp.CheckpointManager, step: int, state: Any, meta: dict, data_state: dict | None = None,
         metrics: dict | None = None, force: bool = False) -> bool:
    items = {"state": ocp.args.StandardSave(state), "meta": ocp.args.JsonSave(meta),
             "data": ocp.args.JsonSave(data_state or {})}
    return manager.save(step, args=ocp.args.Composite(**items), metrics=metrics, force=force)


class CheckpointLayoutError(ValueError):
    """A checkpoint's train state has other entries than the state being restored into (another model config, or
    an optimizer state from another zoejax version). Not damage: the steps before it are not tried instead."""


def _check_layout(manager: ocp.CheckpointManager, step: int, abstract_state: Any) -> None:
    try:
        saved = set(ocp.tree.to_flat_dict(manager.item_metadata(step)["state"].tree))
    except Exception:  # unreadable metadata: the restore reports the step as damaged
        return
    expected = set(ocp.tree.to_flat_dict(ocp.tree.serialize_tree(abstract_state, keep_empty_nodes=True)))
    if saved == expected:
        return

    def listing(keys: set) -> str:
        names = ["/".join(map(str, k)) for k in sorted(keys)]
        return ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")

    raise CheckpointLayoutError(
        f"checkpoint step {step} in {manager.directory} holds a different train state than this run builds: "
        f"{len(saved - expected)} entries only in the checkpoint ({listing(saved - expected)}), "
        f"{len(expected - saved)} only in this run ({listing(expected - saved)}). It was written with another "
        "model config or zoejax version (the optimizer state changed with the fused AdamW, "
        "zoejax/training/adamw.py). Use a new work directory; config.init_from=<that work directory> starts from "
        "its params.")


def restore(manager: ocp.CheckpointManager, step: int, abstract_state: Any) -> tuple[Any, dict, dict]:
    """(state, meta, data_state) of ``step`` (``data_state`` is {} when the input was not checkpointable).

    Raises CheckpointLayoutError, naming the differing entries, when the saved state's tree is not
    ``abstract_state``'s."""
    _check_layout(manager, step, abstract_state)
    items = {"state": ocp.args.StandardRestore(abstract_state), "meta": ocp.args.JsonRestore(),
             "data": ocp.args.JsonRestore()}
    restored = manager.restore(step, args=ocp.args.Composite(**items))
    return restored.state, restored.meta, restored.data


def restore_latest(manager: ocp.CheckpointManager, abstract_state: Any) -> tuple[Any, dict, dict, int] | None:
    """(state, meta, data_state, step) of the newest checkpoint that restores, or None when there is none.

    A step that fails to restore (truncated or missing files, unreadable metadata) is skipped with a warning
    and the one before it is tried; if every step fails the last error is raised.
    """
    steps = sorted(manager.all_steps(), reverse=True)
    error: Exception | None = None
    for step in steps:
        try:
            return (*restore(manager, step, abstract_state), step)
        except CheckpointLayoutError:
            raise
        except Exception as e:  # orbax / tensorstore / JSON errors of a damaged step
            error = e
            _warn_skipped(manager, step, e)
    if error is not None:
        raise RuntimeError(f"no checkpoint in {manager.directory} could be restored") from error
    return None


def _warn_skipped(manager: ocp.CheckpointManager, step: int, error: Exception) -> None:
    logging.warning("checkpoint step %d in %s is unreadable (%s: %s); trying the previous one",
                    step, manager.directory, type(error).__name__, str(error).splitlines()[0][:300] if str(error)
                    else "")


def load_params(workdir: str | os.PathLike, step: int | None = None) -> tuple[dict, dict, int]:
    """(params as host arrays, meta, step) of a work directory's checkpoint, without rebuilding the optimizer:
    what ``zoejax.load(workdir)`` uses. ``step`` None = the latest readable step (a damaged latest step is
    skipped with a warning)."""
    manager = make_manager(workdir, async_save=False)
    try:
        steps = [step] if step is not None else sorted(manager.all_steps(), reverse=True)
        if not steps:
            raise FileNotFoundError(f"{workdir} has no checkpoint yet")
        for i, candidate in enumerate(steps):
            try:
                restored = manager.restore(candidate, args=ocp.args.Composite(
                    state=ocp.args.StandardRestore(), meta=ocp.args.JsonRestore()))
                step = candidate
                break
            except Exception as e:
                if i == len(steps) - 1:
                    raise
                _warn_skipped(manager, candidate, e)
    finally:
        manager.close()
    state = restored.state
    params = state["params"] if isinstance(state, dict) else state.params
    return jax.device_get(params), restored.meta, step


def best_step(workdir: str | os.PathLike, best_metric: str, best_mode: str = "min") -> int | None:
    """The step with the best ``best_metric`` among the work directory's checkpoints saved with metrics."""
    manager = make_manager(workdir, best_metric=best_metric, best_mode=best_mode, async_save=False)
    try:
        if not any(manager.metrics(s) is not None for s in manager.all_steps()):
            return None
        return manager.best_step()
    finally:
        manager.close()
