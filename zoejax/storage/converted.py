"""The converted-checkpoint folder: orbax params (+ extras), ``model_config.json`` and ``provenance.json``
(layout in ``zoejax.storage.layout``).

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

from zoejax.io.safe_output import atomic_dir
from zoejax.models.config import ZoeDepthConfig
from zoejax.models.depth_anything_config import DepthAnythingConfig
from zoejax.models.relative_depth import MODEL_TYPE as RELATIVE_TYPE
from zoejax.models.relative_depth import RelativeDepthConfig
from zoejax.storage.layout import CONFIG_FILE, PROVENANCE_FILE, STATE_DIR, StoredModel, is_converted_dir
from zoejax.version import __version__


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def save_converted(output_dir: str | os.PathLike, config: ZoeDepthConfig | DepthAnythingConfig, params: Any,
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


def model_config_from_dict(d: dict[str, Any]) -> ZoeDepthConfig | DepthAnythingConfig | RelativeDepthConfig:
    """The config of a ``model_config.json``: a Depth Anything one says ``model_type: depth_anything``, a
    relative MiDaS one ``model_type: relative``; every other (older files have no ``model_type``) is a ZoeDepth."""
    if d.get("model_type") == "depth_anything":
        return DepthAnythingConfig.from_dict(d)
    if d.get("model_type") == RELATIVE_TYPE:
        return RelativeDepthConfig.from_dict(d)
    return ZoeDepthConfig.from_dict(d)


def read_converted(path: str | os.PathLike) -> StoredModel:
    """The model in a converted checkpoint folder (its provenance as recorded at conversion)."""
    path = Path(path)
    if not is_converted_dir(path):
        raise FileNotFoundError(f"{path} is not a converted zoejax checkpoint (expected {CONFIG_FILE} and "
                                f"{STATE_DIR}/ inside)")
    config = model_config_from_dict(json.loads((path / CONFIG_FILE).read_text()))
    with warnings.catch_warnings():  # host numpy/jax arrays are what we want; orbax's topology note is noise here
        warnings.filterwarnings("ignore", message="Sharding info not provided")
        state = ocp.PyTreeCheckpointer().restore((path / STATE_DIR).absolute())
    provenance_file = path / PROVENANCE_FILE
    provenance = json.loads(provenance_file.read_text()) if provenance_file.is_file() else {}
    return StoredModel(config, state["params"], dict(state.get("extras") or {}), provenance)
