"""Conversion end to end: checkpoint file -> (config, params, extras) -> converted folder, and export back to the
official ``.pt`` or the Hugging Face folder layout."""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import jax
import numpy as np

from zoejax.conversion.apply import Converted, params_to_state_dict, state_dict_to_params
from zoejax.conversion.backbone_weights import weights_of
from zoejax.conversion.depth_anything_convert import convert_depth_anything, export_depth_anything
from zoejax.conversion.depth_anything_table import DetectedDepthAnything, layout_of
from zoejax.conversion.detect import Detected, detect
from zoejax.conversion.hf_config import hf_backbone_config_class, hf_config_kwargs
from zoejax.conversion.hf_folder import write_hf_folder
from zoejax.conversion.hf_table import hf_table
from zoejax.conversion.official_table import midas_table, official_table
from zoejax.conversion.readers import read_checkpoint
from zoejax.conversion.table import Table, default_extras
from zoejax.io.safe_output import atomic_path, check_dir_output, check_file_output
from zoejax.models.config import ZoeDepthConfig
from zoejax.models.depth_anything_config import DepthAnythingConfig
from zoejax.models.init import init_params, param_shapes
from zoejax.storage.converted import read_converted, save_converted, sha256_file
from zoejax.storage.layout import StoredModel, is_converted_dir, is_workdir
from zoejax.storage.workdir import read_workdir


def table_for(detected: Detected) -> Table:
    if detected.format == "official":
        return official_table(detected.config)
    if detected.format == "midas":
        return midas_table(detected.config)
    return hf_table(detected.config, detected.naming)


def convert_state_dict(state: dict[str, np.ndarray], hf_config: dict | None = None, *, source: str = "state dict",
                       format: str | None = None, variant: str | None = None, max_depth: float | None = None,
                       seed: int = 0) -> tuple[Detected, Converted]:
    """Detect and strictly convert. A MiDaS checkpoint fills encoder and decoder; the metric head is freshly
    initialised (``seed``), ready for training."""
    detected = detect(state, hf_config, format=format, variant=variant, max_depth=max_depth, source=source)
    shapes = param_shapes(detected.config)
    if detected.format == "midas":
        converted = state_dict_to_params(state, midas_table(detected.config), {"core": shapes["core"]}, source)
        converted.params["metric_head"] = jax.device_get(init_params(detected.config, seed, only="metric_head"))
    else:
        converted = state_dict_to_params(state, table_for(detected), shapes, source)
    return detected, converted


def convert_file(input_path: str | os.PathLike, output_dir: str | os.PathLike, *, format: str | None = None,
                 variant: str | None = None, max_depth: float | None = None, overwrite: bool = False,
                 seed: int = 0, preset: str | None = None) -> tuple[Path, Detected | DetectedDepthAnything, Converted]:
    """Convert an official / MiDaS / HF checkpoint into a zoejax folder (orbax + config + provenance).

    A Depth Anything ``.pth`` or transformers folder is recognised from its keys (``depth_anything_table``);
    ``preset`` names its model when the ``.pth`` file name is not the release's."""
    check_dir_output(output_dir, overwrite=overwrite, inputs=[input_path])  # before minutes of reading
    state, hf_config = read_checkpoint(input_path)
    weights = Path(input_path)
    weights = weights / "model.safetensors" if weights.is_dir() else weights
    if layout_of(state) is not None:
        if format is not None or variant is not None or max_depth is not None:
            raise ValueError(f"{input_path} is a Depth Anything checkpoint: --format, --variant and --max-depth are "
                             f"ZoeDepth's (name a Depth Anything model with --preset)")
        found, converted = convert_depth_anything(state, hf_config, source=str(input_path), preset=preset)
        provenance = {"source": str(Path(input_path).absolute()), "sha256": sha256_file(weights),
                      "format": found.format, "preset": found.preset, "extras": sorted(converted.extras)}
        out = save_converted(output_dir, found.config, converted.params, converted.extras, provenance, overwrite)
        return out, found, converted
    if preset is not None:
        raise ValueError(f"--preset names a Depth Anything model, but {input_path} is not a Depth Anything "
                         f"checkpoint")
    detected, converted = convert_state_dict(state, hf_config, source=str(input_path), format=format,
                                             variant=variant, max_depth=max_depth, seed=seed)
    provenance = {"source": str(Path(input_path).absolute()), "sha256": sha256_file(weights),
                  "format": detected.format, "variant": detected.variant, "backbone": detected.backbone,
                  **({"preset": detected.preset} if detected.preset else {}),
                  "extras": sorted(converted.extras),
                  "fresh_metric_head": detected.format == "midas"}
    out = save_converted(output_dir, detected.config, converted.params, converted.extras, provenance, overwrite)
    return out, detected, converted


