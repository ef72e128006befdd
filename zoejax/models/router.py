"""ZoeD_NK's domain router: a patch transformer over the bottleneck plus an MLP classifier (spec section 6).

The transformer is PyTorch's ``nn.TransformerEncoderLayer`` with its defaults: post-norm, ReLU FFN,
LayerNorm eps 1e-5, dropout 0.1 (training only), attention scale 1/sqrt(head_dim). A zero token is
prepended and a concatenated (not interleaved) sin|cos encoding added; its output embeds the image.
"""

from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp

F32 = jnp.float32
dense = functools.partial(nn.Dense, dtype=F32, param_dtype=F32)


def sinusoidal_encoding(length: int, dim: int) -> jnp.ndarray:
    """(length, dim): [sin(p * w_i) for i even] ++ [cos(p * w_i)], w_i = exp(-i ln(1e4) / dim)."""
    position = jnp.arange(length, dtype=F32)[:, None]
    freq = jnp.exp(jnp.arange(0, dim, 2, dtype=F32) * (-jnp.log(jnp.asarray(10000.0, F32)) / dim))
    angle = position * freq[None]
    return jnp.concatenate([jnp.sin(angle), jnp.cos(angle)], axis=1)


class SelfAttention(nn.Module):
    """``nn.MultiheadAttention`` with one packed q|k|v projection (``in_proj``) and ``out_proj``."""

    dim: int
    num_heads: int

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        """x: (B, S, D) -> (B, S, D)."""
        b, s, d = x.shape
        hd = d // self.num_heads
        qkv = dense(3 * d, name="in_proj")(x).reshape(b, s, 3, self.num_heads, hd)
        q, k, v = qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]
        logits = jnp.einsum("bqhd,bkhd->bhqk", q, k) / jnp.sqrt(jnp.asarray(hd, F32))
        out = jnp.einsum("bhqk,bkhd->bqhd", jax.nn.softmax(logits, axis=-1), v).reshape(b, s, d)
        return dense(d, name="out_proj")(out)


class TransformerEncoderLayer(nn.Module):
    """Post-norm encoder layer: x = norm1(x + attn(x)); x = norm2(x + linear2(relu(linear1(x))))."""

    dim: int
    num_heads: int
    intermediate_size: int
    layer_norm_eps: float = 1e-5
    dropout: float = 0.1

    @nn.compact
    def __call__(self, x: jnp.ndarray, train: bool) -> jnp.ndarray:
        drop = functools.partial(nn.Dropout, rate=self.dropout, deterministic=not train)
        norm = functools.partial(nn.LayerNorm, epsilon=self.layer_norm_eps, use_fast_variance=False,
                                 dtype=F32, param_dtype=F32)
        x = norm(name="norm1")(x + drop()(SelfAttention(self.dim, self.num_heads, name="self_attn")(x)))
        h = drop()(nn.relu(dense(self.intermediate_size, name="linear1")(x)))
        return norm(name="norm2")(x + drop()(dense(self.dim, name="linear2")(h)))


class PatchTransformerEncoder(nn.Module):
    """1x1 conv embedding of the bottleneck, zero token, positional encoding, ``num_layers`` layers."""

    hidden_size: int = 128
    num_layers: int = 4
    num_heads: int = 4
    intermediate_size: int = 1024
    layer_norm_eps: float = 1e-5
    dropout: float = 0.1

    @nn.compact
    def __call__(self, x: jnp.ndarray, train: bool = False) -> jnp.ndarray:
        """x: (B, h, w, C) bottleneck -> (B, hidden) embedding of the prepended token."""
        b = x.shape[0]
        t = nn.Conv(self.hidden_size, (1, 1), dtype=F32, param_dtype=F32, name="embedding_convPxP")(x)
        t = t.reshape(b, -1, self.hidden_size)  # row-major, like torch's flatten(2)
        t = jnp.concatenate([jnp.zeros((b, 1, self.hidden_size), F32), t], axis=1)
        t = t + sinusoidal_encoding(t.shape[1], self.hidden_size)[None]
        for i in range(self.num_layers):
            t = TransformerEncoderLayer(self.hidden_size, self.num_heads, self.intermediate_size,
                                        self.layer_norm_eps, self.dropout, name=f"layers_{i}")(t, train)
        return t[:, 0]


class MLPClassifier(nn.Module):
    """Linear -> ReLU -> Linear to one logit per domain."""

    num_domains: int

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        h = nn.relu(dense(x.shape[-1], name="linear_0")(x))
        return dense(self.num_domains, name="linear_2")(h)


def batch_vote(domain_logits: jnp.ndarray) -> jnp.ndarray:
    """The official routing decision: one domain for the whole batch, argmax of softmax(sum_b logits).

    Returns an int32 scalar (ties go to index 0, as torch.argmax does).
    """
    vote = jax.nn.softmax(jnp.sum(domain_logits, axis=0))
    return jnp.argmax(vote).astype(jnp.int32)
