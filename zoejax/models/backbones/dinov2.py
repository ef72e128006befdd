"""DINOv2 encoder (ViT-S/B/L/G at patch 14, optionally with register tokens) as Depth Anything V1/V2 use it.

What matters for parity with the official code (facebookresearch/dinov2 as vendored by Depth Anything) and with
transformers' ``Dinov2Model`` / ``Dinov2WithRegistersModel``:
  * a learned absolute position embedding for the trained 37x37 grid (+ the class token's), resized to the input's
    grid in float32 by one of three rules (``POS_INTERPOLATIONS``, see ``resize_position_embedding``): the
    original's bicubic with ``scale_factor = (n + 0.1) / 37`` (the offset enters the coordinate mapping),
    the register models' antialiased bicubic to the size, or transformers' plain bicubic to the size;
  * register tokens (if any) go between the class token and the patches, after the position embedding;
  * LayerScale (``ls1``/``ls2``), LayerNorm eps 1e-6, exact GELU MLP (ViT-G: fused SwiGLU ``w12``/``w3``);
  * every hooked block goes through the final ``norm`` (``get_intermediate_layers(..., norm=True)``).

Parameter names mirror the official module paths (``blocks_3/attn/qkv``, ``blocks_3/ls1/gamma``), so the weight
table (``zoejax/conversion/dinov2_table.py``) is near identity. ``reassemble`` is the Depth Anything head's
(``zoejax/models/depth_anything_head.py``).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from zoejax.models import depth_anything_head
from zoejax.models.backbones.beit import PatchEmbed
from zoejax.models.dpt import DPTConfig
from zoejax.models.layers import REMAT_POLICIES, Mlp, RematPolicy, dense_init
from zoejax.ops.attention import attention
from zoejax.ops.grad_barrier import gradient_barrier
from zoejax.ops.platform import GENERIC, OpForms
from zoejax.ops.resize import resize_bicubic

Dtype = Any

# "original": DINOv2 / Depth Anything checkpoints (bicubic A=-0.75, scale_factor (n + 0.1) / N, no antialias);
# "registers": the register checkpoints (offset 0: bicubic to the size, antialias on);
# "transformers": transformers' Dinov2Model (bicubic to the size, antialias off).
POS_INTERPOLATIONS = ("original", "registers", "transformers")
FFNS = ("mlp", "swiglu")
ORIGINAL_OFFSET = 0.1  # the official interpolate_offset


@dataclasses.dataclass(frozen=True)
class DinoV2Config:
    """A DINOv2 ViT (``DinoVisionTransformer`` of facebookresearch/dinov2).

    Attributes:
      kind: "dinov2", its key in the backbone registry (``zoejax/models/backbones/registry.py``).
      embed_dim: token width D (S 384, B 768, L 1024, G 1536).
      depth: transformer blocks (12, 12, 24, 40).
      num_heads: attention heads (6, 12, 16, 24; head dim 64).
      mlp_ratio: MLP hidden width / D (4).
      ffn: "mlp" (fc1, exact GELU, fc2) or "swiglu" (ViT-G's fused ``w12``/``w3``; hidden width
        ``swiglu_hidden``, 4096 for G).
      patch_size: square patch side in pixels (14).
      pretrain_grid: side of the patch grid the position embedding was trained for (37: 518 px); the table holds
        pretrain_grid**2 + 1 rows.
      num_register_tokens: 0, or 4 for the ``*_reg`` checkpoints.
      pos_interpolation: how the position table is resized to other grids (``POS_INTERPOLATIONS``): each
        checkpoint source reproduces its own code.
      init_values: LayerScale initial value (1.0 as the released models; the checkpoints overwrite it).
      hooks: 0-based blocks whose normed tokens the decoder reads (Depth Anything V2: S/B (2, 5, 8, 11),
        L (4, 11, 17, 23), G (9, 19, 29, 39); V1: the last four).
      layer_norm_eps: 1e-6 as the official code.
    """

    kind: str = "dinov2"
    embed_dim: int = 1024
    depth: int = 24
    num_heads: int = 16
    mlp_ratio: float = 4.0
    ffn: str = "mlp"
    patch_size: int = 14
    pretrain_grid: int = 37
    num_register_tokens: int = 0
    pos_interpolation: str = "original"
    init_values: float = 1.0
    hooks: tuple[int, ...] = (4, 11, 17, 23)
    layer_norm_eps: float = 1e-6

    @property
    def num_features(self) -> int:
        """Width of every tap (all blocks have width D)."""
        return self.embed_dim

    @property
    def input_multiple(self) -> int:
        """Input height and width must be multiples of this (the patch size)."""
        return self.patch_size

    @property
    def mlp_hidden(self) -> int:
        """The FFN's hidden width: D * mlp_ratio, or for SwiGLU two thirds of it rounded up to a multiple of 8."""
        hidden = int(self.embed_dim * self.mlp_ratio)
        return (int(hidden * 2 / 3) + 7) // 8 * 8 if self.ffn == "swiglu" else hidden

    def validate(self, reassemble_features: tuple[int, ...]) -> None:
        """ValueError naming the field when the encoder cannot be built or hooked."""
        if len(self.hooks) != 4 or len(tuple(reassemble_features)) != 4:
            raise ValueError(f"backbone.hooks must name 4 blocks (and decoder.reassemble_features 4 widths), "
                             f"got {self.hooks} and {tuple(reassemble_features)}")
        if min(self.hooks) < 0 or max(self.hooks) >= self.depth:
            raise ValueError(f"backbone.hooks {self.hooks} out of range for depth {self.depth}")
        if self.embed_dim % self.num_heads:
            raise ValueError("backbone.embed_dim must be divisible by backbone.num_heads")
        if self.ffn not in FFNS:
            raise ValueError(f"backbone.ffn must be one of {FFNS}, got {self.ffn!r}")
        if self.pos_interpolation not in POS_INTERPOLATIONS:
            raise ValueError(f"backbone.pos_interpolation must be one of {POS_INTERPOLATIONS}, "
                             f"got {self.pos_interpolation!r}")
        if self.num_register_tokens < 0 or self.pretrain_grid < 1 or self.patch_size < 1:
            raise ValueError("backbone.num_register_tokens must be >= 0, pretrain_grid and patch_size >= 1")

    def describe(self) -> str:
        """One phrase, e.g. 'DINOv2 ViT/14 1024x24 (16 heads, 4 registers)'."""
        extra = f", {self.num_register_tokens} registers" if self.num_register_tokens else ""
        ffn = ", SwiGLU" if self.ffn == "swiglu" else ""
        return f"DINOv2 ViT/{self.patch_size} {self.embed_dim}x{self.depth} ({self.num_heads} heads{ffn}{extra})"


