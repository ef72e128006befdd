"""Weight tables of the BEiT family (the ``BackboneWeights`` of ``backbone_weights.py``).

Official / MiDaS layouts: timm's ``beit_*_patch16_384`` under ``pretrained.model.`` and MiDaS' four
``pretrained.act_postprocess{j}`` reassemble stages (``core.core.`` in front in ZoeDepth files). Hugging Face
layout: transformers' ``ZoeDepthForDepthEstimation`` with a ``BeitBackbone``, in two namings: ``"file"``, the keys
stored in ``model.safetensors`` files (the Hub's and what ``save_pretrained`` writes, transformers 4.x module
names), and ``"module"``, the ``state_dict()`` of a transformers 5.x model, which renames them at load time.
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from typing import Any

import numpy as np

from zoejax.conversion.table import Table
from zoejax.conversion.transforms import CONV_TRANSPOSE, IDENTITY, LINEAR, QKV
from zoejax.models.backbones.beit import PRESETS, relative_position_index

MARKER = "BEiT cls_token"
ENCODER = "core/pretrained/model"
# (width, blocks) -> preset, for every preset (the demo's "small" too, so an exported demo model imports).
_BY_SIZE = {(enc.embed_dim, enc.depth): name for name, (enc, _) in PRESETS.items()}


def official_entries(t: Table, config: Any, prefix: str) -> None:
    enc, tm = ENCODER, f"{prefix}pretrained.model"
    b = config.backbone
    t.add(f"{enc}/cls_token", f"{tm}.cls_token", IDENTITY)
    t.conv(f"{enc}/patch_embed/proj", f"{tm}.patch_embed.proj")
    index = relative_position_index(tuple(b.pretrain_window)).astype(np.int64)
    for i in range(b.depth):
        f, k = f"{enc}/blocks_{i}", f"{tm}.blocks.{i}"
        t.add(f"{f}/gamma_1", f"{k}.gamma_1", IDENTITY)
        t.add(f"{f}/gamma_2", f"{k}.gamma_2", IDENTITY)
        t.norm(f"{f}/norm1", f"{k}.norm1")
        t.norm(f"{f}/norm2", f"{k}.norm2")
        t.add(f"{f}/attn/qkv/kernel", f"{k}.attn.qkv.weight", LINEAR)
        t.add(f"{f}/attn/q_bias", f"{k}.attn.q_bias", IDENTITY)
        t.add(f"{f}/attn/v_bias", f"{k}.attn.v_bias", IDENTITY)
        t.add(f"{f}/attn/relative_position_bias_table", f"{k}.attn.relative_position_bias_table", IDENTITY)
        t.dense(f"{f}/attn/proj", f"{k}.attn.proj")
        t.dense(f"{f}/mlp/fc1", f"{k}.mlp.fc1")
        t.dense(f"{f}/mlp/fc2", f"{k}.mlp.fc2")
        t.buffers[f"{k}.attn.relative_position_index"] = index
    t.extra("encoder.fc_norm", f"{tm}.fc_norm")
    t.extra("encoder.head", f"{tm}.head")

    for j in range(1, 5):
        f, k = f"core/pretrained/act_postprocess{j}", f"{prefix}pretrained.act_postprocess{j}"
        t.dense(f"{f}/project", f"{k}.0.project.0")
        t.conv(f"{f}/layer3", f"{k}.3")
        if j in (1, 2):
            t.add(f"{f}/layer4/kernel", f"{k}.4.weight", CONV_TRANSPOSE)
            t.add(f"{f}/layer4/bias", f"{k}.4.bias", IDENTITY)
        elif j == 4:
            t.conv(f"{f}/layer4", f"{k}.4")


def hf_entries(t: Table, config: Any, naming: str) -> None:
    if naming == "module":
        _hf_module_names(t, config)
    else:
        _hf_file_names(t, config)
    neck = "neck.reassemble_stage"
    for j in range(1, 5):
        flax = f"core/pretrained/act_postprocess{j}"
        t.dense(f"{flax}/project", f"{neck}.readout_projects.{j - 1}.0")
        t.conv(f"{flax}/layer3", f"{neck}.layers.{j - 1}.projection")
        if j in (1, 2):
            t.add(f"{flax}/layer4/kernel", f"{neck}.layers.{j - 1}.resize.weight", CONV_TRANSPOSE)
            t.add(f"{flax}/layer4/bias", f"{neck}.layers.{j - 1}.resize.bias", IDENTITY)
        elif j == 4:
            t.conv(f"{flax}/layer4", f"{neck}.layers.{j - 1}.resize")


def _hf_module_names(t: Table, config: Any) -> None:
    enc, hf = ENCODER, "backbone.beit"
    t.add(f"{enc}/cls_token", f"{hf}.embeddings.cls_token", IDENTITY)
    t.conv(f"{enc}/patch_embed/proj", f"{hf}.embeddings.patch_embeddings.projection")
    for i in range(config.backbone.depth):
        b, h = f"{enc}/blocks_{i}", f"{hf}.layers.{i}"
        t.add(f"{b}/gamma_1", f"{h}.lambda_1", IDENTITY)
        t.add(f"{b}/gamma_2", f"{h}.lambda_2", IDENTITY)
        t.norm(f"{b}/norm1", f"{h}.layernorm_before")
        t.norm(f"{b}/norm2", f"{h}.layernorm_after")
        t.add(f"{b}/attn/qkv/kernel",
              tuple(f"{h}.attention.{p}_proj.weight" for p in "qkv"), QKV)
        t.add(f"{b}/attn/q_bias", f"{h}.attention.q_proj.bias", IDENTITY)
        t.add(f"{b}/attn/v_bias", f"{h}.attention.v_proj.bias", IDENTITY)
        t.dense(f"{b}/attn/proj", f"{h}.attention.o_proj")
        t.add(f"{b}/attn/relative_position_bias_table",
              f"{h}.relative_position_bias.relative_position_bias_table", IDENTITY)
        t.dense(f"{b}/mlp/fc1", f"{h}.mlp.fc1")
        t.dense(f"{b}/mlp/fc2", f"{h}.mlp.fc2")


def _hf_file_names(t: Table, config: Any) -> None:
    enc, hf = ENCODER, "backbone"
    t.add(f"{enc}/cls_token", f"{hf}.embeddings.cls_token", IDENTITY)
    t.conv(f"{enc}/patch_embed/proj", f"{hf}.embeddings.patch_embeddings.projection")
    for i in range(config.backbone.depth):
        b, h = f"{enc}/blocks_{i}", f"{hf}.encoder.layer.{i}"
        t.add(f"{b}/gamma_1", f"{h}.lambda_1", IDENTITY)
        t.add(f"{b}/gamma_2", f"{h}.lambda_2", IDENTITY)
        t.norm(f"{b}/norm1", f"{h}.layernorm_before")
        t.norm(f"{b}/norm2", f"{h}.layernorm_after")
        t.add(f"{b}/attn/qkv/kernel",
              tuple(f"{h}.attention.attention.{p}.weight" for p in ("query", "key", "value")), QKV)
        t.add(f"{b}/attn/q_bias", f"{h}.attention.attention.query.bias", IDENTITY)
        t.add(f"{b}/attn/v_bias", f"{h}.attention.attention.value.bias", IDENTITY)
        t.dense(f"{b}/attn/proj", f"{h}.attention.output.dense")
        t.add(f"{b}/attn/relative_position_bias_table",
              f"{h}.attention.attention.relative_position_bias.relative_position_bias_table", IDENTITY)
        t.dense(f"{b}/mlp/fc1", f"{h}.intermediate.dense")
        t.dense(f"{b}/mlp/fc2", f"{h}.output.dense")


def hf_backbone_config(config: Any) -> tuple[str, dict[str, Any]]:
    """``transformers.BeitConfig`` keyword arguments, ``layer_norm_eps`` kept at the official 1e-6 (the HF
    default 1e-12 would deviate, architecture spec section 11)."""
    b = config.backbone
    return "BeitConfig", dict(
        image_size=b.pretrain_window[0] * b.patch_size, patch_size=b.patch_size, num_hidden_layers=b.depth,
        hidden_size=b.embed_dim, intermediate_size=int(b.embed_dim * b.mlp_ratio),
        num_attention_heads=b.num_heads, use_relative_position_bias=True, reshape_hidden_states=False,
        out_features=[f"stage{i + 1}" for i in b.hooks], layer_norm_eps=b.layer_norm_eps,
        layer_scale_init_value=b.init_values, hidden_act="gelu",
    )


def default_extras(config: Any, seed: int) -> dict[str, np.ndarray]:
    """None beyond ``table.default_extras``, whose ``encoder.fc_norm`` / ``encoder.head`` are timm BEiT's."""
    return {}


