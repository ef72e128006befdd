"""Layers and initialisers shared by the encoder families: the MLP, timm's dense initialiser and the
rematerialisation policies (one definition each, imported by every backbone that uses them)."""

from __future__ import annotations

import enum
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from zoejax.ops.gelu import gelu_exact

Dtype = Any
_trunc = nn.initializers.truncated_normal(stddev=0.02)


class RematPolicy(enum.Enum):
    """Activation rematerialisation per encoder block (a checked enum, never a free-form string)."""

    NONE = "none"  # keep every activation
    FULL = "full"  # recompute the whole block in the backward pass
    DOTS = "dots"  # save matmul outputs, recompute the rest (jax.checkpoint_policies.dots_saveable)


# The ``nn.remat`` policy of each policy but NONE (which builds no remat wrapper at all).
REMAT_POLICIES = {
    RematPolicy.FULL: None,
    RematPolicy.DOTS: jax.checkpoint_policies.dots_saveable,
}


def dense_init(*logical_axes: str | None):
    """timm's truncated-normal(0.02) kernel init, annotated with logical axis names for sharding
    (mapped to mesh axes by the one rules table in ``zoejax/training/sharding.py``)."""
    return nn.with_logical_partitioning(_trunc, logical_axes)


class Mlp(nn.Module):
    """fc1 -> exact GELU -> fc2."""

    hidden: int
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        """(..., D) -> (..., D) through a (D -> hidden -> D) MLP."""
        dim = x.shape[-1]
        x = nn.Dense(self.hidden, dtype=self.dtype, param_dtype=self.param_dtype,
                     kernel_init=dense_init("embed", "mlp"), name="fc1")(x)
        x = gelu_exact(x)
        return nn.Dense(dim, dtype=self.dtype, param_dtype=self.param_dtype,
                        kernel_init=dense_init("mlp", "embed"), name="fc2")(x)