def resize_position_embedding(table: jnp.ndarray, pretrain_grid: int, grid: tuple[int, int],
                              mode: str) -> jnp.ndarray:
    """The (1, 1 + N, D) position table resized to ``grid`` = (H/p, W/p), in float32 (returned in float32).

    The class token's row is kept. As every source does, the table is returned unchanged when the grid is the
    trained square grid; otherwise (``mode``):
      "original": ``F.interpolate(scale_factor=((h + 0.1) / G, (w + 0.1) / G), mode="bicubic")``: sampled at
        (dst + 0.5) * G / (n + 0.1) - 0.5, so an axis of G patches is resampled too;
      "registers": ``F.interpolate(size=(h, w), mode="bicubic", antialias=True)``;
      "transformers": ``F.interpolate(size=(h, w), mode="bicubic", align_corners=False)``.
    """
    g = pretrain_grid
    gh, gw = int(grid[0]), int(grid[1])
    table = table.astype(jnp.float32)
    if (gh, gw) == (g, g):
        return table
    d = table.shape[-1]
    patch = table[0, 1:].reshape(g, g, d)
    if mode == "original":
        factors = ((gh + ORIGINAL_OFFSET) / g, (gw + ORIGINAL_OFFSET) / g)
        # PyTorch's output size for a factor is floor(in * factor); the official code asserts it is the grid.
        assert all(math.floor(g * f) == n for f, n in zip(factors, (gh, gw), strict=True)), (factors, grid)
        patch = resize_bicubic(patch, (gh, gw), axes=(0, 1), scale_factor=factors)
    elif mode == "registers":
        patch = resize_bicubic(patch, (gh, gw), axes=(0, 1), antialias=True)
    elif mode == "transformers":
        patch = resize_bicubic(patch, (gh, gw), axes=(0, 1))
    else:
        raise ValueError(f"unknown position-embedding interpolation {mode!r}; expected one of {POS_INTERPOLATIONS}")
    return jnp.concatenate([table[:, :1], patch.reshape(1, gh * gw, d)], axis=1)


