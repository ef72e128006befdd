"""BEiT encoder in the MiDaS v3.1 flavour (timm ``beit_{large,base}_patch16_384`` with MiDaS' any-size forward).

Differences from a plain ViT that matter for parity (architecture spec sections 3.2-3.3, 9):
  * no absolute position embedding; every block owns a relative-position bias table, stored for the
    pretraining grid (24x24 patches) and resized per input grid with bilinear, align_corners=False;
  * the index into that table is regenerated for the input grid (the checkpoint's buffer is not used);
  * qkv has a q and a v bias but a constant-zero k bias; q is scaled before the product;
  * LayerScale (gamma_1, gamma_2), LayerNorm eps 1e-6, exact-erf GELU.

Parameter names mirror the torch module paths (``blocks_3/attn/qkv``) so the converter table is near identity.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from zoejax.models.dpt import RESAMPLE, DPTConfig, ReassembleStage
from zoejax.models.layers import REMAT_POLICIES, Mlp, RematPolicy, dense_init
from zoejax.ops.attention import attention
from zoejax.ops.conv import conv_for
from zoejax.ops.fused_attention import fused_attention
from zoejax.ops.grad_barrier import gradient_barrier
from zoejax.ops.platform import GENERIC, OpForms
from zoejax.ops.resize import resize_bilinear

Dtype = Any


@dataclasses.dataclass(frozen=True)
class BeitConfig:
    """BEiT encoder as MiDaS v3.1 uses it (timm ``beit_*_patch16_384``).

    Attributes:
      kind: "beit", its key in the backbone registry (``zoejax/models/backbones/registry.py``); configs without
        a kind are BEiT.
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

    @property
    def num_features(self) -> int:
        """Width of the tokens the encoder hands over (every block has width D)."""
        return self.embed_dim

    def validate(self, reassemble_features: tuple[int, ...]) -> None:
        """ValueError naming the field when the blocks cannot be built or hooked (any reassemble widths work)."""
        if max(self.hooks) >= self.depth:
            raise ValueError(f"hooks {self.hooks} out of range for depth {self.depth}")
        if self.embed_dim % self.num_heads:
            raise ValueError("backbone.embed_dim must be divisible by backbone.num_heads")

    def describe(self) -> str:
        """One phrase, e.g. 'BEiT 1024x24 (16 heads)'."""
        return f"BEiT {self.embed_dim}x{self.depth} ({self.num_heads} heads)"


@functools.lru_cache(maxsize=64)
def relative_position_index(window: tuple[int, int]) -> np.ndarray:
    """Index into the relative-position table for a (Wh, Ww) patch grid plus the cls token.

    Returns:
      int32 (Wh*Ww+1, Wh*Ww+1). Spatial pairs index (dr + Wh-1)*(2Ww-1) + (dc + Ww-1); row 0 (cls query)
      uses T-3, column 0 (cls key) T-2 and [0, 0] T-1, with T = (2Wh-1)(2Ww-1)+3 table rows.
    """
    wh, ww = window
    rows, cols = np.meshgrid(np.arange(wh), np.arange(ww), indexing="ij")
    coords = np.stack([rows.ravel(), cols.ravel()])  # (2, N), row-major tokens
    rel = coords[:, :, None] - coords[:, None, :]  # (2, N, N) query - key
    spatial = (rel[0] + wh - 1) * (2 * ww - 1) + (rel[1] + ww - 1)
    num_rows = (2 * wh - 1) * (2 * ww - 1) + 3
    n = wh * ww
    index = np.zeros((n + 1, n + 1), dtype=np.int32)
    index[1:, 1:] = spatial
    index[0, :] = num_rows - 3
    index[:, 0] = num_rows - 2
    index[0, 0] = num_rows - 1
    index.flags.writeable = False
    return index


