"""Typed, frozen model configuration.

The CLI turns an ml-collections ConfigDict into these dataclasses once (``from_dict``); below that boundary
modules receive plain typed fields. Values default to the effective settings of the official release
(architecture spec section 7.2), not to the numbers stored in the official JSON files where those are
ignored by the code (attractor alpha 1000 -> 300 effective).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import jax.numpy as jnp

from zoejax.models.backbones.registry import DEFAULT_KIND, backbone_of, config_class
from zoejax.models.dpt import DPTConfig
from zoejax.models.layers import RematPolicy

# ZoeDepth's relative-depth cores (``zoejax.models.zoedepth.CORES`` maps them to modules).
CORES = ("midas", "depth_anything")
_DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16, "float16": jnp.float16}


def parse_dtype(name: str | Any) -> Any:
    """'float32' | 'bfloat16' | 'float16' -> jnp dtype (the one place strings become dtypes)."""
    if not isinstance(name, str):
        return name
    if name not in _DTYPES:
        raise ValueError(f"unknown dtype {name!r}; expected one of {sorted(_DTYPES)}")
    return _DTYPES[name]


@dataclasses.dataclass(frozen=True)
class BinConfig:
    """One metric head's bins: name (domain), number of bins, depth range in metres."""

    name: str = "nyu"
    n_bins: int = 64
    min_depth: float = 1e-3
    max_depth: float = 10.0


@dataclasses.dataclass(frozen=True)
class MetricHeadConfig:
    """Metric-bins head (paper section 3) or the naive head of the paper's Table 5.

    Attributes:
      head_type: "metric_bins" (ZoeDepth) or "naive" (a direct per-pixel regressor, for ablations).
      bin_centers_type: "softplus" (unbounded, ZoeD_N/NK) or "normed" (bounded by [min, max], ZoeD_K).
      bin_embedding_dim: width of the bin embeddings.
      n_attractors: attractors per level (coarse to fine).
      attractor_alpha, attractor_gamma: inverse-attractor strength; 300 and 2 are the values the official
        code runs with (its configs store alpha=1000, which is never read).
      attractor_kind: "mean" or "sum" over attractors.
      attractor_type: "inv" (the released models) or "exp".
      min_temp, max_temp: temperature range of the conditional log-binomial.
      seed_mlp_dim: hidden width of the seed-bin regressor (256 single head, 64 for ZoeD_NK).
      projector_mlp_dim: hidden width of the projectors (128 single head, 64 for ZoeD_NK).
      clb_bottleneck_factor: conditional log-binomial hidden = in / factor (2 single head, 4 for ZoeD_NK).
      use_rel_depth: concatenate the relative depth to the CLB input (single head: yes; ZoeD_NK: no).
    """

    head_type: str = "metric_bins"
    bin_centers_type: str = "softplus"
    bin_embedding_dim: int = 128
    n_attractors: tuple[int, ...] = (16, 8, 4, 1)
    attractor_alpha: float = 300.0
    attractor_gamma: float = 2.0
    attractor_kind: str = "mean"
    attractor_type: str = "inv"
    min_temp: float = 0.0212
    max_temp: float = 50.0
    seed_mlp_dim: int = 256
    projector_mlp_dim: int = 128
    clb_bottleneck_factor: int = 2
    use_rel_depth: bool = True


@dataclasses.dataclass(frozen=True)
class RouterConfig:
    """ZoeD_NK's domain router: a small post-norm transformer on the bottleneck plus an MLP classifier."""

    hidden_size: int = 128
    num_layers: int = 4
    num_heads: int = 4
    intermediate_size: int = 1024
    layer_norm_eps: float = 1e-5
    dropout: float = 0.1


