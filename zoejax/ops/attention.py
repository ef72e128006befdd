"""Softmax attention with an additive per-head bias, in the layout fastest for the backend.

On CPU, XLA's batched (batch x heads) attention materialises the full (B, heads, N, N) logits and runs the bias
add and the softmax over ~40 MB per BEiT-L block at 384x512, out of cache; looping over heads (and examples)
with ``lax.map`` keeps one (N, N) slab (2.4 MB) hot and is 2-3x faster there. On GPU/TPU the batched form is
right, and ``jax.nn.dot_product_attention`` may pick a fused kernel (cuDNN).
Both compute softmax(q k^T + bias) v with float32 logits and softmax; q must already be scaled.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from zoejax.ops.platform import ATTENTION_FORMS

IMPLEMENTATIONS = ATTENTION_FORMS  # "per_head" (CPU), "batched" (GPU/TPU): zoejax.ops.platform.OpForms.attention
HEADS_PER_STEP = 2  # heads per lax.map step of the CPU implementation
KEY_MULTIPLE = 16  # the CPU implementation pads the key axis to a multiple of this (one AVX-512 vector of f32)
_MASKED = -1e30  # bias of a padding key: exp(_MASKED - max) is exactly 0 in float32, and no inf is ever formed


def attention(q: jnp.ndarray, k: jnp.ndarray, v: jnp.ndarray, bias: jnp.ndarray | None = None, *,
              bias_table: jnp.ndarray | None = None, bias_index: np.ndarray | None = None,
              implementation: str) -> jnp.ndarray:
    """softmax(q k^T + bias) v.

    Args:
      q, k, v: (B, N, heads, head_dim) in the compute dtype; q already multiplied by the scale.
      bias: (heads, N, N) float32, shared by every example, or None (no bias, with no table either); or, instead,
      bias_table, bias_index: bias[h] = bias_table[h][bias_index] with bias_table (heads, T) float32 and
        bias_index a static (N, N) int array (BEiT's relative-position bias). The per-head implementation then
        gathers one head's (N, N) bias inside its loop, never materialising (heads, N, N) in memory order
        (a transpose of ~40 MB per BEiT-L block that cost as much as the attention itself on CPU).
      implementation: "per_head" (``lax.map`` over heads, then examples; CPU), "batched" (``jax.nn.
        dot_product_attention``; GPU and, as "fused", TPU: BEiT's biased attention calls the Pallas kernels of
        ``zoejax.ops.fused_attention`` itself, in its projection's layout): the model's ``OpForms.attention``.
    Returns:
      (B, N, heads, head_dim) in q's dtype.
    """
    if (bias is not None and bias_table is not None) or (bias_table is None) != (bias_index is None):
        raise ValueError("pass either bias, or bias_table with bias_index, or neither")
    if implementation not in IMPLEMENTATIONS:
        raise ValueError(f"unknown attention implementation {implementation!r}; expected one of {IMPLEMENTATIONS}")
    b, n, heads, d = q.shape
    index = None if bias_index is None else jnp.asarray(np.asarray(bias_index, np.int32).reshape(-1))
    if implementation in ("batched", "fused"):  # "fused": BEiT calls zoejax.ops.fused_attention itself
        if bias_table is not None:
            bias = jnp.take(bias_table, index, axis=1).reshape(heads, n, n)
        # Logits and softmax are float32 in its XLA implementation; the bias is added in the compute dtype.
        return jax.nn.dot_product_attention(q, k, v, bias=None if bias is None else bias[None].astype(q.dtype),
                                            scale=1.0)
    unbiased = bias is None and bias_table is None
    # Outer loop over groups of heads (each head's bias is made once), inner loop over examples. Two heads per
    # step halve the loop's per-iteration cost; the softmax is normalised after the (N, N) x (N, d) product, which
    # divides N*d instead of N*N values (~15% of the attention on CPU).
    # Keys are padded to a multiple of 16 (zero k and v, bias _MASKED, so their softmax weight is exactly 0):
    # XLA:CPU's fused q k^T + bias + row max + exp is ~20% faster over 784 keys than over BEiT-L's 769.
    m = -(-n // KEY_MULTIPLE) * KEY_MULTIPLE
    if m != n:
        k, v = (jnp.pad(t, ((0, 0), (0, m - n), (0, 0), (0, 0))) for t in (k, v))
        if unbiased:
            pass
        elif bias is not None:
            bias = jnp.pad(bias, ((0, 0), (0, 0), (0, m - n)), constant_values=_MASKED)
        else:
            table_rows = bias_table.shape[1]
            bias_table = jnp.pad(bias_table, ((0, 0), (0, 1)), constant_values=_MASKED)
            padded_index = np.full((n, m), table_rows, np.int32)
            padded_index[:, :n] = np.asarray(bias_index, np.int32)
            index = jnp.asarray(padded_index.reshape(-1))
    group = HEADS_PER_STEP if heads % HEADS_PER_STEP == 0 else 1
    qh = q.transpose(2, 0, 1, 3).reshape(heads // group, group, b, n, d)
    kh, vh = (t.transpose(2, 0, 1, 3).reshape(heads // group, group, b, m, d) for t in (k, v))

    def one_example(qi, ki, vi, head_bias):
        logits = jnp.dot(qi, ki.T, preferred_element_type=jnp.float32) + head_bias
        # The shift only keeps exp in range and cancels in the ratio, so it carries no gradient (as in
        # jax.nn.softmax); differentiating the max would build and keep an (N, N) argmax mask per head.
        unnormalised = jnp.exp(logits - jax.lax.stop_gradient(jnp.max(logits, axis=-1, keepdims=True)))
        out = jnp.dot(unnormalised.astype(vi.dtype), vi, preferred_element_type=jnp.float32)
        return (out / jnp.sum(unnormalised, axis=-1, keepdims=True)).astype(vi.dtype)

    # Without a bias only the padding keys need one: a (1, M) row, broadcast over the queries.
    key_bias = jnp.where(jnp.arange(m) < n, 0.0, _MASKED).astype(jnp.float32)[None]

    def one_head(h, qs, ks, vs):
        if unbiased:
            head_bias = key_bias
        else:
            head_bias = bias[h] if bias is not None else jnp.take(bias_table[h], index).reshape(n, m)
        if b == 1:
            return one_example(qs[0], ks[0], vs[0], head_bias)[None]
        return jax.lax.map(lambda a: one_example(*a, head_bias), (qs, ks, vs))

    def one_group(args):
        g, qs, ks, vs = args
        return jnp.stack([one_head(g * group + i, qs[i], ks[i], vs[i]) for i in range(group)])

    out = jax.lax.map(one_group, (jnp.arange(heads // group), qh, kh, vh))  # (heads/group, group, B, N, d)
    out = out.reshape(heads, b, n, d)
    return out.transpose(1, 2, 0, 3)
