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
from zoejax.models.relative_depth import RelativeDepthConfig, relative_config
from zoejax.storage.converted import read_converted
from zoejax.storage.layout import StoredModel, is_converted_dir, is_workdir
from zoejax.storage.workdir import read_workdir


def load_weights(path: str | os.PathLike, *, max_depth: float | None = None,
                 variant: str | None = None, preset: str | None = None) -> StoredModel:
    """The model stored at ``path`` (see ``zoejax.api.load`` for the arguments): a ZoeDepth or a Depth Anything
    one (``.pth`` / transformers folder detected from its keys, ``depth_anything_convert``), or a relative MiDaS
    one (a relative run or folder; a MiDaS v3.1 file, or a ZoeDepth folder's core, with ``variant="relative"``)."""
    path = Path(path)
    if variant == RELATIVE:
        return _relative_weights(path, max_depth, preset)
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
        if layout_of(state) is not None:
            return _depth_anything_weights(path, state, hf_config, max_depth, variant, preset)
        if preset is not None:
            raise ValueError(f"preset names a Depth Anything model, but {path} is not a Depth Anything checkpoint")
        detected, converted = convert_state_dict(state, hf_config, source=str(path), variant=variant,
                                                 max_depth=max_depth)
        provenance = {"source": str(path.absolute()), "format": detected.format, "variant": detected.variant}
        return StoredModel(detected.config, converted.params, converted.extras, provenance)
    if isinstance(stored.config, DepthAnythingConfig):
        _refuse_zoedepth_options(path, max_depth, variant)
    elif isinstance(stored.config, RelativeDepthConfig):
        if max_depth is not None or variant is not None:
            raise ValueError(f"{path} is a relative-depth model: max_depth and variant (n | k | nk) are a metric "
                             "ZoeDepth's")
    elif max_depth is not None:
        stored.config = with_max_depth(stored.config, max_depth)
    return stored


RELATIVE = "relative"  # the variant that reads a MiDaS v3.1 file (the same file initialises ZoeDepth) as itself


def _relative_weights(path: Path, max_depth: float | None, preset: str | None) -> StoredModel:
    """``variant="relative"``: a MiDaS v3.1 release file converted strictly as a relative model, or the
    relative model (core) of a stored ZoeDepth or relative model."""
    if max_depth is not None or preset is not None:
        raise ValueError(f"{path}: variant='relative' loads a relative MiDaS model; max_depth and preset do not "
                         "apply")
    if is_workdir(path) or is_converted_dir(path):
        stored = read_workdir(path) if is_workdir(path) else read_converted(path)
        if isinstance(stored.config, DepthAnythingConfig):
            raise ValueError(f"{path} is a Depth Anything model: variant='relative' takes MiDaS / ZoeDepth ones")
        stored.config = relative_config(stored.config)
        stored.params = {"core": stored.params["core"]}
        return stored
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}")
    from zoejax.conversion.readers import read_checkpoint
    from zoejax.conversion.relative_convert import relative_from_midas

    state, _ = read_checkpoint(path)
    config, params, extras = relative_from_midas(state, source=str(path))
    provenance = {"source": str(path.absolute()), "format": "midas", "variant": RELATIVE}
    return StoredModel(relative_config(config), params, extras, provenance)


def _depth_anything_weights(path: Path, state, hf_config, max_depth, variant, preset) -> StoredModel:
    """A Depth Anything ``.pth`` or transformers folder converted in memory (``preset``: which model a ``.pth``
    holds when its file name is not the release's)."""
    from zoejax.conversion.depth_anything_convert import convert_depth_anything

    _refuse_zoedepth_options(path, max_depth, variant)
    found, converted = convert_depth_anything(state, hf_config, source=str(path), preset=preset)
    provenance = {"source": str(path.absolute()), "format": found.format, "preset": found.preset}
    return StoredModel(found.config, converted.params, converted.extras, provenance)


def _refuse_zoedepth_options(path: Path, max_depth: float | None, variant: str | None) -> None:
    if max_depth is not None or variant is not None:
        raise ValueError(f"{path} is a Depth Anything model: max_depth and variant are ZoeDepth's (a V2 metric "
                         f"model's max_depth is in its config; name a Depth Anything model with preset)")


def with_max_depth(config: ZoeDepthConfig, max_depth: float) -> ZoeDepthConfig:
    """ZoeD_K's config predicting up to ``max_depth`` metres (10: the released model; 80: the KITTI protocol)."""
    if config.is_multi_head or config.head.bin_centers_type != "normed":
        raise ValueError("max_depth applies to ZoeD_K (normed bins) only")
    return dataclasses.replace(config, bins=(dataclasses.replace(config.bins[0], max_depth=float(max_depth)),))
