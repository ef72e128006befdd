"""File names of the two folders a model is stored in, how to tell them apart, and what reading one gives.

A converted folder (written by ``zoejax-convert``, ``zoejax.storage.converted``)::

  state/               orbax PyTree checkpoint {"params": ..., "extras": {name: array}}
  model_config.json    ``ZoeDepthConfig.to_dict()`` (everything needed to rebuild the model)
  provenance.json      source file, its sha256, format, variant, zoejax version, time

A training work directory (written by ``zoejax.training.loop``, read by ``zoejax.storage.workdir``)::

  checkpoints/<step>/  orbax items "state" (the TrainState), "meta" (JSON), "data" (the input's iterator state)
  model_config.json    as above
  inference.json       {"input_size": [H, W]}: the network input size the run trains at
  extras.npz           the never-used tensors of ``init_from``, for lossless export (when it had any)
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import numpy as np

from zoejax.models.config import ZoeDepthConfig

CONFIG_FILE = "model_config.json"
PROVENANCE_FILE = "provenance.json"
STATE_DIR = "state"
CHECKPOINT_DIR = "checkpoints"
INFERENCE_FILE = "inference.json"
EXTRAS_FILE = "extras.npz"


@dataclasses.dataclass
class StoredModel:
    """A model as read from storage: ``config``, ``params`` (host arrays), ``extras`` (tensors the forward pass
    never uses, kept for lossless export), ``provenance`` (where it came from) and, for a work directory, the
    ``input_size`` (H, W) it trained at (None: the model's default)."""

    config: ZoeDepthConfig
    params: Any
    extras: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)
    provenance: dict[str, Any] = dataclasses.field(default_factory=dict)
    input_size: tuple[int, int] | None = None


def is_converted_dir(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a ``zoejax-convert`` folder (a model config and a state folder)."""
    path = Path(path)
    return (path / CONFIG_FILE).is_file() and (path / STATE_DIR).is_dir()


def is_workdir(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a training work directory (a model config and a checkpoints folder)."""
    path = Path(path)
    return (path / CHECKPOINT_DIR).is_dir() and (path / CONFIG_FILE).is_file()


def checkpoint_dir(workdir: str | os.PathLike) -> str:
    """``workdir/checkpoints`` as orbax takes it: absolute for local paths, gs:// etc. as they are."""
    workdir = os.fspath(workdir)
    root = workdir if "://" in workdir else os.path.abspath(workdir)
    return os.path.join(root, CHECKPOINT_DIR)
