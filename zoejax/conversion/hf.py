"""Hugging Face ``transformers`` ZoeDepth state dicts <-> zoejax params (numpy in, numpy out; no torch)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from zoejax.conversion.apply import params_to_state_dict, state_dict_to_params
from zoejax.conversion.hf_table import hf_table
from zoejax.conversion.table import default_extras
from zoejax.models.config import ZoeDepthConfig
from zoejax.models.init import param_shapes


def params_from_hf_state_dict(config: ZoeDepthConfig, state_dict: Mapping[str, np.ndarray],
                              source: str = "HF state dict") -> dict[str, Any]:
    """Strictly convert a transformers ZoeDepth state dict (5.x key names) into zoejax ``params``.

    Raises ``ConversionError`` listing every missing, unexpected or mis-shaped tensor at once.
    """
    return state_dict_to_params(state_dict, hf_table(config), param_shapes(config), source).params


def hf_state_dict_from_params(config: ZoeDepthConfig, params: Any,
                              extras: Mapping[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """zoejax ``params`` (+ extras kept at import) -> transformers state dict; missing extras are initialised
    as the official code would."""
    defaults = default_extras(config.decoder.features, config.backbone.embed_dim)
    return params_to_state_dict(params, hf_table(config), extras, defaults)