class LayerScale(nn.Module):
    """x * gamma, per channel (official ``ls1``/``ls2``)."""

    init_values: float
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        gamma = self.param("gamma", nn.initializers.constant(self.init_values), (x.shape[-1],), self.param_dtype)
        return x * gamma.astype(self.dtype)


class SwiGLU(nn.Module):
    """ViT-G's fused SwiGLU FFN: w3(silu(a) * b) with (a, b) the two halves of w12(x), a first."""

    hidden: int
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        """(..., D) -> (..., D)."""
        h = nn.Dense(2 * self.hidden, dtype=self.dtype, param_dtype=self.param_dtype,
                     kernel_init=dense_init("embed", "mlp"), name="w12")(x)
        h = jax.nn.silu(h[..., : self.hidden]) * h[..., self.hidden:]
        return nn.Dense(x.shape[-1], dtype=self.dtype, param_dtype=self.param_dtype,
                        kernel_init=dense_init("mlp", "embed"), name="w3")(h)


class Attention(nn.Module):
    """Plain multi-head self-attention: fused qkv with biases, q scaled before the product, output ``proj``."""

    dim: int
    num_heads: int
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32
    ops: OpForms = GENERIC  # platform-dependent op forms (zoejax.ops.platform)

    @nn.compact
    def __call__(self, x: jnp.ndarray, batch: int) -> jnp.ndarray:
        """x: (B * T, D) tokens, example-major -> (B * T, D)."""
        b, n = batch, x.shape[0] // batch
        head_dim = self.dim // self.num_heads
        qkv = nn.Dense(3 * self.dim, dtype=self.dtype, param_dtype=self.param_dtype,
                       kernel_init=dense_init("embed", "qkv"), name="qkv")(x)
        qkv = qkv.reshape(b, n, 3, self.num_heads, head_dim)
        q = qkv[:, :, 0] * jnp.asarray(head_dim**-0.5, self.dtype)  # scaled before q k^T, as the official code
        out = attention(q, qkv[:, :, 1], qkv[:, :, 2], implementation=self.ops.attention)
        return nn.Dense(self.dim, dtype=self.dtype, param_dtype=self.param_dtype,
                        kernel_init=dense_init("heads", "embed"), name="proj")(out.reshape(b * n, self.dim))


class Block(nn.Module):
    """Pre-norm block with LayerScale: x += ls1(attn(norm1 x)); x += ls2(mlp(norm2 x))."""

    config: DinoV2Config
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32
    ops: OpForms = GENERIC  # platform-dependent op forms (zoejax.ops.platform)

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        """x: (B, T, D) tokens -> (B, T, D)."""
        c = self.config
        # (B * T, D) inside the block: XLA:CPU's reductions over the token axis of a 3-D array are far slower
        # than over a 2-D one (see beit.Block).
        b, n, d = x.shape
        x = x.reshape(b * n, d)
        norm = dict(epsilon=c.layer_norm_eps, use_fast_variance=False, dtype=self.dtype,
                    param_dtype=self.param_dtype)
        h = Attention(d, c.num_heads, self.dtype, self.param_dtype, self.ops, name="attn")(
            nn.LayerNorm(name="norm1", **norm)(x), b)
        x = gradient_barrier(x + LayerScale(c.init_values, self.dtype, self.param_dtype, name="ls1")(h),
                             self.ops.barrier)
        ffn = SwiGLU if c.ffn == "swiglu" else Mlp
        h = ffn(c.mlp_hidden, self.dtype, self.param_dtype, name="mlp")(nn.LayerNorm(name="norm2", **norm)(x))
        x = x + LayerScale(c.init_values, self.dtype, self.param_dtype, name="ls2")(h)
        return x.reshape(b, n, d)