def export_state_dict(config: ZoeDepthConfig, params: Any, extras: dict[str, np.ndarray], to: str,
                      seed: int = 0) -> dict[str, np.ndarray]:
    """Torch-layout state dict in the ``to`` layout: "official" (ZoeDepth .pt keys) or "hf" (file names).

    Extras kept at import are written back unchanged; a model that never had them gets them initialised as
    the official code would (seeded), and index buffers are computed.
    """
    if to == "official":
        table = official_table(config)
    elif to == "hf":
        table = hf_table(config, "file")
    else:
        raise ValueError(f"export target must be 'official' or 'hf', got {to!r}")
    defaults = default_extras(config.decoder.features, config.backbone.num_features, seed)
    defaults.update(weights_of(config).default_extras(config, seed))
    return params_to_state_dict(jax.device_get(params), table, extras, defaults)


def _load_folder(path: Path) -> StoredModel:
    """The model of a ``zoejax-convert`` folder or of a training work directory (its latest readable checkpoint,
    and the extras of its ``init_from`` if it had any; otherwise export regenerates them)."""
    if is_workdir(path):
        return read_workdir(path)
    if is_converted_dir(path):
        return read_converted(path)
    raise FileNotFoundError(f"{path} is neither a zoejax-convert folder (model_config.json and state/ inside) "
                            f"nor a training work directory (model_config.json and checkpoints/ inside)")


def export_checkpoint(checkpoint_dir: str | os.PathLike, out: str | os.PathLike, to: str,
                      overwrite: bool = False) -> Path:
    """Export a converted (or trained) zoejax folder: ``to="official"`` writes a ``.pt`` file loadable with
    the official code's strict ``load_state_dict``; ``to="hf"`` writes ``model.safetensors`` + ``config.json``
    into the folder ``out``. Writes are atomic. An existing output is replaced only with ``overwrite``, and
    never when it is (or holds) the input folder or the file it was converted from, or, for ``hf``, a folder
    holding files zoejax did not write."""
    import torch  # the edge: only export and import need torch

    if to not in ("official", "hf"):
        raise ValueError(f"export target must be 'official' or 'hf', got {to!r}")
    checkpoint_dir, out = Path(checkpoint_dir), Path(out)
    check = check_file_output if to == "official" else check_dir_output
    check(out, overwrite=overwrite, inputs=[checkpoint_dir])  # before loading the weights
    model = _load_folder(checkpoint_dir)
    source = model.provenance.get("source")
    inputs = [checkpoint_dir] + ([source] if isinstance(source, str) else [])
    check(out, overwrite=overwrite, inputs=inputs)
    if isinstance(model.config, DepthAnythingConfig):
        return export_depth_anything(model, out, to, overwrite, inputs)
    state = export_state_dict(model.config, model.params, model.extras, to)
    if to == "official":
        with warnings.catch_warnings():  # read-only host arrays: torch.save only reads them, so no copy is made
            warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
            tensors = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in state.items()}
        with atomic_path(out) as tmp:
            torch.save({"model": tensors, "optimizer": None, "epoch": 0}, tmp)
        return out
    import transformers
    kwargs = hf_config_kwargs(model.config)
    backbone_config = getattr(transformers, hf_backbone_config_class(model.config))(**kwargs.pop("backbone_config"))
    hf_cfg = transformers.ZoeDepthConfig(backbone_config=backbone_config, **kwargs)
    hf_cfg.architectures = ["ZoeDepthForDepthEstimation"]
    return write_hf_folder(out, state, hf_cfg, overwrite=overwrite, inputs=inputs)
