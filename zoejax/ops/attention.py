"""Softmax attention with an additive per-head bias, in the layout fastest for the backend.

On CPU, XLA's batched (batch x heads) attention materialises the full (B, heads, N, N) logits and runs the bias
add and the softmax over ~40 MB per BEiT-L block at 384x512, out of cache; looping over (example, head) pairs
with ``lax.map`` keeps one (N, N) slab (2.4 MB) hot and is 2-3x faster there. On GPU/TPU the batched form is
right, and ``jax.nn.dot_product_attention`` may pick a fused kernel (cuDNN).
Both compute softmax(q k^T + bias) v with float32 logits and softmax; q must already be scaled.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import jax
import jax.numpy as jnp

IMPLEMENTATIONS = ("per_head", "batched")
_default: list[str | None] = [None]


@contextlib.contextmanager
def attention_implementation(name: str | None) -> Iterator[None]:
    """Within the block, models traced with ``implementation=None`` use ``name`` instead of the backend's
    choice (e.g. "batched" for XLA's cost analysis, which counts a ``lax.map`` body once, not per step)."""
    if name is not None and name not in IMPLEMENTATIONS:
        raise ValueError(f"unknown attention implementation {name!r}; expected one of {IMPLEMENTATIONS}")
    previous, _default[0] = _default[0], name
    try:
        yield
    finally:
        _default[0] = previous


def attention(q: jnp.ndarray, k: jnp.ndarray, v: jnp.ndarray, bias: jnp.ndarray, *,
              implementation: str | None = None) -> jnp.ndarray:
    """softmax(q k^T + bias) v.

    Args:
      q, k, v: (B, N, heads, head_dim) in the compute dtype; q already multiplied by the scale.
      bias: (heads, N, N) float32, shared by every example.
      implementation: "per_head" (a ``lax.map`` over example x head, CPU), "batched" (``jax.nn.
        dot_product_attention``) or None: the ``attention_implementation`` context's choice, else "per_head"
        when the default backend is the CPU and "batched" otherwise.
    Returns:
      (B, N, heads, head_dim) in q's dtype.
    """
    if implementation is None:
        implementation = _default[0] or ("per_head" if jax.default_backend() == "cpu" else "batched")
    if implementation == "batched":
        # Logits and softmax are float32 in its XLA implementation; the bias is added in the compute dtype.
        return jax.nn.dot_product_attention(q, k, v, bias=bias[None].astype(q.dtype), scale=1.0)
    if implementation != "per_head":
        raise ValueError(f"unknown attention implementation {implementation!r}")
    b, n, heads, d = q.shape
    # (heads * B, N, d): head-major so that item i uses bias[i // B].
    qh, kh, vh = (t.transpose(2, 0, 1, 3).reshape(heads * b, n, d) for t in (q, k, v))

    def one(args):
        i, qi, ki, vi = args
        logits = jnp.dot(qi, ki.T, preferred_element_type=jnp.float32) + bias[i // b]
        weights = jax.nn.softmax(logits, axis=-1).astype(vi.dtype)
        return jnp.dot(weights, vi, preferred_element_type=jnp.float32).astype(vi.dtype)

    out = jax.lax.map(one, (jnp.arange(heads * b), qh, kh, vh))
    return out.reshape(heads, b, n, d).transpose(1, 2, 0, 3)
