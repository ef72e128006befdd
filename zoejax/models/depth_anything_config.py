"""Typed, frozen configuration of the Depth Anything models (a DINOv2 encoder and the Depth Anything DPT head), and
their presets: Depth Anything V1 relative, V2 relative and V2 metric (Hypersim, VKITTI2), plus test fixtures.

The encoder comes from the backbone registry (kind "dinov2"); the widths of each size are the registry preset's
decoder (``zoejax/models/backbones/dinov2.py``), so they are written once. V1 taps the last four blocks, V2 fixed
ones (S/B 2, 5, 8, 11; L 4, 11, 17, 23; G 9, 19, 29, 39), as the registry presets hold them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from zoejax.models.backbones.dinov2 import last_four
from zoejax.models.backbones.registry import BACKBONES, backbone_of, config_class
from zoejax.models.config import build_dataclass, parse_dtype
from zoejax.models.depth_anything_head import DepthAnythingHeadConfig
from zoejax.models.layers import RematPolicy

KIND = "dinov2"
# V2 metric models' depth bound in metres per training set.
MAX_DEPTH = {"hypersim": 20.0, "vkitti": 80.0}


@dataclasses.dataclass(frozen=True)
class DepthAnythingConfig:
    """A whole Depth Anything model.

    Attributes:
      backbone: a DINOv2 config (registry kind "dinov2"); its ``hooks`` are the tapped blocks and its
        ``pos_interpolation`` the position-table resize of the checkpoint's source.
      head: the DPT head (widths, relative or metric output, max_depth in metres).
      dtype: compute dtype ("float32" or "bfloat16"); the depth is returned in float32.
      param_dtype: parameter dtype (float32).
      remat: per-block rematerialisation policy of the encoder.
    """

    backbone: Any = dataclasses.field(default_factory=lambda: config_class(KIND)())
    head: DepthAnythingHeadConfig = DepthAnythingHeadConfig()
    dtype: str = "float32"
    param_dtype: str = "float32"
    remat: RematPolicy = RematPolicy.NONE

    def __post_init__(self):
        parse_dtype(self.dtype)
        parse_dtype(self.param_dtype)
        if getattr(self.backbone, "kind", None) != KIND:
            raise ValueError(f"model.backbone.kind must be {KIND!r} for Depth Anything, got "
                             f"{getattr(self.backbone, 'kind', None)!r}")
        backbone_of(self.backbone)
        self.backbone.validate(tuple(self.head.out_channels))

    @property
    def input_multiple(self) -> int:
        """Input height and width must be multiples of this (the patch size, 14)."""
        return self.backbone.input_multiple

    @property
    def output_key(self) -> str:
        """The forward's depth key: "relative_depth" or "metric_depth" (metres)."""
        return "metric_depth" if self.head.depth_type == "metric" else "relative_depth"

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly nested dict (inverse of ``from_dict``); ``model_type`` tells it from a ZoeDepth config."""
        d = dataclasses.asdict(self)
        d["remat"] = self.remat.value
        return {"model_type": "depth_anything", **d}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DepthAnythingConfig:
        """Build from a nested mapping (``to_dict``'s output or JSON); unknown keys are an error."""
        d = dict(d)
        if d.pop("model_type", "depth_anything") != "depth_anything":
            raise ValueError("model.model_type must be 'depth_anything' for a Depth Anything config")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown key(s) in model: {unknown}; known: {sorted(known)}")
        kwargs: dict[str, Any] = {k: d[k] for k in ("dtype", "param_dtype") if k in d}
        if "backbone" in d:
            kwargs["backbone"] = build_dataclass(config_class(dict(d["backbone"]).get("kind", KIND)), d["backbone"],
                                                 "model.backbone")
        if "head" in d:
            kwargs["head"] = build_dataclass(DepthAnythingHeadConfig, d["head"], "model.head")
        if "remat" in d:
            try:
                kwargs["remat"] = RematPolicy(d["remat"])
            except ValueError:
                raise ValueError(f"model.remat={d['remat']!r} is not one of {[p.value for p in RematPolicy]}") \
                    from None
        return cls(**kwargs)


def _build(encoder: str, version: str, depth_type: str = "relative", max_depth: float = 1.0) -> DepthAnythingConfig:
    backbone, decoder = BACKBONES[KIND].presets[encoder]
    if version == "v1":
        backbone = last_four(backbone)
    head = DepthAnythingHeadConfig(features=decoder.features, out_channels=tuple(decoder.reassemble_features),
                                   head_features=decoder.num_relative_features, depth_type=depth_type,
                                   max_depth=max_depth)
    return DepthAnythingConfig(backbone=backbone, head=head)


def da2_metric(encoder: str, max_depth: float) -> DepthAnythingConfig:
    """A Depth Anything V2 metric model on the DINOv2 preset ``encoder`` (``dinov2_vits14``, ``dinov2_vitb14``,
    ``dinov2_vitl14``, ``dinov2_tiny``), depth = sigmoid * ``max_depth`` metres (20 Hypersim, 80 VKITTI2)."""
    if encoder not in BACKBONES[KIND].presets:
        raise ValueError(f"unknown DINOv2 preset {encoder!r}; available: {sorted(BACKBONES[KIND].presets)}")
    return _build(encoder, "v2", "metric", float(max_depth))


def da_relative(encoder: str, version: str = "v1") -> DepthAnythingConfig:
    """A relative Depth Anything model (ReLU output, relative inverse depth) on the DINOv2 preset ``encoder``,
    with V1's taps (the last four blocks) or V2's fixed ones (``version="v2"``)."""
    if encoder not in BACKBONES[KIND].presets:
        raise ValueError(f"unknown DINOv2 preset {encoder!r}; available: {sorted(BACKBONES[KIND].presets)}")
    if version not in ("v1", "v2"):
        raise ValueError(f"version must be 'v1' or 'v2', got {version!r}")
    return _build(encoder, version)


_SIZES = {"vits": "dinov2_vits14", "vitb": "dinov2_vitb14", "vitl": "dinov2_vitl14"}
# name -> config. Release files: V1 ``depth_anything_{vits,vitb,vitl}14.pth``, V2
# ``depth_anything_v2_{vits,vitb,vitl}.pth`` and ``depth_anything_v2_metric_{hypersim,vkitti}_{vits,vitb,vitl}.pth``.
PRESETS: dict[str, DepthAnythingConfig] = {}
for _size, _encoder in _SIZES.items():
    PRESETS[f"da1_relative_{_size}"] = _build(_encoder, "v1")
    PRESETS[f"da2_relative_{_size}"] = _build(_encoder, "v2")
    for _dataset, _max in MAX_DEPTH.items():
        PRESETS[f"da2_metric_{_dataset}_{_size}"] = _build(_encoder, "v2", "metric", _max)
# Test fixtures: the registry's tiny DINOv2 (real patch size, small widths), relative and metric.
PRESETS["da_tiny_relative"] = _build("dinov2_tiny", "v2")
PRESETS["da_tiny_metric"] = _build("dinov2_tiny", "v2", "metric", 20.0)
FIXTURES = ("da_tiny_relative", "da_tiny_metric")


def preset(name: str) -> DepthAnythingConfig:
    """A Depth Anything preset by name; ValueError listing them."""
    if name not in PRESETS:
        raise ValueError(f"unknown Depth Anything preset {name!r}; available: {sorted(PRESETS)}")
    return PRESETS[name]
