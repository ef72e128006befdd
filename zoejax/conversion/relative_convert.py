"""MiDaS v3.1 relative checkpoints as relative-depth models (``zoejax.models.relative_depth.RelativeDepth``):
import a release state dict (``dpt_beit_{large,base}_384.pt``, ``dpt_swin*.pt``) strictly, and export the
params back to that layout. The key table is the MiDaS one ZoeDepth's initialisation uses (``midas_table``)."""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

from zoejax.conversion.apply import params_to_state_dict, state_dict_to_params
from zoejax.conversion.backbone_weights import weights_of
from zoejax.conversion.detect import detect
from zoejax.conversion.official_table import midas_table
from zoejax.conversion.table import default_extras
from zoejax.models.config import ZoeDepthConfig
from zoejax.models.init import param_shapes


def relative_from_midas(state: dict[str, np.ndarray], *, source: str = "state dict",
                        variant: str | None = None) -> tuple[ZoeDepthConfig, dict[str, Any], dict[str, np.ndarray]]:
    """A MiDaS v3.1 release state dict -> (config, ``{"core": ...}`` params, kept extras).

    Raises ValueError naming ``source`` when the file is not a MiDaS relative checkpoint (a ZoeDepth or HF file
    has its own converter), and ConversionError on any missing, unexpected or mis-shaped key.
    """
    detected = detect(state, None, variant=variant)
    if detected.format != "midas":
        raise ValueError(f"{source}: not a MiDaS v3.1 relative checkpoint (detected {detected.format!r}); "
                         "convert ZoeDepth files with zoejax-convert")
    shapes = {"core": param_shapes(detected.config)["core"]}
    converted = state_dict_to_params(state, midas_table(detected.config), shapes, source)
    return detected.config, converted.params, converted.extras


def relative_to_midas(config: ZoeDepthConfig, params: dict[str, Any], extras: dict[str, np.ndarray] | None = None,
                      seed: int = 0) -> dict[str, np.ndarray]:
    """``{"core": ...}`` params (a relative model's, or a ZoeDepth model's core) -> the MiDaS release layout.

    Extras kept at import are written back unchanged; missing ones are initialised as the official code would.
    """
    defaults = default_extras(config.decoder.features, config.backbone.num_features, seed)
    defaults.update(weights_of(config).default_extras(config, seed))
    return params_to_state_dict(jax.device_get({"core": params["core"]}), midas_table(config), extras or {}, defaults)
