"""Depth Anything conversion end to end: an official ``.pth`` or a transformers ``DepthAnythingForDepthEstimation``
folder -> a zoejax folder (orbax params, ``model_config.json`` with ``model_type: depth_anything``, provenance), and
export of such a folder back to either layout. The tables and detection are in ``depth_anything_table.py``."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import jax
import numpy as np

from zoejax.conversion.apply import Converted, params_to_state_dict, state_dict_to_params
from zoejax.conversion.depth_anything_table import (
    DetectedDepthAnything,
    detect,
    export_defaults,
    hf_config_dict,
    hf_table,
    official_table,
)
from zoejax.conversion.hf_folder import write_hf_folder
from zoejax.io.safe_output import atomic_path
from zoejax.models.depth_anything_config import DepthAnythingConfig
from zoejax.storage.layout import StoredModel

EXPORT_TARGETS = ("official", "hf")


def param_shapes(config: DepthAnythingConfig) -> Any:
    """The model's parameter tree as shapes (``jax.eval_shape``: nothing allocated)."""
    import flax.linen as nn

    from zoejax.models.depth_anything import DepthAnything

    p = config.backbone.patch_size
    images = jax.ShapeDtypeStruct((1, 2 * p, 2 * p, 3), np.float32)
    return nn.unbox(jax.eval_shape(DepthAnything(config).init, jax.random.PRNGKey(0), images)["params"])


def convert_depth_anything(state: dict[str, np.ndarray], hf: dict | None, *, source: str = "state dict",
                           preset: str | None = None) -> tuple[DetectedDepthAnything, Converted]:
    """Detect (``depth_anything_table.detect``) and strictly convert a Depth Anything state dict."""
    detected = detect(state, hf, source=source, preset=preset)
    table = official_table(detected.config) if detected.format == "depth_anything" else hf_table(
        detected.config, detected.naming)
    return detected, state_dict_to_params(state, table, param_shapes(detected.config), source)


def export_state_dict(config: DepthAnythingConfig, params: Any, extras: dict[str, np.ndarray], to: str,
                      seed: int = 0) -> dict[str, np.ndarray]:
    """The torch-layout state dict: ``to="official"`` (the ``.pth`` keys) or ``"hf"`` (Hub file names)."""
    if to not in EXPORT_TARGETS:
        raise ValueError(f"export target must be one of {EXPORT_TARGETS}, got {to!r}")
    table = official_table(config) if to == "official" else hf_table(config, "file")
    return params_to_state_dict(jax.device_get(params), table, extras, export_defaults(config, seed))


def export_depth_anything(model: StoredModel, out: Path, to: str, overwrite: bool, inputs: list) -> Path:
    """Write ``model`` (a Depth Anything ``StoredModel``) as an official ``.pth`` (a plain state dict, as the
    releases) or a transformers folder (``model.safetensors`` + ``config.json``), atomically."""
    import torch

    state = export_state_dict(model.config, model.params, model.extras, to)
    if to == "official":
        with warnings.catch_warnings():  # read-only host arrays: torch.save only reads them
            warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
            tensors = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in state.items()}
        with atomic_path(out) as tmp:
            torch.save(tensors, tmp)
        return out
    import transformers
    kwargs = hf_config_dict(model.config)
    cls, backbone = kwargs.pop("backbone_config")
    hf_cfg = transformers.DepthAnythingConfig(backbone_config=getattr(transformers, cls)(**backbone), **kwargs)
    hf_cfg.architectures = ["DepthAnythingForDepthEstimation"]
    return write_hf_folder(out, state, hf_cfg, overwrite=overwrite, inputs=inputs)
