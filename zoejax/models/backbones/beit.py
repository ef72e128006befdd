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

import functools
from typing import Any

import flax.linen as nn
import jax.numpy as jnp
import numpy as np

from zoejax.models.layers import REMAT_POLICIES, Mlp, RematPolicy, dense_init
from zoejax.ops.attention import attention
from zoejax.ops.conv import conv_general_dilated
from zoejax.ops.grad_barrier import gradient_barrier
from zoejax.ops.resize import resize_bilinear

Dtype = Any


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


class PatchEmbed(nn.Module):
    """Non-overlapping p x p patches -> D channels (a strided conv named ``proj`` as in timm)."""

    embed_dim: int
    patch_size: int
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, images: jnp.ndarray) -> jnp.ndarray:
        """(B, H, W, 3) -> (B, H/p, W/p, D)."""
        p = self.patch_size
        return nn.Conv(self.embed_dim, (p, p), strides=(p, p), padding="VALID", dtype=self.dtype,
                       param_dtype=self.param_dtype, name="proj", conv_general_dilated=conv_general_dilated,
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
    attention_impl: str | None = None  # see zoejax.ops.attention (None: by backend)

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

        qkv = qkv.reshape(b, n, 3, self.num_heads, head_dim)
        q = qkv[:, :, 0] + q_bias.reshape(self.num_heads, head_dim).astype(self.dtype)
        k = qkv[:, :, 1]  # the k bias is a constant zero in BEiT
        v = qkv[:, :, 2] + v_bias.reshape(self.num_heads, head_dim).astype(self.dtype)
        q = q * jnp.asarray(head_dim**-0.5, self.dtype)  # scaled before the product, as timm does

        resized = resize_relative_position_table(table.astype(jnp.float32), self.pretrain_window, window)
        out = attention(q, k, v, bias_table=resized.T, bias_index=relative_position_index(tuple(window)),
                        implementation=self.attention_impl)  # bias = resized[index], (heads, N+1, N+1)
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
        h = Attention(self.dim, self.num_heads, self.pretrain_window, self.dtype, self.param_dtype,
                      name="attn")(norm(name="norm1")(x), window, b)
        x = gradient_barrier(x + gamma_1.astype(self.dtype) * h)
        h = Mlp(self.mlp_hidden, self.dtype, self.param_dtype, name="mlp")(norm(name="norm2")(x))
        return (x + gamma_2.astype(self.dtype) * h).reshape(b, n, d)


class BeitEncoder(nn.Module):
    """Patch embedding + cls token + ``depth`` blocks; returns the hooked blocks' tokens.

    Attributes mirror ``BeitConfig`` (see there).
    """

    embed_dim: int
    depth: int
    num_heads: int
    mlp_ratio: float
    patch_size: int
    pretrain_window: tuple[int, int]
    init_values: float
    hooks: tuple[int, ...]
    layer_norm_eps: float = 1e-6
    remat: RematPolicy = RematPolicy.NONE
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, images: jnp.ndarray) -> list[jnp.ndarray]:
        """images: (B, H, W, 3) normalised to [-1, 1], H and W multiples of the patch size.

        Returns:
          one (B, 1 + H/p * W/p, D) token array (cls first) per hooked block, in hook order.
        """
        b, h, w, _ = images.shape
        p = self.patch_size
        window = (h // p, w // p)
        x = PatchEmbed(self.embed_dim, p, self.dtype, self.param_dtype, name="patch_embed")(images)
        x = x.reshape(b, window[0] * window[1], self.embed_dim)  # row-major tokens
        cls = self.param("cls_token", nn.initializers.truncated_normal(0.02), (1, 1, self.embed_dim),
                         self.param_dtype)
        x = jnp.concatenate([jnp.broadcast_to(cls.astype(self.dtype), (b, 1, self.embed_dim)), x], axis=1)

        block_cls = Block
        if self.remat is not RematPolicy.NONE:
            block_cls = nn.remat(Block, policy=REMAT_POLICIES[self.remat], static_argnums=(2,))
        taps = []
        for i in range(self.depth):
            x = gradient_barrier(x)  # keeps the residual-stream gradient from fusing across blocks (see there)
            x = block_cls(self.embed_dim, self.num_heads, int(self.embed_dim * self.mlp_ratio),
                          self.pretrain_window, self.init_values, self.layer_norm_eps, self.dtype,
                          self.param_dtype, name=f"blocks_{i}")(x, window)
            if i in self.hooks:
                taps.append(x)
        return taps