@dataclasses.dataclass(frozen=True)
class ZoeDepthConfig:
    """A whole ZoeDepth model. One bin config = ZoeD_N/ZoeD_K; two plus a router = ZoeD_NK.

    Attributes:
      backbone: the config of a registered encoder family (``zoejax/models/backbones/registry.py``; default BEiT-L).
      dtype: compute dtype of the encoder and decoder ("float32" or "bfloat16"); the metric head always
        runs in float32.
      param_dtype: parameter dtype (float32).
      remat: per-block rematerialisation policy of the encoder.
      core: the relative-depth core the metric head sits on: "midas" (MiDaS DPT: encoder + reassemble + MiDaS
        scratch, inputs multiples of 32) or "depth_anything" (a DINOv2 encoder + the Depth Anything DPT head,
        Depth Anything V1 metric; inputs multiples of the patch size, 14).
    """

    backbone: Any = dataclasses.field(default_factory=lambda: config_class(DEFAULT_KIND)())
    decoder: DPTConfig = DPTConfig()
    head: MetricHeadConfig = MetricHeadConfig()
    bins: tuple[BinConfig, ...] = (BinConfig(),)
    router: RouterConfig | None = None
    dtype: str = "float32"
    param_dtype: str = "float32"
    remat: RematPolicy = RematPolicy.NONE
    core: str = "midas"

    def __post_init__(self):
        _check_choice("core", self.core, CORES)
        if self.core == "depth_anything" and getattr(self.backbone, "kind", None) != "dinov2":
            raise ValueError(f"core='depth_anything' needs a DINOv2 backbone (kind 'dinov2'), got "
                             f"{getattr(self.backbone, 'kind', None)!r}; pick e.g. backbone dinov2_vitl14")
        _check_choice("head.head_type", self.head.head_type, ("metric_bins", "naive"))
        _check_choice("head.bin_centers_type", self.head.bin_centers_type, ("softplus", "normed"))
        _check_choice("head.attractor_kind", self.head.attractor_kind, ("mean", "sum"))
        _check_choice("head.attractor_type", self.head.attractor_type, ("inv", "exp"))
        parse_dtype(self.dtype)
        parse_dtype(self.param_dtype)
        if not self.bins:
            raise ValueError("at least one bin configuration is required")
        if len(self.bins) > 1 and self.router is None:
            raise ValueError("several bin configurations (ZoeD_NK) need a router config")
        backbone_of(self.backbone)  # a registered family, its kind matching its class
        if len(self.backbone.hooks) != 4 or len(self.decoder.reassemble_features) != 4:
            raise ValueError("the DPT decoder needs exactly 4 hooked blocks and 4 reassemble widths")
        self.backbone.validate(tuple(self.decoder.reassemble_features))

    @property
    def input_multiple(self) -> int:
        """Input height and width must be multiples of this (pixels): the patch size (14) for the Depth Anything
        core; for the MiDaS core 32 (its coarsest decoder map), and a multiple of the backbone's own
        ``input_multiple`` where the backbone has one (a DINOv2 encoder in the MiDaS core: lcm(32, 14) = 224)."""
        if self.core == "depth_anything":
            return self.backbone.patch_size
        return math.lcm(32, int(getattr(self.backbone, "input_multiple", 1)))

    @property
    def output_key(self) -> str:
        """The forward's depth key: "metric_depth" (metres), as every family's config names its own."""
        return "metric_depth"

    @property
    def is_multi_head(self) -> bool:
        return len(self.bins) > 1

    @property
    def domain_names(self) -> tuple[str, ...]:
        return tuple(b.name for b in self.bins)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly nested dict (inverse of ``from_dict``)."""
        d = dataclasses.asdict(self)
        d["remat"] = self.remat.value
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ZoeDepthConfig:
        """Build from a nested mapping (a ConfigDict's ``to_dict()`` or JSON); unknown keys are an error."""
        d = dict(d)
        _reject_unknown(cls, d, "model")
        kwargs: dict[str, Any] = {}
        if "backbone" in d:
            kind = dict(d["backbone"]).get("kind", DEFAULT_KIND)
            kwargs["backbone"] = build_dataclass(config_class(kind), d["backbone"], "model.backbone")
        for key, sub in (("decoder", DPTConfig), ("head", MetricHeadConfig)):
            if key in d:
                kwargs[key] = build_dataclass(sub, d[key], f"model.{key}")
        if "bins" in d:
            kwargs["bins"] = tuple(build_dataclass(BinConfig, b, "model.bins[]") for b in d["bins"])
        if d.get("router") is not None:
            kwargs["router"] = build_dataclass(RouterConfig, d["router"], "model.router")
        for key in ("dtype", "param_dtype", "core"):
            if key in d:
                kwargs[key] = d[key]
        if "remat" in d:
            try:
                kwargs["remat"] = RematPolicy(d["remat"])
            except ValueError:
                choices = [p.value for p in RematPolicy]
                raise ValueError(f"model.remat={d['remat']!r} is not one of {choices}") from None
        return cls(**kwargs)


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{name}={value!r} is not one of {list(choices)}")


def _reject_unknown(cls: type, d: Mapping[str, Any], where: str) -> None:
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - known)
    if unknown:
        raise ValueError(f"unknown key(s) in {where}: {unknown}; known: {sorted(known)}")


def build_dataclass(cls: type, d: Mapping[str, Any], where: str) -> Any:
    """``cls(**d)`` with unknown keys reported by name and lists turned into tuples (JSON / ConfigDict input)."""
    d = dict(d)
    _reject_unknown(cls, d, where)
    # JSON and ConfigDict give lists where the dataclasses hold tuples.
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


def backbone_summary(config: ZoeDepthConfig) -> str:
    """One phrase describing the encoder, e.g. 'BEiT 1024x24 (16 heads)' or 'SwinV2 192x(2, 2, 18, 2) (...)'."""
    return config.backbone.describe()
