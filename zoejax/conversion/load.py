"""Reading any checkpoint zoejax knows as a stored model: a converted folder, a training work directory, or an
official / MiDaS / Hugging Face file converted in memory. The ``zoejax.load`` facade and training's ``init_from``
both read through ``load_weights``."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from zoejax.conversion.depth_anything_table import layout_of
from zoejax.models.config import ZoeDepthConfig
from zoejax.models.depth_anything_config import DepthAnythingConfig
from zoejax.storage.converted import read_converted
from zoejax.storage.layout import StoredModel, is_converted_dir, is_workdir
from zoejax.storage.workdir import read_workdir


def load_weights(path: str | os.PathLike, *, max_depth: float | None = None,
                 variant: str | None = None) -> StoredModel:
    """The model stored at ``path`` (see ``zoejax.api.load`` for the arguments)."""
    path = Path(path)
    if is_workdir(path):
        stored = read_workdir(path)
    elif is_converted_dir(path):
        stored = read_converted(path)
    elif not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}")
    else:
        from zoejax.conversion.convert import convert_state_dict  # reading .pt files needs torch
        from zoejax.conversion.readers import read_checkpoint

        state, hf_config = read_checkpoint(path)
        _refuse_depth_anything(path, layout_of(state) is not None)
        detected, converted = convert_state_dict(state, hf_config, source=str(path), variant=variant,
                                                 max_depth=max_depth)
        provenance = {"source": str(path.absolute()), "format": detected.format, "variant": detected.variant}
        return StoredModel(detected.config, converted.params, converted.extras, provenance)
    _refuse_depth_anything(path, isinstance(stored.config, DepthAnythingConfig))
    if max_depth is not None:
        stored.config = with_max_depth(stored.config, max_depth)
    return stored


def _refuse_depth_anything(path: Path, is_depth_anything: bool) -> None:
    if is_depth_anything:
        raise ValueError(f"{path} is a Depth Anything model: zoejax.load, predict, evaluation and training take "
                         f"ZoeDepth models only so far; build zoejax.models.depth_anything.DepthAnything from "
                         f"zoejax.storage.converted.read_converted (or zoejax-convert it and export it back)")


def with_max_depth(config: ZoeDepthConfig, max_depth: float) -> ZoeDepthConfig:
    """ZoeD_K's config predicting up to ``max_depth`` metres (10: the released model; 80: the KITTI protocol)."""
    if config.is_multi_head or config.head.bin_centers_type != "normed":
        raise ValueError("max_depth applies to ZoeD_K (normed bins) only")
    return dataclasses.replace(config, bins=(dataclasses.replace(config.bins[0], max_depth=float(max_depth)),))
