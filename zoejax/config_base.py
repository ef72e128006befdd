"""Shared pieces of the ``configs/*.py`` files: a model preset as a ConfigDict, and the backbone argument.

Configs are big_vision-style: ``get_config(arg)`` where ``arg`` picks the backbone (``beit_l384`` default,
``beit_b384``, or the ``tiny`` test fixture), e.g. ``--config configs/zoedepth_n.py:beit_b384``.
"""

from __future__ import annotations

import ml_collections

from zoejax.models.config import ZoeDepthConfig
from zoejax.models.presets import BACKBONES


def parse_backbone(arg: str | None) -> str:
    name = arg or "beit_l384"
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r} in config argument; choose one of {sorted(BACKBONES)}")
    return name


def base_config(model: ZoeDepthConfig, input_size: tuple[int, int]) -> ml_collections.ConfigDict:
    """ConfigDict with ``model`` (every field of ``ZoeDepthConfig``, overridable) and ``input_size``."""
    config = ml_collections.ConfigDict()
    config.model = ml_collections.ConfigDict(model.to_dict())
    config.input_size = tuple(input_size)  # network (H, W), multiples of 32
    config.seed = 0
    return config