def resize_relative_position_table(
    table: jnp.ndarray, pretrain_window: tuple[int, int], window: tuple[int, int]
) -> jnp.ndarray:
    """Resize a stored (T, heads) table from the pretraining grid to ``window`` (MiDaS ``_get_rel_pos_bias``).

    The spatial rows are viewed as a (2Wh-1, 2Ww-1, heads) grid and bilinearly resized with
    align_corners=False; the three cls rows are kept. Identity when ``window == pretrain_window``.
    """
    if tuple(window) == tuple(pretrain_window):
        return table
    old_h, old_w = 2 * pretrain_window[0] - 1, 2 * pretrain_window[1] - 1
    new_h, new_w = 2 * window[0] - 1, 2 * window[1] - 1
    heads = table.shape[-1]
    grid = table[: old_h * old_w].reshape(old_h, old_w, heads)
    grid = resize_bilinear(grid, (new_h, new_w), align_corners=False, axes=(0, 1))
    return jnp.concatenate([grid.reshape(new_h * new_w, heads), table[old_h * old_w :]], axis=0)


@functools.lru_cache(maxsize=64)
def _offset_selector(size: int) -> np.ndarray:
    """(size, size, 2*size-1) float32 one-hot: [i, j, a] = 1 where a = i - j + size - 1 (query i, key j)."""
    i, j = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
    out = np.zeros((size, size, 2 * size - 1), np.float32)
    out[i, j, i - j + size - 1] = 1.0
    out.flags.writeable = False
    return out


def expand_relative_position_table(table: jnp.ndarray, window: tuple[int, int]) -> jnp.ndarray:
    """(T, heads) table already resized for ``window`` -> the (heads, N+1, N+1) bias, bias[h, q, k] =
    table[relative_position_index(window)[q, k], h], without a gather.

    The spatial part is a two-level Toeplitz matrix: bias[h, (r1, c1), (r2, c2)] = grid[r1 - r2, c1 - c2, h]. It is
    built with two contractions against constant one-hot offset selectors (one per grid axis), so the forward and
    its gradient are small matmuls instead of a 9.5M-element gather per block and the scatter-add of its
    transpose, which dominated BEiT-L's attention on TPU. HIGHEST precision keeps the values exact: each output
    is one table entry times 1.
    """
    wh, ww = window
    gh, gw = 2 * wh - 1, 2 * ww - 1
    heads = table.shape[-1]
    n = wh * ww
    grid = table[: gh * gw].reshape(gh, gw, heads)
    hi = jax.lax.Precision.HIGHEST
    cols = jnp.einsum("abh,klb->hakl", grid, _offset_selector(ww), precision=hi)  # (heads, gh, ww, ww)
    spatial = jnp.einsum("hakl,ija->hikjl", cols, _offset_selector(wh), precision=hi).reshape(heads, n, n)
    cls_query, cls_key, cls_cls = table[-3], table[-2], table[-1]  # rows T-3, T-2, T-1 (relative_position_index)
    top = jnp.concatenate([cls_cls[:, None], jnp.broadcast_to(cls_query[:, None], (heads, n))], axis=1)
    rest = jnp.concatenate([jnp.broadcast_to(cls_key[:, None, None], (heads, n, 1)), spatial], axis=2)
    return jnp.concatenate([top[:, None], rest], axis=1)


class PatchEmbed(nn.Module):
    """Non-overlapping p x p patches -> D channels (a strided conv named ``proj`` as in timm)."""

    embed_dim: int
    patch_size: int
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32
    ops: OpForms = GENERIC  # platform-dependent op forms (zoejax.ops.platform)

    @nn.compact
    def __call__(self, images: jnp.ndarray) -> jnp.ndarray:
        """(B, H, W, 3) -> (B, H/p, W/p, D)."""
        p = self.patch_size
        return nn.Conv(self.embed_dim, (p, p), strides=(p, p), padding="VALID", dtype=self.dtype,
                       param_dtype=self.param_dtype, name="proj", conv_general_dilated=conv_for(self.ops),
                       kernel_init=nn.with_logical_partitioning(nn.initializers.lecun_normal(),
                                                                (None, None, None, "embed")))(
            images.astype(self.dtype))


