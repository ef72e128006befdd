"""Swin / SwinV2 building blocks: window partition with cyclic shift and padding, window attention (v1 dot product
with a learned bias table; v2 scaled cosine with a continuous position-bias MLP), blocks and patch merging.

Layout is NHWC throughout. Parameter names mirror the timm 0.6.12 module paths that the MiDaS v3.1 releases were
saved from (``blocks_1/attn/qkv``, ``attn/cpb_mlp_0``, ``downsample/reduction``). Window and shift sizes are static
(per stage, see ``SwinConfig.stage_windows``); everything derived from them (relative-position index, v2 coordinate
table, shifted-window mask) is computed once in numpy per shape and cached.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from zoejax.models.layers import Mlp, dense_init
from zoejax.ops.platform import GENERIC, OpForms

Dtype = Any
Pair = tuple[int, int]
# timm's shifted-window mask value (added to the logits of key/query pairs from different image regions).
MASK_VALUE = -100.0


@functools.lru_cache(maxsize=64)
def window_relative_index(window: Pair) -> np.ndarray:
    """(N, N) int32 index into a ((2Wh-1)(2Ww-1), heads) table, N = Wh*Ww, row-major tokens.

    Entry [q, k] = (dr + Wh-1) * (2Ww-1) + (dc + Ww-1) with (dr, dc) the query-minus-key offset.
    """
    wh, ww = window
    rows, cols = np.meshgrid(np.arange(wh), np.arange(ww), indexing="ij")
    coords = np.stack([rows.ravel(), cols.ravel()])
    rel = coords[:, :, None] - coords[:, None, :]
    index = ((rel[0] + wh - 1) * (2 * ww - 1) + (rel[1] + ww - 1)).astype(np.int32)
    index.flags.writeable = False
    return index


@functools.lru_cache(maxsize=64)
def log_spaced_coords(window: Pair, pretrained_window: Pair) -> np.ndarray:
    """SwinV2's (2Wh-1, 2Ww-1, 2) float32 input of the position-bias MLP.

    Offsets in [-(W-1), W-1] are divided by (pretrained window - 1) (or window - 1 when the pretrained window is
    0; at least 1), scaled by 8 and mapped through sign(x) * log2(1 + |x|) / log2(8).
    """
    axes = []
    for w, p in zip(window, pretrained_window, strict=True):
        denom = max((p if p > 0 else w) - 1, 1)
        axes.append(np.arange(-(w - 1), w, dtype=np.float32) / np.float32(denom))
    table = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1) * np.float32(8)
    table = np.sign(table) * np.log2(np.abs(table) + np.float32(1)) / np.float32(math.log2(8))
    table = table.astype(np.float32)
    table.flags.writeable = False
    return table


@functools.lru_cache(maxsize=64)
def shifted_window_mask(padded_grid: Pair, window: Pair, shift: Pair) -> np.ndarray:
    """(num_windows, N, N) float32 additive mask for shifted windows on a (window-multiple) padded grid.

    The grid is cut into 3 x 3 regions by the slices [0, -W), [-W, -S), [-S, end) per axis (timm's regions,
    taken on the padded grid); pairs of tokens from different regions get ``MASK_VALUE``, others 0.
    """
    h, w = padded_grid
    label = np.zeros((h, w), np.float32)
    count = 0
    # Python slice semantics on purpose: with a zero shift, [-W, -0) is empty and [-0, end) the whole axis.
    for rs in (slice(0, -window[0]), slice(-window[0], -shift[0]), slice(-shift[0], None)):
        for cs in (slice(0, -window[1]), slice(-window[1], -shift[1]), slice(-shift[1], None)):
            label[rs, cs] = count
            count += 1
    windows = partition_windows(label[None, :, :, None], window)[0, :, :, 0]  # (nW, N)
    mask = np.where(windows[:, None, :] != windows[:, :, None], MASK_VALUE, 0.0).astype(np.float32)
    mask.flags.writeable = False
    return mask


def _l2_normalize(x: jnp.ndarray, eps: float = 1e-12) -> jnp.ndarray:
    """torch ``F.normalize``: x / max(||x||, eps), written as x * rsqrt(max(||x||^2, eps^2)) (the same value) so
    that the gradient stays finite for all-zero vectors (the zero padding of windows)."""
    return x * jax.lax.rsqrt(jnp.maximum(jnp.sum(x * x, axis=-1, keepdims=True), eps * eps))


def partition_windows(x, window: Pair):
    """(B, H, W, C) with H, W multiples of the window -> (B, nW, Wh*Ww, C), windows row-major (numpy or jax)."""
    b, h, w, c = x.shape
    wh, ww = window
    x = x.reshape(b, h // wh, wh, w // ww, ww, c).transpose(0, 1, 3, 2, 4, 5)
    return x.reshape(b, (h // wh) * (w // ww), wh * ww, c)


def merge_windows(x: jnp.ndarray, window: Pair, grid: Pair) -> jnp.ndarray:
    """Inverse of ``partition_windows``: (B, nW, Wh*Ww, C) -> (B, H, W, C)."""
    b, _, _, c = x.shape
    (wh, ww), (h, w) = window, grid
    x = x.reshape(b, h // wh, w // ww, wh, ww, c).transpose(0, 1, 3, 2, 4, 5)
    return x.reshape(b, h, w, c)


class WindowAttention(nn.Module):
    """Multi-head attention inside windows; ``version`` 1 (Swin) or 2 (SwinV2).

    v1: qkv with bias, q scaled by head_dim**-0.5, plus a learned ``relative_position_bias_table``.
    v2: qkv without bias plus ``q_bias``/``v_bias`` (k bias zero), cosine similarity of L2-normalised q and k
    times exp(min(``logit_scale``, log 100)), plus 16 * sigmoid(``cpb_mlp``(log-spaced offsets)).
    """

    dim: int
    num_heads: int
    window: Pair
    version: int
    pretrained_window: Pair = (0, 0)
    cpb_hidden: int = 512
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32
    ops: OpForms = GENERIC  # platform-dependent op forms (zoejax.ops.platform)

    @nn.compact
    def __call__(self, x: jnp.ndarray, mask: np.ndarray | None) -> jnp.ndarray:
        """x: (B, nW, N, C) window tokens; mask: (nW, N, N) or None -> (B, nW, N, C)."""
        b, nw, n, _ = x.shape
        heads, head_dim = self.num_heads, self.dim // self.num_heads
        acc = jnp.promote_types(self.dtype, jnp.float32)  # logits and softmax: float32 at least
        dense = functools.partial(nn.Dense, dtype=self.dtype, param_dtype=self.param_dtype)
        index = jnp.asarray(window_relative_index(tuple(self.window)).reshape(-1))
        qkv = dense(3 * self.dim, use_bias=self.version == 1, kernel_init=dense_init("embed", "qkv"), name="qkv")(x)
        qkv = qkv.reshape(b, nw, n, 3, heads, head_dim)
        q, k, v = qkv[..., 0, :, :], qkv[..., 1, :, :], qkv[..., 2, :, :]
        if self.version == 1:
            rows = (2 * self.window[0] - 1) * (2 * self.window[1] - 1)
            table = self.param("relative_position_bias_table", nn.initializers.truncated_normal(0.02),
                               (rows, heads), self.param_dtype)
            q = q * jnp.asarray(head_dim**-0.5, self.dtype)
            bias = jnp.take(table.astype(acc), index, axis=0)
        else:
            q_bias = self.param("q_bias", nn.initializers.zeros, (self.dim,), self.param_dtype)
            v_bias = self.param("v_bias", nn.initializers.zeros, (self.dim,), self.param_dtype)
            logit_scale = self.param("logit_scale", nn.initializers.constant(math.log(10.0)), (heads, 1, 1),
                                     self.param_dtype)
            q = (q + q_bias.reshape(heads, head_dim).astype(self.dtype)).astype(acc)
            v = v + v_bias.reshape(heads, head_dim).astype(self.dtype)
            k = k.astype(acc)
            q, k = _l2_normalize(q), _l2_normalize(k)
            scale = jnp.exp(jnp.minimum(logit_scale.astype(acc), math.log(1.0 / 0.01)))
            coords = jnp.asarray(log_spaced_coords(tuple(self.window), tuple(self.pretrained_window)), acc)
            hidden = nn.relu(nn.Dense(self.cpb_hidden, dtype=acc, param_dtype=self.param_dtype,
                                      name="cpb_mlp_0")(coords))
            table = nn.Dense(heads, use_bias=False, dtype=acc, param_dtype=self.param_dtype, name="cpb_mlp_2")(hidden)
            bias = 16.0 * jax.nn.sigmoid(jnp.take(table.reshape(-1, heads), index, axis=0))
        bias = bias.reshape(n, n, heads).transpose(2, 0, 1)
        mask = None if mask is None else jnp.asarray(mask, acc)
        scale = scale.reshape(heads, 1, 1) if self.version == 2 else None
        attend = _attention_by_slabs if self.ops.attention == "per_head" and n >= _LOOP_MIN_TOKENS else _attention
        out = attend(q, k, v.astype(self.dtype), bias, mask, scale, acc).reshape(b, nw, n, self.dim)
        return dense(self.dim, kernel_init=dense_init("heads", "embed"), name="proj")(out)


def _attention(q, k, v, bias, mask, scale, acc):
    """softmax(q k^T (* scale) + bias (+ mask)) v over all windows at once.

    q, k: (B, nW, N, heads, d); v: (B, nW, N, heads, d) in the compute dtype; bias (heads, N, N) and scale
    (heads, 1, 1) or None in ``acc``; mask (nW, N, N) or None. Returns (B, nW, N, heads, d).
    """
    logits = jnp.einsum("bwqhd,bwkhd->bwhqk", q, k).astype(acc)
    if scale is not None:
        logits = logits * scale
    logits = logits + bias
    if mask is not None:
        logits = logits + mask[None, :, None]
    weights = jax.nn.softmax(logits, axis=-1).astype(v.dtype)
    return jnp.einsum("bwhqk,bwkhd->bwqhd", weights, v)


# On CPU, windows of at least _LOOP_MIN_TOKENS tokens (SwinV2-L/B's 24x24) are attended in a loop whose steps
# hold at most _SLAB_BYTES of float32 logits. Measured on CPU-2 (AMD EPYC, 2026-12-02, same-process A/B of the
# ZoeD_N forward at 384x512): SwinV2-L 2.97 -> 2.55 s; with 12x12 (Swin-L) or 16x16 (SwinV2-T) windows the loop
# was level or slower, so those stay batched.
_LOOP_MIN_TOKENS = 512
_SLAB_BYTES = 8 << 20


def _attention_by_slabs(q, k, v, bias, mask, scale, acc):
    """``_attention`` as a loop over head groups, then windows, each step's logits small enough to stay in cache.

    Batched, the logits of a SwinV2-L block at 384x512 are 24 windows x 6 heads x 576^2 values (190 MB), which
    XLA:CPU writes and reads back several times; per step the same operations run on one window and a few heads.
    Every value is computed as in ``_attention`` (same contractions, same order of additions; the forward of a
    full-size model came out bit-identical).
    """
    b, nw, n, heads, d = q.shape
    per = max([p for p in range(1, heads + 1) if heads % p == 0 and b * p * n * n * 4 <= _SLAB_BYTES] or [1])
    groups = heads // per

    def by_group(t):  # (B, nW, N, heads, d) -> (groups, nW, B, N, per, d)
        return t.reshape(b, nw, n, groups, per, d).transpose(3, 1, 0, 2, 4, 5)

    def one_group(args):
        q, k, v, bias, scale = args

        def one_window(args):
            q, k, v, mask = args
            out = _attention(q[:, None], k[:, None], v[:, None], bias, None if mask is None else mask[None], scale,
                             acc)
            return out[:, 0]

        if mask is None:
            return jax.lax.map(lambda a: one_window((*a, None)), (q, k, v))
        return jax.lax.map(one_window, (q, k, v, mask))

    groups_of = (by_group(q), by_group(k), by_group(v), bias.reshape(groups, per, n, n),
                 None if scale is None else scale.reshape(groups, per, 1, 1))
    out = jax.lax.map(one_group, groups_of)  # (groups, nW, B, N, per, d)
    return out.transpose(2, 1, 3, 0, 4, 5).reshape(b, nw, n, heads, d)


class SwinBlock(nn.Module):
    """One (shifted-)window transformer block on a (B, H, W, C) map.

    v1 (pre-norm): x += attn(norm1 x); x += mlp(norm2 x).  v2 (post-norm): x += norm1(attn x); x += norm2(mlp x).
    The window attention rolls the map by -shift, pads it at the bottom/right to window multiples (zeros), runs
    attention per window (with the shifted-window mask when shifting), crops and rolls back.
    """

    dim: int
    num_heads: int
    window: Pair
    shift: Pair
    version: int
    mlp_ratio: float = 4.0
    pretrained_window: Pair = (0, 0)
    cpb_hidden: int = 512
    layer_norm_eps: float = 1e-5
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32
    ops: OpForms = GENERIC  # platform-dependent op forms (zoejax.ops.platform)

    def _window_attention(self, x: jnp.ndarray) -> jnp.ndarray:
        _, h, w, _ = x.shape
        window, shift = tuple(self.window), tuple(self.shift)
        if any(shift):
            x = jnp.roll(x, (-shift[0], -shift[1]), axis=(1, 2))
        pad = (-h % window[0], -w % window[1])
        if any(pad):
            x = jnp.pad(x, ((0, 0), (0, pad[0]), (0, pad[1]), (0, 0)))
        grid = (h + pad[0], w + pad[1])
        mask = shifted_window_mask(grid, window, shift) if any(shift) else None
        out = WindowAttention(self.dim, self.num_heads, window, self.version, tuple(self.pretrained_window),
                              self.cpb_hidden, self.dtype, self.param_dtype, self.ops, name="attn")(
            partition_windows(x, window), mask)
        out = merge_windows(out, window, grid)[:, :h, :w]
        if any(shift):
            out = jnp.roll(out, shift, axis=(1, 2))
        return out

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        """(B, H, W, C) -> (B, H, W, C)."""
        norm = functools.partial(nn.LayerNorm, epsilon=self.layer_norm_eps, use_fast_variance=False,
                                 dtype=self.dtype, param_dtype=self.param_dtype)
        mlp = Mlp(int(self.dim * self.mlp_ratio), self.dtype, self.param_dtype, name="mlp")
        if self.version == 1:
            x = x + self._window_attention(norm(name="norm1")(x))
            return x + mlp(norm(name="norm2")(x))
        x = x + norm(name="norm1")(self._window_attention(x))
        return x + norm(name="norm2")(mlp(x))


class PatchMerging(nn.Module):
    """2x2 neighbours -> 4C channels (order (0,0), (1,0), (0,1), (1,1)) -> 2C: v1 norm(4C) then ``reduction``;
    v2 ``reduction`` then norm(2C). Odd sizes are zero-padded at the bottom/right first."""

    dim: int
    version: int
    layer_norm_eps: float = 1e-5
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        """(B, H, W, C) -> (B, ceil(H/2), ceil(W/2), 2C)."""
        b, h, w, c = x.shape
        if h % 2 or w % 2:
            x = jnp.pad(x, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)))
            h, w = h + h % 2, w + w % 2
        x = x.reshape(b, h // 2, 2, w // 2, 2, c).transpose(0, 1, 3, 4, 2, 5).reshape(b, h // 2, w // 2, 4 * c)
        norm = functools.partial(nn.LayerNorm, epsilon=self.layer_norm_eps, use_fast_variance=False,
                                 dtype=self.dtype, param_dtype=self.param_dtype, name="norm")
        reduction = nn.Dense(2 * self.dim, use_bias=False, dtype=self.dtype, param_dtype=self.param_dtype,
                             kernel_init=dense_init("mlp", "embed"), name="reduction")
        if self.version == 1:
            return reduction(norm()(x))
        return norm()(reduction(x))
