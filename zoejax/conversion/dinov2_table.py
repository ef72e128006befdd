"""Weight tables of the DINOv2 family (the ``BackboneWeights`` of ``backbone_weights.py``), and the pieces the
Depth Anything tables reuse.

Official layout: facebookresearch/dinov2's ``DinoVisionTransformer`` as Depth Anything stores it, under
``pretrained.`` (``core.core.pretrained.`` in the V1 metric files): ``cls_token``, ``pos_embed``,
``register_tokens`` (register models), ``patch_embed.proj``, ``blocks.N.{norm1, attn.qkv, attn.proj, ls1.gamma,
norm2, mlp.fc1, mlp.fc2 | mlp.w12, mlp.w3, ls2.gamma}``, ``norm``, and the unused ``mask_token`` (kept as an
extra). Depth Anything's ``depth_head.projects.j`` / ``depth_head.resize_layers.j`` are the reassemble.

transformers layout (``Dinov2Model`` / ``Dinov2WithRegistersModel``, under ``backbone.`` in a
``DepthAnythingForDepthEstimation``), in two namings as for BEiT: ``"file"``, the keys of ``model.safetensors``
(``embeddings.{cls_token, mask_token, position_embeddings, register_tokens, patch_embeddings.projection}``,
``encoder.layer.N.{norm1, attention.attention.{query,key,value}, attention.output.dense, layer_scale1.lambda1,
norm2, mlp.fc1, mlp.fc2 | mlp.weights_in, mlp.weights_out, layer_scale2.lambda1}``, ``layernorm``), and
``"module"``, a transformers 5.x ``state_dict()`` (``attention.{q,k,v,o}_proj``, ``mlp.{gate,up,down}_proj``).
A transformers model resizes its position table with its own rule (``for_transformers``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Set
from typing import Any

import numpy as np

from zoejax.conversion.table import Table
from zoejax.conversion.transforms import CONV_TRANSPOSE, IDENTITY, QKV, QKV_BIAS, Transform
from zoejax.models.backbones.dinov2 import PRESETS, DinoV2Config
from zoejax.models.depth_anything_head import RESIZE_FACTORS

MARKER = "DINOv2 pos_embed"
ENCODER = "core/pretrained/model"
REASSEMBLE = "core/pretrained"
NAMINGS = ("file", "module")
GATE_UP = Transform("concat_linear_gate_up", 2)  # transformers' gate_proj | up_proj = the fused w12, gate first
GATE_UP_BIAS = Transform("concat_vector_gate_up", 2)
# (width, blocks, registers) -> preset, fixtures included.
_BY_SIZE = {(enc.embed_dim, enc.depth, enc.num_register_tokens): name for name, (enc, _) in PRESETS.items()}


def encoder_official(t: Table, backbone: DinoV2Config, flax: str, torch: str) -> None:
    """The encoder at flax path ``flax`` from the official keys under ``torch`` (e.g. "pretrained")."""
    t.add(f"{flax}/cls_token", f"{torch}.cls_token", IDENTITY)
    t.add(f"{flax}/pos_embed", f"{torch}.pos_embed", IDENTITY)
    if backbone.num_register_tokens:
        t.add(f"{flax}/register_tokens", f"{torch}.register_tokens", IDENTITY)
    t.conv(f"{flax}/patch_embed/proj", f"{torch}.patch_embed.proj")
    for i in range(backbone.depth):
        f, k = f"{flax}/blocks_{i}", f"{torch}.blocks.{i}"
        t.norm(f"{f}/norm1", f"{k}.norm1")
        t.dense(f"{f}/attn/qkv", f"{k}.attn.qkv")
        t.dense(f"{f}/attn/proj", f"{k}.attn.proj")
        t.add(f"{f}/ls1/gamma", f"{k}.ls1.gamma", IDENTITY)
        t.norm(f"{f}/norm2", f"{k}.norm2")
        for name in (("w12", "w3") if backbone.ffn == "swiglu" else ("fc1", "fc2")):
            t.dense(f"{f}/mlp/{name}", f"{k}.mlp.{name}")
        t.add(f"{f}/ls2/gamma", f"{k}.ls2.gamma", IDENTITY)
    t.norm(f"{flax}/norm", f"{torch}.norm")
    t.extras[f"{torch}.mask_token"] = "encoder.mask_token"


def encoder_hf(t: Table, backbone: DinoV2Config, flax: str, torch: str, naming: str) -> None:
    """The encoder from a transformers ``Dinov2Model`` / ``Dinov2WithRegistersModel`` under ``torch`` ("" for a
    bare model, "backbone" in a DepthAnything model), ``naming`` "file" or "module"."""
    if naming not in NAMINGS:
        raise ValueError(f"naming must be one of {NAMINGS}, got {naming!r}")
    p = f"{torch}." if torch else ""
    emb = f"{p}embeddings"
    t.add(f"{flax}/cls_token", f"{emb}.cls_token", IDENTITY)
    t.add(f"{flax}/pos_embed", f"{emb}.position_embeddings", IDENTITY)
    if backbone.num_register_tokens:
        t.add(f"{flax}/register_tokens", f"{emb}.register_tokens", IDENTITY)
    t.conv(f"{flax}/patch_embed/proj", f"{emb}.patch_embeddings.projection")
    if naming == "file":
        qkv, out = tuple(f"attention.attention.{n}" for n in ("query", "key", "value")), "attention.output.dense"
    else:
        qkv, out = tuple(f"attention.{n}_proj" for n in "qkv"), "attention.o_proj"
    for i in range(backbone.depth):
        f, k = f"{flax}/blocks_{i}", f"{p}encoder.layer.{i}"
        t.norm(f"{f}/norm1", f"{k}.norm1")
        t.add(f"{f}/attn/qkv/kernel", tuple(f"{k}.{n}.weight" for n in qkv), QKV)
        t.add(f"{f}/attn/qkv/bias", tuple(f"{k}.{n}.bias" for n in qkv), QKV_BIAS)
        t.dense(f"{f}/attn/proj", f"{k}.{out}")
        t.add(f"{f}/ls1/gamma", f"{k}.layer_scale1.lambda1", IDENTITY)
        t.norm(f"{f}/norm2", f"{k}.norm2")
        if backbone.ffn == "mlp":
            t.dense(f"{f}/mlp/fc1", f"{k}.mlp.fc1")
            t.dense(f"{f}/mlp/fc2", f"{k}.mlp.fc2")
        elif naming == "file":
            t.dense(f"{f}/mlp/w12", f"{k}.mlp.weights_in")
            t.dense(f"{f}/mlp/w3", f"{k}.mlp.weights_out")
        else:
            gate_up = (f"{k}.mlp.gate_proj", f"{k}.mlp.up_proj")
            t.add(f"{f}/mlp/w12/kernel", tuple(f"{g}.weight" for g in gate_up), GATE_UP)
            t.add(f"{f}/mlp/w12/bias", tuple(f"{g}.bias" for g in gate_up), GATE_UP_BIAS)
            t.dense(f"{f}/mlp/w3", f"{k}.mlp.down_proj")
        t.add(f"{f}/ls2/gamma", f"{k}.layer_scale2.lambda1", IDENTITY)
    t.norm(f"{flax}/norm", f"{p}layernorm")
    t.extras[f"{emb}.mask_token"] = "encoder.mask_token"


def reassemble_official(t: Table, flax: str, torch: str) -> None:
    """Depth Anything's ``projects.j`` and ``resize_layers.j`` under ``torch`` (e.g. "depth_head")."""
    _reassemble(t, flax, lambda j: (f"{torch}.projects.{j}", f"{torch}.resize_layers.{j}"))