def holds(keys: Set[str], prefix: str) -> bool:
    return f"{prefix}pretrained.model.cls_token" in keys


def hf_naming(keys: Set[str]) -> str | None:
    if "backbone.beit.embeddings.cls_token" in keys:
        return "module"
    # A transformers DINOv2 backbone (DepthAnythingForDepthEstimation) stores the same class-token key: BEiT's
    # file naming is told apart by its per-layer relative-position tables.
    bias = "backbone.encoder.layer.0.attention.attention.relative_position_bias.relative_position_bias_table"
    if "backbone.embeddings.cls_token" in keys and bias in keys:
        return "file"
    return None


def official_preset(state: Mapping[str, np.ndarray], prefix: str) -> str:
    return _preset(state, f"{prefix}pretrained.model.cls_token", f"{prefix}pretrained.model.blocks.")


def hf_preset(state: Mapping[str, np.ndarray], naming: str) -> str:
    if naming == "module":
        return _preset(state, "backbone.beit.embeddings.cls_token", "backbone.beit.layers.")
    return _preset(state, "backbone.embeddings.cls_token", "backbone.encoder.layer.")


def _preset(state: Mapping[str, np.ndarray], cls_key: str, block_prefix: str) -> str:
    if np.ndim(state[cls_key]) == 0:
        raise ValueError(f"{cls_key} is a scalar; a BEiT cls_token has shape (1, 1, width)")
    width = int(np.shape(state[cls_key])[-1])
    depth = len({k[len(block_prefix):].split(".")[0] for k in state if k.startswith(block_prefix)})
    if (width, depth) not in _BY_SIZE:
        raise ValueError(f"unsupported BEiT backbone: width {width}, {depth} blocks "
                         f"(supported: {sorted(_BY_SIZE.values())})")
    return _BY_SIZE[(width, depth)]
