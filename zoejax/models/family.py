"""The model family of a config: which Flax module a typed model config builds (ZoeDepth, Depth Anything,
relative MiDaS).

The one place that maps a config class to its module, so that initialisation, training and shardings take any
family's config. A new family is one entry in ``_MODULES``.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn

from zoejax.models.config import ZoeDepthConfig
from zoejax.models.depth_anything import DepthAnything
from zoejax.models.depth_anything_config import DepthAnythingConfig
from zoejax.models.relative_depth import RelativeDepth, RelativeDepthConfig
from zoejax.models.zoedepth import ZoeDepth
from zoejax.ops.platform import OpForms

_MODULES: dict[type, type[nn.Module]] = {ZoeDepthConfig: ZoeDepth, DepthAnythingConfig: DepthAnything,
                                         RelativeDepthConfig: RelativeDepth}


def module_for(config: Any, ops: OpForms | None = None) -> nn.Module:
    """The module of ``config`` (``ops``: the platform op forms, None = this machine's backend's); TypeError
    naming the known config classes otherwise."""
    for config_class, module in _MODULES.items():
        if isinstance(config, config_class):
            return module(config, ops=ops)
    raise TypeError(f"no model family for a {type(config).__name__}; known: "
                    f"{sorted(c.__name__ for c in _MODULES)}")
