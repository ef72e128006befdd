"""Typed, frozen model configuration.

The CLI turns an ml-collections ConfigDict into these dataclasses once (``from_dict``); below that boundary
modules receive plain typed fields. Values default to the effective settings of the official release
(architecture spec section 7.2), not to the numbers stored in the official JSON files where those are
ignored by the code (attractor alpha 1000 -> 300 effective).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import jax.numpy as jnp

from zoejax.models.layers import RematPolicy

_DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16, "float16": jnp.float16}


def parse_dtype(name: str | Any) -> Any:
    """'float32' | 'bfloat16' | 'float16' -> jnp dtype (the one place strings become dtypes)."""
    if not isinstance(name, str):
        return name
    if name not in _DTYPES:
        raise ValueError(f"unknown dtype {name!r}; expected one of {sorted(_DTYPES)}")
    return _DTYPES[name]


@dataclasses.dataclass(frozen=True)
class BeitConfig:
    """BEiT encoder as MiDaS v3.1 uses it (timm ``beit_*_patch16_384``).

    Attributes:
      embed_dim: token width D.
      depth: number of transformer blocks.
      num_heads: attention heads (head dim = D / num_heads).
      mlp_ratio: MLP hidden width / D.
      patch_size: square patch size in pixels.
      pretrain_window: patch grid the relative-position tables were trained for; their stored size is
        (2*Wh-1)*(2*Ww-1)+3 rows and they are resized to the input's grid on every call.
      init_values: LayerScale initial value (gamma_1/gamma_2).
      hooks: 0-based indices of the blocks whose outputs the DPT decoder reassembles.
      layer_norm_eps: 1e-6 as in the official code (the HF port's 1e-12 is a deviation).
      kind: "beit", the discriminator ``ZoeDepthConfig.from_dict`` reads (configs without it are BEiT).
    """

    kind: str = "beit"
    embed_dim: int = 1024
    depth: int = 24
    num_heads: int = 16
    mlp_ratio: float = 4.0
    patch_size: int = 16
    pretrain_window: tuple[int, int] = (24, 24)
    init_values: float = 1e-5
    hooks: tuple[int, ...] = (5, 11, 17, 23)
    layer_norm_eps: float = 1e-6


@dataclasses.dataclass(frozen=True)
class SwinConfig:
    """Swin (v1) / SwinV2 encoder as MiDaS v3.1 uses it (timm 0.6.12 ``swin_large_patch4_window12_384``,
    ``swinv2_{tiny_window16_256, base_window12to24_192to384, large_window12to24_192to384}``).

    Attributes:
      kind: "swin", the discriminator ``ZoeDepthConfig.from_dict`` reads.
      version: 1 (Swin: dot-product attention, learned bias table, pre-norm) or 2 (SwinV2: scaled cosine
        attention, log-spaced continuous position bias MLP, post-norm residuals).
      embed_dim: width of stage 1; stage i has ``embed_dim * 2**i`` channels.
      depths: blocks per stage (4 stages).
      num_heads: attention heads per stage.
      window_size: target window side in patches (timm ``window_size``).
      pretrained_window_sizes: SwinV2 per-stage window the position MLP was trained for (0: the stage's window);
        ignored for version 1.
      img_size: the (H, W) timm builds the model for. It fixes each stage's window and shift the way timm does:
        a stage whose grid is no larger than the window uses the grid as window and no shift. Other inputs
        keep these windows and pad each stage's grid at the bottom/right to window multiples (timm >= 0.9).
      patch_size: patch embedding stride in pixels.
      mlp_ratio: MLP hidden width / stage width.
      hooks: per stage, the 0-based block whose output the DPT decoder reads (MiDaS: the last block).
      layer_norm_eps: 1e-5 (torch ``nn.LayerNorm`` default, as timm's Swin uses).
      cpb_hidden: SwinV2 position-bias MLP hidden width.
    """

    kind: str = "swin"
    version: int = 2
    embed_dim: int = 192
    depths: tuple[int, ...] = (2, 2, 18, 2)
    num_heads: tuple[int, ...] = (6, 12, 24, 48)
    window_size: int = 24
    pretrained_window_sizes: tuple[int, ...] = (12, 12, 12, 6)
    img_size: tuple[int, int] = (384, 384)
    patch_size: int = 4
    mlp_ratio: float = 4.0
    hooks: tuple[int, ...] = (1, 1, 17, 1)
    layer_norm_eps: float = 1e-5
    cpb_hidden: int = 512

    @property
    def stage_dims(self) -> tuple[int, ...]:
        return tuple(self.embed_dim * 2**i for i in range(len(self.depths)))

    @property
    def num_features(self) -> int:
        return self.stage_dims[-1]

    def stage_windows(self) -> tuple[tuple[tuple[int, int], tuple[int, int]], ...]:
        """Per stage ((window_h, window_w), (shift_h, shift_w)), as timm derives them from ``img_size``."""
        out = []
        for i in range(len(self.depths)):
            grid = (self.img_size[0] // self.patch_size // 2**i, self.img_size[1] // self.patch_size // 2**i)
            window = tuple(r if r <= self.window_size else self.window_size for r in grid)
            shift = tuple(0 if r <= w else w // 2 for r, w in zip(grid, window, strict=True))
            out.append((window, shift))
        return tuple(out)

    def validate(self) -> None:
        n = len(self.depths)
        if n != 4 or len(self.num_heads) != n or len(self.hooks) != n:
            raise ValueError("a Swin backbone needs 4 stages: depths, num_heads and hooks of length 4")
        if self.version not in (1, 2):
            raise ValueError(f"backbone.version must be 1 or 2, got {self.version}")
        if self.version == 2 and len(self.pretrained_window_sizes) != n:
            raise ValueError("backbone.pretrained_window_sizes needs one entry per stage")
        for i, (hook, depth) in enumerate(zip(self.hooks, self.depths, strict=True)):
            if not 0 <= hook < depth:
                raise ValueError(f"backbone.hooks[{i}]={hook} out of range for a stage of {depth} blocks")
        for dim, heads in zip(self.stage_dims, self.num_heads, strict=True):
            if dim % heads:
                raise ValueError(f"Swin stage width {dim} is not divisible by {heads} heads")


@dataclasses.dataclass(frozen=True)
class DPTConfig:
    """DPT (MiDaS) decoder: reassemble channels per hooked stage, fusion width, head width."""

    reassemble_features: tuple[int, int, int, int] = (256, 512, 1024, 1024)
    features: int = 256
    num_relative_features: int = 32


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
      dtype: compute dtype of the encoder and decoder ("float32" or "bfloat16"); the metric head always
        runs in float32.
      param_dtype: parameter dtype (float32).
      remat: per-block rematerialisation policy of the encoder.
    """

    backbone: BeitConfig | SwinConfig = BeitConfig()
    decoder: DPTConfig = DPTConfig()
    head: MetricHeadConfig = MetricHeadConfig()
    bins: tuple[BinConfig, ...] = (BinConfig(),)
    router: RouterConfig | None = None
    dtype: str = "float32"
    param_dtype: str = "float32"
    remat: RematPolicy = RematPolicy.NONE

    def __post_init__(self):
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
        if len(self.backbone.hooks) != 4 or len(self.decoder.reassemble_features) != 4:
            raise ValueError("the DPT decoder needs exactly 4 hooked blocks and 4 reassemble widths")
        kind = {BeitConfig: "beit", SwinConfig: "swin"}.get(type(self.backbone))
        if kind is None or self.backbone.kind != kind:
            raise ValueError(f"backbone must be a BeitConfig (kind 'beit') or SwinConfig (kind 'swin'), got "
                             f"{type(self.backbone).__name__} with kind {getattr(self.backbone, 'kind', None)!r}")
        if isinstance(self.backbone, SwinConfig):
            self.backbone.validate()
            if tuple(self.decoder.reassemble_features) != self.backbone.stage_dims:
                raise ValueError(f"a Swin backbone has no reassemble convs: decoder.reassemble_features must be its "
                                 f"stage widths {self.backbone.stage_dims}, got {self.decoder.reassemble_features}")
            return
        if max(self.backbone.hooks) >= self.backbone.depth:
            raise ValueError(f"hooks {self.backbone.hooks} out of range for depth {self.backbone.depth}")
        if self.backbone.embed_dim % self.backbone.num_heads:
            raise ValueError("backbone.embed_dim must be divisible by backbone.num_heads")

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
            kind = dict(d["backbone"]).get("kind", "beit")
            if kind not in BACKBONE_KINDS:
                raise ValueError(f"model.backbone.kind={kind!r} is not one of {sorted(BACKBONE_KINDS)}")
            kwargs["backbone"] = build_dataclass(BACKBONE_KINDS[kind], d["backbone"], "model.backbone")
        for key, sub in (("decoder", DPTConfig), ("head", MetricHeadConfig)):
            if key in d:
                kwargs[key] = build_dataclass(sub, d[key], f"model.{key}")
        if "bins" in d:
            kwargs["bins"] = tuple(build_dataclass(BinConfig, b, "model.bins[]") for b in d["bins"])
        if d.get("router") is not None:
            kwargs["router"] = build_dataclass(RouterConfig, d["router"], "model.router")
        for key in ("dtype", "param_dtype"):
            if key in d:
                kwargs[key] = d[key]
        if "remat" in d:
            try:
                kwargs["remat"] = RematPolicy(d["remat"])
            except ValueError:
                choices = [p.value for p in RematPolicy]
                raise ValueError(f"model.remat={d['remat']!r} is not one of {choices}") from None
        return cls(**kwargs)


BACKBONE_KINDS = {"beit": BeitConfig, "swin": SwinConfig}


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
    """One phrase describing the encoder, e.g. 'BEiT 1024x24 (16 heads)' or 'SwinV2 192 (2, 2, 18, 2) window 24'."""
    b = config.backbone
    if isinstance(b, SwinConfig):
        name = "SwinV2" if b.version == 2 else "Swin"
        return (f"{name} {b.embed_dim}x{tuple(b.depths)} ({tuple(b.num_heads)} heads, window {b.window_size}, "
                f"built for {b.img_size[0]}x{b.img_size[1]})")
    return f"BEiT {b.embed_dim}x{b.depth} ({b.num_heads} heads)"
