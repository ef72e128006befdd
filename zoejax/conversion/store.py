"""The converted-checkpoint folder: orbax params (+ extras), ``model_config.json`` and ``provenance.json``.

Layout of OUTPUT_DIR:
  state/               orbax PyTree checkpoint {"params": ..., "extras": {name: array}}
  model_config.json    ``ZoeDepthConfig.to_dict()`` (everything needed to rebuild the model)
  provenance.json      source file, its sha256, format, variant, zoejax version, time
The folder is assembled under a temporary name beside OUTPUT_DIR and renamed into place at the end, so an
interrupted or failed conversion never leaves a half-written OUTPUT_DIR.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import orbax.checkpoint as ocp

from zoejax import __version__
from zoejax.io.safe_output import atomic_dir
from zoejax.models.config import ZoeDepthConfig

CONFIG_FILE, PROVENANCE_FILE, STATE_DIR = "model_config.json", "provenance.json", "state"


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def is_converted_dir(path: str | os.PathLike) -> bool:
    path = Path(path)
    return (path / CONFIG_FILE).is_file() and (path / STATE_DIR).is_dir()


def save_converted(output_dir: str | os.PathLike, config: ZoeDepthConfig, params: Any,
                   extras: dict[str, np.ndarray], provenance: dict[str, Any], overwrite: bool = False) -> Path:
    """Write a converted checkpoint atomically. Refuses a non-empty ``output_dir`` unless ``overwrite``, and even
    then one holding ``provenance["source"]`` or files zoejax did not write (``zoejax.io.safe_output``)."""
    out = Path(output_dir).absolute()
    source = provenance.get("source")
    with atomic_dir(out, overwrite=overwrite, inputs=[source] if isinstance(source, str) else []) as tmp:
        state = {"params": params, "extras": dict(extras)}
        ocp.PyTreeCheckpointer().save(tmp / STATE_DIR, state)
        (tmp / CONFIG_FILE).write_text(json.dumps(config.to_dict(), indent=2))
        record = {"zoejax_version": __version__, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                  **provenance}
        (tmp / PROVENANCE_FILE).write_text(json.dumps(record, indent=2))
    return out


def load_converted(path: str | os.PathLike) -> tuple[ZoeDepthConfig, dict, dict[str, np.ndarray], dict]:
    """(config, params, extras, provenance) of a converted checkpoint folder."""
    path = Path(path)
    if not is_converted_dir(path):
        raise FileNotFoundError(f"{path} is not a converted zoejax checkpoint (expected {CONFIG_FILE} and "
                                f"{STATE_DIR}/ inside)")
    config = ZoeDepthConfig.from_dict(json.loads((path / CONFIG_FILE).read_text()))
    with warnings.catch_warnings():  # host numpy/jax arrays are what we want; orbax's topology note is noise here
        warnings.filterwarnings("ignore", message="Sharding info not provided")
        state = ocp.PyTreeCheckpointer().restore((path / STATE_DIR).absolute())
    provenance_file = path / PROVENANCE_FILE
    provenance = json.loads(provenance_file.read_text()) if provenance_file.is_file() else {}
    return config, state["params"], dict(state.get("extras") or {}), provenance
