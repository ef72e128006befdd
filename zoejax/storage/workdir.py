"""Reading a training work directory as a model: its model config and the params of one checkpoint, without
rebuilding the optimizer (what ``zoejax.load(workdir)``, ``zoejax-convert --to`` and ``init_from`` read).

Writing is the training loop's (``zoejax.training.checkpointing``); the file names are in ``layout``.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import jax
import numpy as np
import orbax.checkpoint as ocp

from zoejax.storage.converted import model_config_from_dict
from zoejax.storage.layout import CONFIG_FILE, EXTRAS_FILE, INFERENCE_FILE, StoredModel, checkpoint_dir


def warn_skipped(directory: object, step: int, error: Exception) -> None:
    """Log that checkpoint ``step`` in ``directory`` cannot be read and the previous one is tried."""
    message = str(error).splitlines()[0][:300] if str(error) else ""
    logging.warning("checkpoint step %d in %s is unreadable (%s: %s); trying the previous one",
                    step, directory, type(error).__name__, message)


class CheckpointUnreadableError(ValueError):
    """No checkpoint step of a work directory can be read; the message names each step's damaged file."""


def _describe_damage(directory: object, step: int, error: Exception) -> str:
    """"step N (<the file that is not valid JSON>, or the step folder): <the error's first line>"."""
    folder = os.path.join(str(directory), str(step))
    where = folder
    for name in ("_CHECKPOINT_METADATA", "state/_METADATA", "state/_sharding", "meta/metadata", "data/metadata"):
        path = os.path.join(folder, name)
        try:
            with open(path, "rb") as f:
                json.loads(f.read())
        except FileNotFoundError:
            continue
        except (OSError, ValueError):
            where = f"{path} is not valid JSON"
            break
    detail = (str(error).splitlines() or [""])[0][:200]
    return f"step {step} ({where}): {type(error).__name__}: {detail}"


def load_params(workdir: str | os.PathLike, step: int | None = None) -> tuple[dict, dict, int]:
    """(params as host arrays, meta, step) of a work directory's checkpoint. ``step`` None = the latest readable
    step (a damaged latest step is skipped with a warning). Raises FileNotFoundError when there is none and
    CheckpointUnreadableError, naming each step's damaged file, when none can be read."""
    handlers = {"state": ocp.StandardCheckpointHandler(), "meta": ocp.JsonCheckpointHandler(),
                "data": ocp.JsonCheckpointHandler()}
    options = ocp.CheckpointManagerOptions(read_only=True, create=False, enable_async_checkpointing=False)
    manager = ocp.CheckpointManager(checkpoint_dir(workdir), options=options, item_handlers=handlers)
    try:
        steps = [step] if step is not None else sorted(manager.all_steps(), reverse=True)
        if not steps:
            raise FileNotFoundError(f"{workdir} has no checkpoint yet")
        failures = []
        for candidate in steps:
            try:
                restored = manager.restore(candidate, args=ocp.args.Composite(
                    state=ocp.args.StandardRestore(), meta=ocp.args.JsonRestore()))
                step = candidate
                break
            except Exception as e:  # orbax / tensorstore / JSON errors of a damaged step
                failures.append(_describe_damage(manager.directory, candidate, e))
                if len(failures) < len(steps):
                    warn_skipped(manager.directory, candidate, e)
        else:
            raise CheckpointUnreadableError(
                f"no checkpoint of {workdir} can be read: {'; '.join(failures)}. The files are damaged (a copy cut "
                "short, a full disk): restore them from a copy, or train again")
    finally:
        manager.close()
    state = restored.state
    params = state["params"] if isinstance(state, dict) else state.params
    return jax.device_get(params), restored.meta, step


def read_workdir(path: str | os.PathLike, step: int | None = None) -> StoredModel:
    """The model of a work directory: the config it wrote, the params of ``step`` (None: the latest readable
    one), the input size it trains at and the extras of its ``init_from``."""
    path = Path(path)
    config = model_config_from_dict(json.loads((path / CONFIG_FILE).read_text()))
    params, _, step = load_params(path, step)
    info = path / INFERENCE_FILE
    input_size = tuple(json.loads(info.read_text())["input_size"]) if info.is_file() else None
    extras = {}
    if (path / EXTRAS_FILE).is_file():
        with np.load(path / EXTRAS_FILE, allow_pickle=False) as data:
            extras = {k: data[k] for k in data.files}
    provenance = {"source": str(path.absolute()), "format": "workdir", "step": step}
    return StoredModel(config, params, extras, provenance, input_size)
