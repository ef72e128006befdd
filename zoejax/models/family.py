"""The model family of a config: which Flax module a typed model config builds (ZoeDepth, Depth Anything,
relative MiDaS), how its parameter tree splits into top-level parts, and its analytic FLOP count.

The one place that maps a config class to its family, so that initialisation, training, shardings and summaries
(``zoejax-info``) take any family's config. A new family is one entry in ``_FAMILIES``. What every family's config
itself answers: ``input_multiple`` (input height and width must be multiples of it: 32 for BEiT / Swin, the DINOv2
patch 14) and ``output_key`` (the forward's depth: "metric_depth" in metres or "relative_depth", unitless).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import flax.linen as nn

from zoejax.models import flops
from zoejax.models.config import ZoeDepthConfig
from zoejax.models.depth_anything import DepthAnything
from zoejax.models.depth_anything_config import DepthAnythingConfig
from zoejax.models.relative_depth import RelativeDepth, RelativeDepthConfig
from zoejax.models.zoedepth import ZoeDepth
from zoejax.ops.platform import OpForms

Params = Mapping[str, Any]


@dataclasses.dataclass(frozen=True)
class Family:
    """One model family.

    Attributes:
      module: the Flax module class, built as ``module(config, ops=ops)``.
      describe: config -> one phrase naming the model (e.g. "ZoeD_NK", "Depth Anything, metric ...").
      parts: (config, params) -> {label: subtree}, the top-level modules; together they hold every parameter.
      analytic_flops: (config, batch, height, width) -> matmul/conv FLOPs of one forward
        (``zoejax.models.flops``); NotImplementedError, saying why, where it cannot count (ZoeD_NK's router,
        the Depth Anything DPT head, as a model or as a ZoeDepth core: callers then report XLA's count alone).
    """

    module: type[nn.Module]
    describe: Callable[[Any], str]
    parts: Callable[[Any, Params], dict[str, Any]]
    analytic_flops: Callable[[Any, int, int, int], int]


def _split(tree: Params, inner: str) -> tuple[Params, dict[str, Any]]:
    """(``tree[inner]``, the rest of ``tree``): a DPT's decoder and the reassemble layers created beside it."""
    return tree[inner], {k: v for k, v in tree.items() if k != inner}


def _midas_parts(core: Params, prefix: str) -> dict[str, Any]:
    """The MiDaS core's encoder, reassemble (BEiT's ``act_postprocess*``; none for Swin) and ``scratch``."""
    encoder, reassemble = _split(core["pretrained"], "model")
    return {f"encoder ({prefix}pretrained/model)": encoder,
            f"reassemble ({prefix}pretrained/act_postprocess*)": reassemble,
            f"decoder ({prefix}scratch)": core["scratch"]}


def _depth_anything_parts(core: Params, prefix: str) -> dict[str, Any]:
    """The Depth Anything core's DINOv2 encoder, reassemble (``projects_*``, ``resize_layers_*``) and
    ``scratch``."""
    decoder, reassemble = _split(core["depth_head"], "scratch")
    return {f"encoder ({prefix}pretrained)": core["pretrained"],
            f"reassemble ({prefix}depth_head/projects_*, resize_layers_*)": reassemble,
            f"decoder ({prefix}depth_head/scratch)": decoder}


def _zoedepth_parts(config: ZoeDepthConfig, params: Params) -> dict[str, Any]:
    core = _depth_anything_parts if config.core == "depth_anything" else _midas_parts
    return {**core(params["core"], "core/"), "metric head (metric_head)": params["metric_head"]}


def _zoedepth_describe(config: ZoeDepthConfig) -> str:
    kind = "ZoeD_NK" if config.is_multi_head else f"ZoeDepth single head ({config.head.bin_centers_type} bins)"
    core = " on the Depth Anything core" if config.core == "depth_anything" else ""
    domains = ", ".join(f"{c.name} [{c.min_depth:g}, {c.max_depth:g}] m" for c in config.bins)
    return f"{kind}{core}, {config.backbone.describe()}, domains {domains}"


def _depth_anything_describe(config: DepthAnythingConfig) -> str:
    head = config.head
    depth = f"metric, sigmoid x {head.max_depth:g} m" if head.depth_type == "metric" else "relative"
    return f"Depth Anything ({depth}), {config.backbone.describe()}, taps {tuple(config.backbone.hooks)}"


def _relative_describe(config: RelativeDepthConfig) -> str:
    return f"relative MiDaS DPT, {config.backbone.describe()}"


_FAMILIES: dict[type, Family] = {
    ZoeDepthConfig: Family(ZoeDepth, _zoedepth_describe, _zoedepth_parts, flops.forward_flops),
    DepthAnythingConfig: Family(DepthAnything, _depth_anything_describe,
                                lambda config, params: _depth_anything_parts(params, ""), flops.forward_flops),
    RelativeDepthConfig: Family(RelativeDepth, _relative_describe,
                                lambda config, params: _midas_parts(params["core"], "core/"), flops.forward_flops),
}


def family_of(config: Any) -> Family:
    """The family of a typed model config; TypeError naming the known config classes otherwise."""
    for config_class, family in _FAMILIES.items():
        if isinstance(config, config_class):
            return family
    raise TypeError(f"no model family for a {type(config).__name__}; known: "
                    f"{sorted(c.__name__ for c in _FAMILIES)}")


def module_for(config: Any, ops: OpForms | None = None) -> nn.Module:
    """The module of ``config`` (``ops``: the platform op forms, None = this machine's backend's); TypeError
    naming the known config classes otherwise."""
    return family_of(config).module(config, ops=ops)