def reassemble_hf(t: Table, flax: str, torch: str) -> None:
    """transformers' ``reassemble_stage.layers.j.{projection, resize}`` under ``torch`` (e.g.
    "neck.reassemble_stage")."""
    _reassemble(t, flax, lambda j: (f"{torch}.layers.{j}.projection", f"{torch}.layers.{j}.resize"))


def _reassemble(t: Table, flax: str, keys) -> None:
    for j, factor in enumerate(RESIZE_FACTORS):
        project, resize = keys(j)
        t.conv(f"{flax}/projects_{j}", project)
        if factor > 1:
            t.add(f"{flax}/resize_layers_{j}/kernel", f"{resize}.weight", CONV_TRANSPOSE)
            t.add(f"{flax}/resize_layers_{j}/bias", f"{resize}.bias", IDENTITY)
        elif factor < 1:
            t.conv(f"{flax}/resize_layers_{j}", resize)


def for_transformers(backbone: DinoV2Config) -> DinoV2Config:
    """The config a transformers model of this architecture reproduces: ``Dinov2Model`` resizes the position
    table to the size without antialias ("transformers"); ``Dinov2WithRegistersModel`` with antialias, as the
    original register models ("registers")."""
    mode = "registers" if backbone.num_register_tokens else "transformers"
    return dataclasses.replace(backbone, pos_interpolation=mode)


