"""The CLI boundary: ml-collections config files with ``--config.<key>=value`` overrides -> typed dataclasses.

Nothing below the CLI sees a ConfigDict.
"""

from __future__ import annotations

import ml_collections
from ml_collections import config_flags

from zoejax.models.config import ZoeDepthConfig


def define_config_flag(default: str | None = None) -> None:
    config_flags.DEFINE_config_file(
        "config", default,
        "Config file, optionally with an argument: configs/zoedepth_n.py:beit_b384. Any field can be "
        "overridden with --config.<field>=<value>, e.g. --config.model.dtype=bfloat16.",
        lock_config=True)


def model_config(config: ml_collections.ConfigDict) -> ZoeDepthConfig:
    """The typed model config of a loaded ConfigDict (unknown or invalid fields raise ValueError)."""
    return ZoeDepthConfig.from_dict(config.model.to_dict())