class Attention(nn.Module):
    """Multi-head self-attention with BEiT's q/v biases and a per-block relative-position bias."""

    dim: int
    num_heads: int
    pretrain_window: tuple[int, int]
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32
    ops: OpForms = GENERIC  # platform-dependent op forms (zoejax.ops.platform)

    @nn.compact
    def __call__(self, x: jnp.ndarray, window: tuple[int, int], batch: int) -> jnp.ndarray:
        """x: (B * (N+1), D) tokens, example-major, cls first in each example -> (B * (N+1), D)."""
        b, n = batch, x.shape[0] // batch
        head_dim = self.dim // self.num_heads
        qkv = nn.Dense(3 * self.dim, use_bias=False, dtype=self.dtype, param_dtype=self.param_dtype,
                       kernel_init=dense_init("embed", "qkv"), name="qkv")(x)
        q_bias = self.param("q_bias", nn.initializers.zeros, (self.dim,), self.param_dtype)
        v_bias = self.param("v_bias", nn.initializers.zeros, (self.dim,), self.param_dtype)
        rows = (2 * self.pretrain_window[0] - 1) * (2 * self.pretrain_window[1] - 1) + 3
        table = self.param("relative_position_bias_table", nn.initializers.truncated_normal(0.02),
                           (rows, self.num_heads), self.param_dtype)

        def resized():
            return resize_relative_position_table(table.astype(jnp.float32), self.pretrain_window, window)

        implementation = self.ops.attention
        if implementation == "fused":  # TPU: Pallas kernels reading the projection's layout, (B, 3, N, D)
            shift = jnp.stack([q_bias, jnp.zeros_like(q_bias), v_bias]).astype(self.dtype)[:, None]
            scale = jnp.asarray([head_dim**-0.5, 1.0, 1.0], self.dtype)[:, None, None]
            qkv = (qkv.reshape(b, n, 3, self.dim).transpose(0, 2, 1, 3) + shift) * scale
            out = fused_attention(qkv, expand_relative_position_table(resized(), window), self.num_heads)
            return nn.Dense(self.dim, dtype=self.dtype, param_dtype=self.param_dtype,
                            kernel_init=dense_init("heads", "embed"), name="proj")(out.reshape(b * n, self.dim))
        qkv = qkv.reshape(b, n, 3, self.num_heads, head_dim)
        q = qkv[:, :, 0] + q_bias.reshape(self.num_heads, head_dim).astype(self.dtype)
        k = qkv[:, :, 1]  # the k bias is a constant zero in BEiT
        v = qkv[:, :, 2] + v_bias.reshape(self.num_heads, head_dim).astype(self.dtype)
        q = q * jnp.asarray(head_dim**-0.5, self.dtype)  # scaled before the product, as timm does

        if implementation == "per_head":  # gathers one head's bias at a time inside its loop (CPU)
            out = attention(q, k, v, bias_table=resized().T, bias_index=relative_position_index(tuple(window)),
                            implementation=implementation)
        else:
            out = attention(q, k, v, expand_relative_position_table(resized(), window),
                            implementation=implementation)
        out = out.reshape(b * n, self.dim)
        return nn.Dense(self.dim, dtype=self.dtype, param_dtype=self.param_dtype,
                        kernel_init=dense_init("heads", "embed"), name="proj")(out)