def hf_config(backbone: DinoV2Config) -> tuple[str, dict[str, Any]]:
    """(transformers config class name, keyword arguments) of the encoder: ``Dinov2Config``, or
    ``Dinov2WithRegistersConfig`` with registers. transformers resizes with its own rule, whatever the config's
    ``pos_interpolation`` says."""
    kwargs = dict(hidden_size=backbone.embed_dim, num_hidden_layers=backbone.depth,
                  num_attention_heads=backbone.num_heads,
                  mlp_ratio=int(backbone.mlp_ratio) if float(backbone.mlp_ratio).is_integer() else backbone.mlp_ratio,
                  image_size=backbone.pretrain_grid * backbone.patch_size, patch_size=backbone.patch_size,
                  layer_norm_eps=backbone.layer_norm_eps, layerscale_value=backbone.init_values,
                  use_swiglu_ffn=backbone.ffn == "swiglu", hidden_act="gelu",
                  out_features=[f"stage{i + 1}" for i in backbone.hooks], reshape_hidden_states=False)
    if backbone.num_register_tokens:
        return "Dinov2WithRegistersConfig", {**kwargs, "num_register_tokens": backbone.num_register_tokens}
    return "Dinov2Config", kwargs


def preset_of(state: Mapping[str, np.ndarray], cls_key: str, block_prefix: str, register_key: str) -> str:
    """The preset whose encoder ``state`` holds (``cls_key`` its class token, blocks under ``block_prefix``,
    ``register_key`` its register tokens if any); ValueError listing the supported sizes."""
    if np.ndim(state[cls_key]) != 3:
        raise ValueError(f"{cls_key} has shape {tuple(np.shape(state[cls_key]))}; a DINOv2 class token has shape "
                         f"(1, 1, width)")
    width = int(np.shape(state[cls_key])[-1])
    depth = len({k[len(block_prefix):].split(".")[0] for k in state if k.startswith(block_prefix)})
    registers = int(np.shape(state[register_key])[1]) if register_key in state else 0
    if (width, depth, registers) not in _BY_SIZE:
        raise ValueError(f"unsupported DINOv2 backbone: width {width}, {depth} blocks, {registers} registers "
                         f"(supported: {sorted(_BY_SIZE.values())})")
    return _BY_SIZE[(width, depth, registers)]


# The BackboneWeights interface: a ZoeDepth (Depth Anything V1 metric) model on DINOv2.


def official_entries(t: Table, config: Any, prefix: str) -> None:
    encoder_official(t, config.backbone, ENCODER, f"{prefix}pretrained")
    reassemble_official(t, REASSEMBLE, f"{prefix}depth_head")


def _no_hf(*_: Any) -> Any:
    raise ValueError("transformers' ZoeDepthForDepthEstimation has no DINOv2 form (Hugging Face holds Depth "
                     "Anything as DepthAnythingForDepthEstimation); export a DINOv2 ZoeDepth in the official layout")


def hf_entries(t: Table, config: Any, naming: str) -> None:
    _no_hf()


def hf_backbone_config(config: Any) -> tuple[str, dict[str, Any]]:
    return _no_hf()


def default_extras(config: Any, seed: int) -> dict[str, np.ndarray]:
    """The unused ``mask_token``, zeros as the official initialisation."""
    return {"encoder.mask_token": np.zeros((1, config.backbone.embed_dim), np.float32)}


def holds(keys: Set[str], prefix: str) -> bool:
    return f"{prefix}pretrained.pos_embed" in keys


def hf_naming(keys: Set[str]) -> str | None:
    return None  # no ZoeDepthForDepthEstimation on DINOv2 (see hf_entries)


def official_preset(state: Mapping[str, np.ndarray], prefix: str) -> str:
    p = f"{prefix}pretrained"
    return preset_of(state, f"{p}.cls_token", f"{p}.blocks.", f"{p}.register_tokens")


def hf_preset(state: Mapping[str, np.ndarray], naming: str) -> str:
    return _no_hf()
