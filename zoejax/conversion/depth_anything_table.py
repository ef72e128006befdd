"""Weight tables, detection and transformers config of the Depth Anything models (``zoejax.models.depth_anything``).

Two layouts, both directions:
  * official: the Depth Anything V1 / V2 relative and V2 metric ``.pth`` files, plain state dicts with
    ``pretrained.*`` (DINOv2, ``dinov2_table.encoder_official``) and ``depth_head.*`` (``depth_anything_head_table``);
  * transformers ``DepthAnythingForDepthEstimation`` (relative and metric): ``backbone.*`` in the "file" (Hub
    ``model.safetensors``) or "module" (transformers 5.x ``state_dict()``) naming, ``neck.*``, ``head.*``.

The weights cannot tell V1 from V2 (only the tapped blocks differ) nor relative from metric (only the last
activation differs): a ``.pth`` file's model comes from its release file name or from the caller's choice of preset;
a transformers folder's from its ``config.json``.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any

import numpy as np

from zoejax.conversion.depth_anything_head_table import (
    head_config_from_hf,
    hf_head_config,
    hf_head_entries,
    official_head_entries,
)
from zoejax.conversion.dinov2_table import encoder_hf, encoder_official, for_transformers, hf_config, preset_of
from zoejax.conversion.table import Table, default_extras
from zoejax.models.backbones.registry import BACKBONES
from zoejax.models.depth_anything_config import KIND, PRESETS, DepthAnythingConfig

ENCODER, HEAD = "pretrained", "depth_head"
FORMATS = ("depth_anything", "hf_depth_anything")
# Release file names -> (version, type, dataset) and their encoder size.
_RELEASE_NAMES = (
    (re.compile(r"depth_anything_v2_metric_(hypersim|vkitti)_(vits|vitb|vitl)"), "da2_metric_{0}_{1}"),
    (re.compile(r"depth_anything_v2_(vits|vitb|vitl)"), "da2_relative_{0}"),
    (re.compile(r"depth_anything_(vits|vitb|vitl)14"), "da1_relative_{0}"),
)


@dataclasses.dataclass(frozen=True)
class DetectedDepthAnything:
    """format: "depth_anything" (official .pth) or "hf_depth_anything"; preset: the PRESETS name the weights match
    (for a transformers folder, the preset its config equals, or "" when it equals none); naming: the HF naming."""

    format: str
    preset: str
    config: DepthAnythingConfig
    naming: str = ""

    def describe(self) -> str:
        """One phrase for ``zoejax-convert``, e.g. 'Depth Anything official .pth, da2_metric_vkitti_vitl: metric
        depth <= 80 m, DINOv2 ViT/14 1024x24 (16 heads)'."""
        layout = "official .pth" if self.format == "depth_anything" else f"transformers folder ({self.naming} keys)"
        head = self.config.head
        output = (f"metric depth <= {head.max_depth:g} m" if head.depth_type == "metric"
                  else "relative inverse depth")
        return (f"Depth Anything {layout}, {self.preset or 'custom'}: {output}, taps {self.config.backbone.hooks}, "
                f"{self.config.backbone.describe()}")


def official_table(config: DepthAnythingConfig) -> Table:
    """The official ``.pth`` layout (``pretrained.*``, ``depth_head.*``)."""
    t = Table()
    encoder_official(t, config.backbone, ENCODER, "pretrained")
    official_head_entries(t, config.head, HEAD, "depth_head.")
    return t


def hf_table(config: DepthAnythingConfig, naming: str = "module") -> Table:
    """transformers ``DepthAnythingForDepthEstimation``'s layout, ``naming`` "module" (5.x) or "file" (the Hub)."""
    t = Table()
    encoder_hf(t, config.backbone, ENCODER, "backbone", naming)
    hf_head_entries(t, config.head, HEAD)
    return t


def export_defaults(config: DepthAnythingConfig, seed: int = 0) -> dict[str, np.ndarray]:
    """Extras for export of a model that never had them: DINOv2's unused ``mask_token`` (zeros, as its
    initialisation) and refinenet4's unused residual unit (PyTorch's default conv init, seeded)."""
    out = {k: v for k, v in default_extras(config.head.features, config.backbone.embed_dim, seed).items()
           if k.startswith("refinenet4.")}
    out["encoder.mask_token"] = np.zeros((1, config.backbone.embed_dim), np.float32)
    return out


def layout_of(keys: set[str] | Mapping[str, Any]) -> tuple[str, str] | None:
    """("depth_anything", "") or ("hf_depth_anything", naming) when the keys are a Depth Anything model's, else
    None (a V1 metric ``.pt`` has them under ``core.core.`` and is a ZoeDepth)."""
    keys = set(keys)
    if "pretrained.pos_embed" in keys and "depth_head.projects.0.weight" in keys:
        return "depth_anything", ""
    if "backbone.embeddings.position_embeddings" in keys and "neck.reassemble_stage.layers.0.projection.weight" in keys:
        modern = any(k.endswith("attention.q_proj.weight") for k in keys)
        return "hf_depth_anything", "module" if modern else "file"
    return None