class DinoV2Encoder(nn.Module):
    """Patch embedding, class token (+ registers), resized position embedding, ``depth`` blocks; returns the
    hooked blocks through the final norm.

    Attributes:
      config: the backbone's ``DinoV2Config``.
      remat: per-block rematerialisation policy.
      ops: the platform-dependent op forms (``zoejax.ops.platform``), passed to every block.
    """

    config: DinoV2Config
    remat: RematPolicy = RematPolicy.NONE
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32
    ops: OpForms = GENERIC

    @nn.compact
    def __call__(self, images: jnp.ndarray) -> list[tuple[jnp.ndarray, jnp.ndarray]]:
        """images: (B, H, W, 3) as the model normalises them, H and W multiples of the patch size (14).

        Returns:
          per hooked block, in hook order, ``get_intermediate_layers(x, hooks, return_class_token=True)``'s pair:
          the normed patch tokens as a (B, H/p, W/p, D) map and the normed class token (B, D). Register tokens
          are dropped.
        """
        c = self.config
        b, h, w, _ = images.shape
        p, d, r = c.patch_size, c.embed_dim, c.num_register_tokens
        if h % p or w % p or h <= 0 or w <= 0:
            raise ValueError(f"DINOv2 input height and width must be positive multiples of the patch size {p}, "
                             f"got {h}x{w}; resize (or pad) the image to a multiple of {p} first")
        grid = (h // p, w // p)
        x = PatchEmbed(d, p, self.dtype, self.param_dtype, self.ops, name="patch_embed")(images)
        x = x.reshape(b, grid[0] * grid[1], d)  # row-major tokens
        cls = self.param("cls_token", nn.initializers.normal(1e-6), (1, 1, d), self.param_dtype)
        pos = self.param("pos_embed", nn.initializers.truncated_normal(0.02), (1, c.pretrain_grid**2 + 1, d),
                         self.param_dtype)
        x = jnp.concatenate([jnp.broadcast_to(cls.astype(self.dtype), (b, 1, d)), x], axis=1)
        x = x + resize_position_embedding(pos, c.pretrain_grid, grid, c.pos_interpolation).astype(self.dtype)
        if r:
            registers = self.param("register_tokens", nn.initializers.normal(1e-6), (1, r, d), self.param_dtype)
            x = jnp.concatenate([x[:, :1], jnp.broadcast_to(registers.astype(self.dtype), (b, r, d)), x[:, 1:]],
                                axis=1)

        block_cls = Block
        if self.remat is not RematPolicy.NONE:
            block_cls = nn.remat(Block, policy=REMAT_POLICIES[self.remat])
        norm = nn.LayerNorm(epsilon=c.layer_norm_eps, use_fast_variance=False, dtype=self.dtype,
                            param_dtype=self.param_dtype, name="norm")
        taps = []
        for i in range(c.depth):  # every block, so that every checkpoint tensor has its parameter
            # keeps the residual-stream gradient from fusing across blocks (see zoejax.ops.grad_barrier)
            x = gradient_barrier(x, self.ops.barrier)
            x = block_cls(c, self.dtype, self.param_dtype, self.ops, name=f"blocks_{i}")(x)
            if i in c.hooks:
                y = norm(x.reshape(-1, d)).reshape(x.shape)
                taps.append((y[:, 1 + r:].reshape(b, grid[0], grid[1], d), y[:, 0]))
        return taps


def reassemble(config: DinoV2Config, reassemble_features: tuple[int, ...], taps: list[tuple[jnp.ndarray, jnp.ndarray]],
               image_hw: tuple[int, int], dtype: Dtype, param_dtype: Dtype,
               ops: OpForms = GENERIC) -> list[jnp.ndarray]:
    """The features Depth Anything's DPT head makes from the taps: ``zoejax.models.depth_anything_head.reassemble``
    on the patch maps (``use_clstoken=False``: the class token is not read), i.e. per tap j a 1x1 conv to
    ``reassemble_features[j]`` channels (``projects_{j}``) and ``resize_layers_{j}`` (ConvTranspose 4/4,
    ConvTranspose 2/2, identity, conv 3x3 stride 2): maps at 4x, 2x, 1x and ceil(1/2 x) the (H/14, W/14) grid.
    Created in the calling module, as BEiT's ``act_postprocess{j}``."""
    return depth_anything_head.reassemble([tokens for tokens, _cls in taps], reassemble_features, dtype, param_dtype,
                                          ops)


def encoder_flops(config: DinoV2Config, reassemble_features: tuple[int, ...], batch: int, height: int,
                  width: int) -> dict[str, int]:
    """Matmul/conv FLOPs (2 per multiply-add) of the encoder and the reassemble for one forward.

    Keys: patch_embed; attention (qkv, q k^T, weights x v, output projection of every block over class, register
    and patch tokens); mlp (fc1/fc2, or SwiGLU's w12/w3); reassemble (1x1 projections, depth-to-space transposed
    convs, the stride-2 3x3 conv). The position-embedding resize and the norms are elementwise (not counted).
    """
    b, p, d = batch, config.patch_size, config.embed_dim
    gh, gw = height // p, width // p
    n = gh * gw
    t = n + 1 + config.num_register_tokens
    hidden = config.mlp_hidden

    def mm(rows: int, k: int, cols: int) -> int:  # (rows x k) @ (k x cols)
        return 2 * rows * k * cols

    out = {"patch_embed": b * mm(n, p * p * 3, d)}
    out["attention"] = config.depth * b * (mm(t, d, 3 * d) + 2 * mm(t, d, t) + mm(t, d, d))
    if config.ffn == "swiglu":
        out["mlp"] = config.depth * b * (mm(t, d, 2 * hidden) + mm(t, hidden, d))
    else:
        out["mlp"] = config.depth * b * 2 * mm(t, d, hidden)
    total = 0
    for f, factor in zip(reassemble_features, depth_anything_head.RESIZE_FACTORS, strict=True):
        total += b * mm(n, d, f)
        if factor > 1:
            total += b * mm(n, f, f * factor * factor)
        elif factor < 1:
            total += b * mm(-(-gh // 2) * -(-gw // 2), 9 * f, f)
    out["reassemble"] = total
    return out


def _vit(embed_dim: int, depth: int, num_heads: int, hooks: tuple[int, ...], registers: bool,
         ffn: str = "mlp") -> DinoV2Config:
    return DinoV2Config(embed_dim=embed_dim, depth=depth, num_heads=num_heads, ffn=ffn, hooks=hooks,
                        num_register_tokens=4 if registers else 0,
                        pos_interpolation="registers" if registers else "original")


def last_four(config: DinoV2Config) -> DinoV2Config:
    """The config with Depth Anything V1's taps: the last four blocks (``get_intermediate_layers(x, 4)``)."""
    return dataclasses.replace(config, hooks=tuple(range(config.depth - 4, config.depth)))


# Depth Anything's decoders per size (DPTHead features and out_channels); the taps are V2's
# (``intermediate_layer_idx``); V1's metric model takes ``last_four`` of the L preset.
_DECODERS = {
    "s": DPTConfig(reassemble_features=(48, 96, 192, 384), features=64, num_relative_features=32),
    "b": DPTConfig(reassemble_features=(96, 192, 384, 768), features=128, num_relative_features=32),
    "l": DPTConfig(reassemble_features=(256, 512, 1024, 1024), features=256, num_relative_features=32),
    "g": DPTConfig(reassemble_features=(1536, 1536, 1536, 1536), features=384, num_relative_features=32),
}
_SIZES = {  # (embed_dim, depth, heads, V2 hooks, ffn)
    "s": (384, 12, 6, (2, 5, 8, 11), "mlp"), "b": (768, 12, 12, (2, 5, 8, 11), "mlp"),
    "l": (1024, 24, 16, (4, 11, 17, 23), "mlp"), "g": (1536, 40, 24, (9, 19, 29, 39), "swiglu"),
}
PRESETS: dict[str, tuple[DinoV2Config, DPTConfig]] = {
    f"dinov2_vit{size}14{'_reg' if reg else ''}": (_vit(*_SIZES[size][:4], registers=reg, ffn=_SIZES[size][4]),
                                                   _DECODERS[size])
    for size in _SIZES for reg in (False, True)
}
PRESETS["dinov2_tiny"] = (  # test fixture: 4 blocks of width 32 at the real patch size on a 4x4 trained grid (56 px)
    DinoV2Config(embed_dim=32, depth=4, num_heads=2, pretrain_grid=4, hooks=(0, 1, 2, 3)),
    DPTConfig(reassemble_features=(8, 16, 32, 32), features=16, num_relative_features=8))
FIXTURES = ("dinov2_tiny",)