class Block(nn.Module):
    """Pre-norm transformer block with LayerScale: x += g1*attn(ln1 x); x += g2*mlp(ln2 x)."""

    dim: int
    num_heads: int
    mlp_hidden: int
    pretrain_window: tuple[int, int]
    init_values: float
    layer_norm_eps: float = 1e-6
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32
    ops: OpForms = GENERIC  # platform-dependent op forms (zoejax.ops.platform)

    @nn.compact
    def __call__(self, x: jnp.ndarray, window: tuple[int, int]) -> jnp.ndarray:
        """x: (B, N+1, D) tokens (cls first) -> (B, N+1, D)."""
        # The block works on (B * (N+1), D): XLA:CPU's (YNN) fused multiply-reduce over the token axis of a
        # (1, N+1, D) array -- the LayerNorm, LayerScale and bias gradients -- is ~30x slower than the same sum
        # over a 2-D array (10 ms vs 0.3 ms at BEiT-L's 769 x 1024), ~1.2 s of a CPU train step.
        b, n, d = x.shape
        x = x.reshape(b * n, d)
        norm = functools.partial(nn.LayerNorm, epsilon=self.layer_norm_eps, use_fast_variance=False,
                                 dtype=self.dtype, param_dtype=self.param_dtype)
        gamma_1 = self.param("gamma_1", nn.initializers.constant(self.init_values), (self.dim,),
                             self.param_dtype)
        gamma_2 = self.param("gamma_2", nn.initializers.constant(self.init_values), (self.dim,),
                             self.param_dtype)
        h = Attention(self.dim, self.num_heads, self.pretrain_window, self.dtype, self.param_dtype, self.ops,
                      name="attn")(norm(name="norm1")(x), window, b)
        x = gradient_barrier(x + gamma_1.astype(self.dtype) * h, self.ops.barrier)
        h = Mlp(self.mlp_hidden, self.dtype, self.param_dtype, name="mlp")(norm(name="norm2")(x))
        return (x + gamma_2.astype(self.dtype) * h).reshape(b, n, d)


