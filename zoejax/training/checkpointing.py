"""Orbax checkpointing of a training run: one ``CheckpointManager`` per work directory.

Each step holds the items ``state`` (the sharded ``TrainState``), ``meta`` (JSON: model config, step, metrics)
and, when the input pipeline is checkpointable, ``data`` (its iterator state as JSON). Orbax writes each step
under a temporary name and renames it when complete, so a half-written checkpoint is never restored; a
committed one that was damaged later (truncated file, lost object) or holds non-finite weights fails to
restore: ``restore_latest`` moves it aside to ``checkpoints_damaged/`` (so that the run can save that step
again) and continues from the previous step, with a warning naming both. Unfinished steps of a run that died
mid-save (``*.orbax-checkpoint-tmp-*``, e.g. on a full disk) are deleted when the next run starts. A state with
a non-finite value is never saved. Saves are asynchronous. Retention: the ``keep`` latest steps, plus, with
``best_metric``, the ``keep_best`` best steps by that evaluation metric.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import jax
import jax.numpy as jnp
import orbax.checkpoint as ocp
from orbax.checkpoint import checkpoint_managers as policies

from zoejax.storage.layout import checkpoint_dir
from zoejax.storage.workdir import warn_skipped

DAMAGED_DIR = "checkpoints_damaged"  # beside CHECKPOINT_DIR: steps that failed to restore, moved aside


class NonFiniteStateError(FloatingPointError):
    """A train state holds NaN or infinite values: never saved, and not resumed from."""


class NoRestorableCheckpointError(RuntimeError):
    """Every checkpoint of a work directory failed to restore."""



def make_manager(workdir: str | os.PathLike, keep: int = 3, best_metric: str | None = None,
                 best_mode: str = "min", async_save: bool = True, keep_best: int = 1,
                 cleanup_tmp: bool = False) -> ocp.CheckpointManager:
    """A manager for ``workdir/checkpoints``: keeps the ``keep`` latest steps and, with ``best_metric`` (a key
    of the metrics passed to ``save``), also the ``keep_best`` best steps by it (``best_mode`` "min" or
    "max"); ``manager.best_step()`` is then the best one. ``cleanup_tmp`` deletes unfinished saves left by an
    earlier run: only for the one process that writes the work directory (a reader must not delete the save
    in progress of a live run)."""
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
            enable_async_checkpointing=async_save, create=True, cleanup_tmp_directories=cleanup_tmp)
    else:
        options = ocp.CheckpointManagerOptions(max_to_keep=keep, enable_async_checkpointing=async_save,
                                               create=True, cleanup_tmp_directories=cleanup_tmp)
    # Handlers named up front (not inferred from the first save/restore), so that reading a step's metadata
    # before restoring it (``_check_layout``) knows every item instead of warning that it cannot read them.
    handlers = {"state": ocp.StandardCheckpointHandler(), "meta": ocp.JsonCheckpointHandler(),
                "data": ocp.JsonCheckpointHandler()}
    return ocp.CheckpointManager(checkpoint_dir(workdir), options=options, item_handlers=handlers)


@jax.jit
def _all_finite(tree: Any) -> jax.Array:
    leaves = [x for x in jax.tree.leaves(tree) if jnp.issubdtype(x.dtype, jnp.inexact)]
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in leaves])) if leaves else jnp.array(True)


def non_finite_entries(state: Any, limit: int = 4) -> list[str] | None:
    """None when every float in ``state`` is finite, else the paths of (up to ``limit``) entries holding a NaN
    or an infinity. One fused reduction on the devices in the common case; collective in a multi-host run."""
    if bool(jax.device_get(_all_finite(state))):
        return None
    bad = []
    for path, leaf in jax.tree_util.tree_leaves_with_path(state):
        if jnp.issubdtype(leaf.dtype, jnp.inexact) and not bool(jax.device_get(_all_finite(leaf))):
            bad.append(jax.tree_util.keystr(path))
            if len(bad) == limit:
                break
    return bad


def save(manager: ocp.CheckpointManager, step: int, state: Any, meta: dict, data_state: dict | None = None,
         metrics: dict | None = None, force: bool = False) -> bool:
    """Saves ``step`` (asynchronously when the manager is). Raises NonFiniteStateError, writing nothing, when
    ``state`` holds a NaN or an infinity: a diverged run must not rotate its good checkpoints out."""
    bad = non_finite_entries(state)
    if bad is not None:
        raise NonFiniteStateError(f"step {step}: the train state is not finite ({', '.join(bad)} ...); not saved")
    items = {"state": ocp.args.StandardSave(state), "meta": ocp.args.JsonSave(meta),
             "data": ocp.args.JsonSave(data_state or {})}
    return manager.save(step, args=ocp.args.Composite(**items), metrics=metrics, force=force)


class CheckpointLayoutError(ValueError):
    """A checkpoint's train state has other entries than the state being restored into (another model config, or
    an optimizer state from another zoejax version). Not damage: the steps before it are not tried instead."""


def _check_layout(manager: ocp.CheckpointManager, step: int, abstract_state: Any) -> None:
    try:
        saved_tree = ocp.tree.to_flat_dict(manager.item_metadata(step)["state"].tree)
        saved_shapes = {k: tuple(v.shape) for k, v in saved_tree.items()}
    except Exception:  # unreadable metadata: the restore reports the step as damaged
        return
    expected_tree = ocp.tree.to_flat_dict(ocp.tree.serialize_tree(abstract_state, keep_empty_nodes=True))
    saved, expected = set(saved_shapes), set(expected_tree)
    if saved == expected:
        # Same entries, other shapes: another architecture of the same layout (width, bins, window, ...).
        reshaped = [(k, saved_shapes[k], tuple(expected_tree[k].shape)) for k in sorted(saved)
                    if hasattr(expected_tree[k], "shape") and saved_shapes[k] != tuple(expected_tree[k].shape)]
        if not reshaped:
            return
        shown = ", ".join(f"{'/'.join(map(str, k))} is {a} there, {b} here" for k, a, b in reshaped[:4])
        raise CheckpointLayoutError(
            f"checkpoint step {step} in {manager.directory} holds another architecture than this run builds: "
            f"{len(reshaped)} entries differ in shape ({shown}{' ...' if len(reshaped) > 4 else ''}). Use a new "
            "work directory for this config, or resume this one with the config it was trained with")

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

    A step that fails to restore (truncated or missing files, unreadable metadata, non-finite values) is
    skipped with a warning and the one before it is tried. Once one restores, the skipped ones are moved to
    ``checkpoints_damaged/`` (so that the run can save those step numbers again). Raises
    NoRestorableCheckpointError, moving nothing, when every step fails, and CheckpointLayoutError when a step
    holds another train state (not damage: no older step is tried).
    """
    steps = sorted(manager.all_steps(), reverse=True)
    failed: list[tuple[int, Exception]] = []
    for step in steps:
        try:
            state, meta, data_state = restore(manager, step, abstract_state)
            bad = non_finite_entries(state)
            if bad is not None:
                raise NonFiniteStateError(f"non-finite values in {', '.join(bad)}")
        except CheckpointLayoutError:
            raise
        except Exception as e:  # orbax / tensorstore / JSON errors of a damaged step
            failed.append((step, e))
            warn_skipped(manager.directory, step, e)
            continue
        for bad_step, error in failed:
            moved = _move_aside(manager, bad_step)
            logging.warning("checkpoint step %d (%s) moved to %s; resuming from step %d", bad_step,
                            _first_line(error), moved, step)
        if failed:
            _sync("zoejax_damaged_checkpoints_moved")
            manager.reload()
        return state, meta, data_state, step
    if failed:
        listing = "; ".join(f"step {s}: {type(e).__name__}: {_first_line(e)}" for s, e in failed)
        raise NoRestorableCheckpointError(
            f"none of the {len(failed)} checkpoints in {manager.directory} restores ({listing}). Move that folder "
            "away to start this run afresh, or use another --workdir")
    return None


def _first_line(error: Exception) -> str:
    text = str(error)
    return text.splitlines()[0][:300] if text else ""


def _move_aside(manager: ocp.CheckpointManager, step: int) -> str:
    """Moves a step's folder to ``<workdir>/checkpoints_damaged/<step>[-n]`` (process 0 only); returns where."""
    from etils import epath

    source = epath.Path(manager.directory) / str(step)
    target_dir = epath.Path(manager.directory).parent / DAMAGED_DIR
    target = target_dir / str(step)
    n = 1
    while target.exists():
        target, n = target_dir / f"{step}-{n}", n + 1
    if jax.process_index() == 0:
        target_dir.mkdir(parents=True, exist_ok=True)
        source.rename(target)
    return os.fspath(target)


def _sync(name: str) -> None:
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)
