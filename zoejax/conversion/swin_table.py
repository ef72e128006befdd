"""Weight tables of the Swin / SwinV2 family (the ``BackboneWeights`` of ``backbone_weights.py``).

The encoder as the MiDaS v3.1 releases store it (``dpt_swin2_{tiny_256,base_384,
large_384}.pt``, ``dpt_swin_large_384.pt``): a timm 0.6.12 model under ``pretrained.model.`` (``core.core.`` in
front for a ZoeDepth file), the DPT ``scratch`` beside it and no ``act_postprocess`` parameters.

timm 0.6.12 layout (timm >= 0.9 moved patch merging to the start of the next stage and the classifier to
``head.fc``; the tests' ``swin_reference.timm_to_release_keys`` maps such a state dict to this layout):
  patch_embed.proj, patch_embed.norm
  layers.{s}.blocks.{j}.{norm1, attn.qkv, attn.proj, norm2, mlp.fc1, mlp.fc2}
      v1: attn.qkv has a bias; attn.relative_position_bias_table
      v2: attn.q_bias, attn.v_bias, attn.logit_scale (heads, 1, 1), attn.cpb_mlp.{0 (with bias), 2 (no bias)}
  layers.{s}.downsample.{norm, reduction} for s < 3 (v1: norm over 4C; v2: norm over 2C)
  norm, head (final norm and ImageNet classifier: extras, unused by MiDaS)
Buffers that timm 0.6.12 saved (``relative_position_index``; v2 ``relative_coords_table``; ``attn_mask`` of shifted
blocks at the model's ``img_size``; a zero ``k_bias`` if present) are checked against recomputed values.
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from typing import Any

import numpy as np

from zoejax.conversion.table import Table
from zoejax.conversion.transforms import IDENTITY, LINEAR
from zoejax.models.backbones.swin import log_spaced_coords, shifted_window_mask, window_relative_index
from zoejax.models.backbones.swin_encoder import PRESETS, SwinConfig

MARKER = "Swin patch-embedding norm"
_NO_HF = ("the Hugging Face layout is supported for BEiT backbones only (transformers' ZoeDepth uses its own "
          "Swinv2 implementation, not the timm model MiDaS releases hold)")


def swin_encoder_entries(t: Table, config: SwinConfig, prefix: str) -> None:
    """Entries, extras and buffers of the encoder under the torch prefix ``prefix`` (e.g. "pretrained.model")."""
    enc = "core/pretrained/model"
    t.conv(f"{enc}/patch_embed/proj", f"{prefix}.patch_embed.proj")
    t.norm(f"{enc}/patch_embed/norm", f"{prefix}.patch_embed.norm")
    for s, ((window, shift), dim) in enumerate(zip(config.stage_windows(), config.stage_dims, strict=True)):
        index = window_relative_index(window).astype(np.int64)
        grid = tuple(g // config.patch_size // 2**s for g in config.img_size)
        for j in range(config.depths[s]):
            f, k = f"{enc}/layers_{s}/blocks_{j}", f"{prefix}.layers.{s}.blocks.{j}"
            t.norm(f"{f}/norm1", f"{k}.norm1")
            t.norm(f"{f}/norm2", f"{k}.norm2")
            t.dense(f"{f}/attn/proj", f"{k}.attn.proj")
            t.dense(f"{f}/mlp/fc1", f"{k}.mlp.fc1")
            t.dense(f"{f}/mlp/fc2", f"{k}.mlp.fc2")
            if config.version == 1:
                t.dense(f"{f}/attn/qkv", f"{k}.attn.qkv")
                t.add(f"{f}/attn/relative_position_bias_table", f"{k}.attn.relative_position_bias_table",
                      IDENTITY)
            else:
                t.add(f"{f}/attn/qkv/kernel", f"{k}.attn.qkv.weight", LINEAR)
                t.add(f"{f}/attn/q_bias", f"{k}.attn.q_bias", IDENTITY)
                t.add(f"{f}/attn/v_bias", f"{k}.attn.v_bias", IDENTITY)
                t.add(f"{f}/attn/logit_scale", f"{k}.attn.logit_scale", IDENTITY)
                t.dense(f"{f}/attn/cpb_mlp_0", f"{k}.attn.cpb_mlp.0")
                t.add(f"{f}/attn/cpb_mlp_2/kernel", f"{k}.attn.cpb_mlp.2.weight", LINEAR)
                p = config.pretrained_window_sizes[s]
                t.buffers[f"{k}.attn.relative_coords_table"] = log_spaced_coords(window, (p, p))[None]
                t.buffers[f"{k}.attn.k_bias"] = np.zeros(dim, np.float32)
            t.buffers[f"{k}.attn.relative_position_index"] = index
            if j % 2 and any(shift):
                t.buffers[f"{k}.attn_mask"] = shifted_window_mask(grid, window, shift)
        if s < len(config.depths) - 1:
            f, k = f"{enc}/layers_{s}/downsample", f"{prefix}.layers.{s}.downsample"
            t.norm(f"{f}/norm", f"{k}.norm")
            t.add(f"{f}/reduction/kernel", f"{k}.reduction.weight", LINEAR)
    t.extra("encoder.norm", f"{prefix}.norm")
    t.extra("encoder.head", f"{prefix}.head")


def official_entries(t: Table, config: Any, prefix: str) -> None:
    """No readout and no reassemble convs (MiDaS' act_postprocess is a reshape): the encoder only."""
    swin_encoder_entries(t, config.backbone, f"{prefix}pretrained.model")


def hf_entries(t: Table, config: Any, naming: str) -> None:
    raise ValueError(_NO_HF)


def hf_backbone_config(config: Any) -> tuple[str, dict[str, Any]]:
    raise ValueError(_NO_HF)


def holds(keys: Set[str], prefix: str) -> bool:
    return f"{prefix}pretrained.model.patch_embed.norm.weight" in keys  # BEiT's patch embedding has no norm


def hf_naming(keys: Set[str]) -> str | None:
    return None


def hf_preset(state: Mapping[str, np.ndarray], naming: str) -> str:
    raise ValueError(_NO_HF)


def official_preset(state: Mapping[str, np.ndarray], prefix: str) -> str:
    """The Swin preset whose (version, width, blocks per stage) the encoder under ``prefix`` has."""
    prefix = f"{prefix}pretrained.model."
    version = 2 if any(k.startswith(prefix) and k.endswith(".attn.logit_scale") for k in state) else 1
    proj = f"{prefix}patch_embed.proj.weight"
    if proj not in state or np.ndim(state[proj]) != 4:
        found = "missing" if proj not in state else f"of shape {np.shape(state[proj])}"
        raise ValueError(f"{prefix}patch_embed.norm.weight marks a Swin backbone, but {proj} (the patch "
                         f"embedding's (width, 3, 4, 4) kernel) is {found}: not a complete Swin state dict")
    width = int(np.shape(state[proj])[0])
    blocks: dict[int, set[str]] = {}
    for k in state:
        parts = k[len(prefix):].split(".") if k.startswith(prefix + "layers.") else []
        if len(parts) > 3 and parts[2] == "blocks" and parts[1].isdigit():
            blocks.setdefault(int(parts[1]), set()).add(parts[3])
    depths = tuple(len(blocks[s]) for s in sorted(blocks))
    for name, (enc, _) in PRESETS.items():
        if (enc.version, enc.embed_dim, tuple(enc.depths)) == (version, width, depths):
            return name
    raise ValueError(f"unsupported Swin backbone: version {version}, width {width}, blocks per stage {depths} "
                     f"(supported: {sorted(PRESETS)})")


def default_extras(config: Any, seed: int = 0) -> dict[str, np.ndarray]:
    """Encoder extras for a Swin model that never had them: final norm ones/zeros, a classifier initialised as
    timm does (truncated normal 0.02, zero bias). The decoder's unused residual unit comes from ``default_extras``."""
    rng = np.random.default_rng(seed)
    d = config.backbone.num_features
    return {"encoder.norm.weight": np.ones(d, np.float32), "encoder.norm.bias": np.zeros(d, np.float32),
            "encoder.head.weight": np.clip(rng.normal(0, 0.02, (1000, d)), -0.04, 0.04).astype(np.float32),
            "encoder.head.bias": np.zeros(1000, np.float32)}