class BeitEncoder(nn.Module):
    """Patch embedding + cls token + ``depth`` blocks; returns the hooked blocks' tokens.

    Attributes:
      config: the backbone's ``BeitConfig``.
      remat: per-block rematerialisation policy.
      ops: the platform-dependent op forms (``zoejax.ops.platform``), passed to every block.
    """

    config: BeitConfig
    remat: RematPolicy = RematPolicy.NONE
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32
    ops: OpForms = GENERIC

    @nn.compact
    def __call__(self, images: jnp.ndarray) -> list[jnp.ndarray]:
        """images: (B, H, W, 3) normalised to [-1, 1], H and W multiples of the patch size.

        Returns:
          one (B, 1 + H/p * W/p, D) token array (cls first) per hooked block, in hook order.
        """
        c = self.config
        b, h, w, _ = images.shape
        p, d = c.patch_size, c.embed_dim
        window = (h // p, w // p)
        x = PatchEmbed(d, p, self.dtype, self.param_dtype, self.ops, name="patch_embed")(images)
        x = x.reshape(b, window[0] * window[1], d)  # row-major tokens
        cls = self.param("cls_token", nn.initializers.truncated_normal(0.02), (1, 1, d), self.param_dtype)
        x = jnp.concatenate([jnp.broadcast_to(cls.astype(self.dtype), (b, 1, d)), x], axis=1)

        block_cls = Block
        if self.remat is not RematPolicy.NONE:
            block_cls = nn.remat(Block, policy=REMAT_POLICIES[self.remat], static_argnums=(2,))
        taps = []
        for i in range(c.depth):
            # keeps the residual-stream gradient from fusing across blocks (see there)
            x = gradient_barrier(x, self.ops.barrier)
            x = block_cls(d, c.num_heads, int(d * c.mlp_ratio), tuple(c.pretrain_window), c.init_values,
                          c.layer_norm_eps, self.dtype, self.param_dtype, self.ops, name=f"blocks_{i}")(x, window)
            if i in c.hooks:
                taps.append(x)
        return taps


def reassemble(config: BeitConfig, reassemble_features: tuple[int, ...], taps: list[jnp.ndarray],
               image_hw: tuple[int, int], dtype: Dtype, param_dtype: Dtype,
               ops: OpForms = GENERIC) -> list[jnp.ndarray]:
    """The features BEiT hands the decoder: per hooked block, readout projection, tokens to the H/16 grid, 1x1
    conv to ``reassemble_features[j]`` channels and a resample to H/4, H/8, H/16, H/32 (``act_postprocess{j}``,
    j = 1..4, created in the calling module)."""
    grid = (image_hw[0] // config.patch_size, image_hw[1] // config.patch_size)
    return [ReassembleStage(f, r, dtype, param_dtype, ops, name=f"act_postprocess{j}")(t, grid)
            for j, (f, r, t) in enumerate(zip(reassemble_features, RESAMPLE, taps, strict=True), start=1)]


def encoder_flops(config: BeitConfig, reassemble_features: tuple[int, ...], batch: int, height: int,
                  width: int) -> dict[str, int]:
    """Matmul/conv FLOPs (2 per multiply-add) of the encoder and the reassemble stages for one forward.

    Keys: patch_embed; attention (qkv, q k^T, weights x v, output projection of every block); mlp; position_bias
    (the GPU/TPU form's one-hot expansion of the relative-position table, once per block); reassemble (readout
    projection, 1x1 conv, depth-to-space or strided conv).
    """
    b, p, d = batch, config.patch_size, config.embed_dim
    gh, gw = height // p, width // p
    n = gh * gw  # patch tokens
    t = n + 1  # with the cls token
    mlp = int(d * config.mlp_ratio)

    def mm(rows: int, k: int, cols: int) -> int:  # (rows x k) @ (k x cols)
        return 2 * rows * k * cols

    out = {"patch_embed": b * mm(n, p * p * 3, d)}
    per_block_attn = b * (mm(t, d, 3 * d) + 2 * mm(t, d, t) + mm(t, d, d))  # qkv, qk^T and av over heads, proj
    out["attention"] = config.depth * per_block_attn
    out["mlp"] = config.depth * b * 2 * mm(t, d, mlp)
    # The GPU/TPU program builds each block's (heads, N+1, N+1) bias with two one-hot contractions
    # (``expand_relative_position_table``): real matmul work of that program, independent of the batch.
    h = config.num_heads
    columns = (2 * gh - 1) * gw * gw * (2 * gw - 1)  # "abh,klb->hakl": the column offsets
    rows = gh * gh * gw * gw * (2 * gh - 1)  # "hakl,ija->hikjl": the row offsets
    out["position_bias"] = config.depth * 2 * h * (columns + rows)

    # Reassemble: stage resolutions H/4, H/8, H/16, H/32 from the H/16 token grid.
    total = 0
    for f, factor in zip(reassemble_features, (4, 2, 1, 0.5), strict=True):
        # readout: the cls token's half of the (2D -> D) projection once per image, as ReadoutProject computes it
        total += b * (mm(n, d, d) + mm(1, d, d) + mm(n, d, f))
        if factor > 1:
            total += b * mm(n, f, f * factor * factor)  # kernel == stride transposed conv
        elif factor < 1:
            total += b * mm((gh // 2) * (gw // 2), 9 * f, f)  # 3x3 stride-2 conv
    out["reassemble"] = total
    return out


# timm beit_*_patch16_384 as MiDaS v3.1 uses them, the demo's small model and a test fixture.
PRESETS: dict[str, tuple[BeitConfig, DPTConfig]] = {
    # timm beit_large_patch16_384 as MiDaS DPT_BEiT_L_384 uses it.
    "beit_l384": (BeitConfig(embed_dim=1024, depth=24, num_heads=16, init_values=1e-5, hooks=(5, 11, 17, 23)),
                  DPTConfig(reassemble_features=(256, 512, 1024, 1024))),
    # timm beit_base_patch16_384 (MiDaS DPT_BEiT_B_384).
    "beit_b384": (BeitConfig(embed_dim=768, depth=12, num_heads=12, init_values=0.1, hooks=(2, 5, 8, 11)),
                  DPTConfig(reassemble_features=(96, 192, 384, 768))),
    # A small BEiT (ViT-S width) that trains in minutes on a CPU: the demo's model.
    "small": (BeitConfig(embed_dim=192, depth=6, num_heads=3, pretrain_window=(8, 8), init_values=0.1,
                         hooks=(1, 2, 4, 5)),
              DPTConfig(reassemble_features=(48, 96, 192, 192), features=64, num_relative_features=32)),
    # Test fixture only: 4 blocks of width 32 on a 4x4 pretraining grid (64 px).
    "tiny": (BeitConfig(embed_dim=32, depth=4, num_heads=2, pretrain_window=(4, 4), init_values=0.1,
                        hooks=(0, 1, 2, 3)),
             DPTConfig(reassemble_features=(8, 16, 32, 32), features=16, num_relative_features=8)),
}
FIXTURES = ("tiny",)