def preset_from_name(source: str) -> str | None:
    """The preset of an official release file name (``depth_anything_v2_metric_hypersim_vitl.pth`` ->
    ``da2_metric_hypersim_vitl``), or None."""
    for pattern, template in _RELEASE_NAMES:
        m = pattern.search(source.rsplit("/", 1)[-1])
        if m:
            return template.format(*m.groups())
    return None


def detect(state: Mapping[str, np.ndarray], hf: dict[str, Any] | None = None, *, source: str = "",
           preset: str | None = None) -> DetectedDepthAnything:
    """Which Depth Anything model ``state`` holds. An official file needs ``preset`` or a release file name in
    ``source`` (the weights cannot tell V1 from V2 nor relative from metric); its encoder size must match the
    preset's. A transformers state dict needs its ``config.json`` (``hf``). ValueError with the fix otherwise."""
    layout = layout_of(state)
    if layout is None:
        raise ValueError(f"{source or 'state dict'}: not a Depth Anything checkpoint (no pretrained.pos_embed with "
                         f"depth_head.projects.0, nor a transformers DepthAnythingForDepthEstimation)")
    fmt, naming = layout
    if fmt == "hf_depth_anything":
        if not hf:
            raise ValueError(f"{source or 'state dict'}: a transformers Depth Anything model needs its config.json "
                             f"beside model.safetensors")
        config = config_from_hf(state, hf, naming)
        official = [n for n, c in PRESETS.items() if dataclasses.replace(
            c, backbone=for_transformers(c.backbone)) == config]
        return DetectedDepthAnything(fmt, official[0] if official else "", config, naming)
    size = preset_of(state, "pretrained.cls_token", "pretrained.blocks.", "pretrained.register_tokens")
    matching = sorted(n for n, c in PRESETS.items() if _same_encoder(c.backbone, BACKBONES[KIND].presets[size][0]))
    chosen = preset or preset_from_name(source)
    if chosen is None:
        raise ValueError(f"{source or 'state dict'}: a Depth Anything .pth ({size}) does not say whether it is V1 "
                         f"or V2, relative or metric (the weights have the same shapes); name the preset "
                         f"(zoejax-convert --preset), one of {matching}")
    if chosen not in PRESETS:
        raise ValueError(f"unknown Depth Anything preset {chosen!r}; available: {sorted(PRESETS)}")
    if chosen not in matching:
        raise ValueError(f"{source or 'state dict'}: preset {chosen} does not match the weights' encoder ({size}); "
                         f"matching presets: {matching}")
    return DetectedDepthAnything(fmt, chosen, PRESETS[chosen])


def _same_encoder(a: Any, b: Any) -> bool:
    return (a.embed_dim, a.depth, a.num_register_tokens) == (b.embed_dim, b.depth, b.num_register_tokens)


def config_from_hf(state: Mapping[str, np.ndarray], hf: dict[str, Any], naming: str) -> DepthAnythingConfig:
    """The model of a transformers folder: the encoder size from the weights, its taps and resize rule from
    ``config.json`` (``backbone_config.out_indices``; transformers' own position-table resize), the head from it."""
    size = preset_of(state, "backbone.embeddings.cls_token", "backbone.encoder.layer.",
                     "backbone.embeddings.register_tokens")
    backbone = for_transformers(BACKBONES[KIND].presets[size][0])
    rows = int(np.shape(state["backbone.embeddings.position_embeddings"])[1]) - 1
    grid = int(round(rows ** 0.5))
    if grid * grid != rows:
        raise ValueError(f"backbone.embeddings.position_embeddings has {rows} patch rows, not a square grid")
    backbone = dataclasses.replace(backbone, pretrain_grid=grid)
    bc = hf.get("backbone_config") or {}
    indices = bc.get("out_indices")
    if indices is None and bc.get("out_features"):
        indices = [int(str(f).removeprefix("stage")) for f in bc["out_features"]]
    if not indices or len(indices) != 4 or min(indices) < 1:
        raise ValueError(f"config.json backbone_config.out_indices {indices} must name four blocks (1-based)")
    if bc.get("reshape_hidden_states", False) or bc.get("apply_layernorm", True) is not True:
        raise ValueError("config.json backbone_config must have apply_layernorm true and reshape_hidden_states "
                         "false, as every Depth Anything release")
    backbone = dataclasses.replace(backbone, hooks=tuple(int(i) - 1 for i in indices))
    return DepthAnythingConfig(backbone=backbone, head=head_config_from_hf(hf))


def hf_config_dict(config: DepthAnythingConfig) -> dict[str, Any]:
    """transformers ``DepthAnythingConfig(**kwargs)`` for the model: (backbone config class name, its kwargs) under
    ``backbone_config`` and the head's fields."""
    cls, kwargs = hf_config(config.backbone)
    kwargs = {**kwargs, "apply_layernorm": True}
    return {"backbone_config": (cls, kwargs),
            **hf_head_config(config.head, config.backbone.embed_dim, config.backbone.patch_size)}
