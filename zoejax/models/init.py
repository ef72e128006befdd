"""Parameter initialisation and abstract shapes for a ZoeDepth config (jit-compiled: eager init is slow)."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from zoejax.models.config import ZoeDepthConfig
from zoejax.models.zoedepth import ZoeDepth

# Parameter shapes do not depend on the input size; the smallest valid input keeps tracing cheap.
_INIT_SIZE = 32


def init_params(config: ZoeDepthConfig, rng: jax.Array | int = 0) -> dict[str, Any]:
    """Freshly initialised ``params`` for ``config`` (float32 unless ``config.param_dtype`` says otherwise)."""
    rng = jax.random.key(rng) if isinstance(rng, int) else rng
    model = ZoeDepth(config)
    images = jnp.zeros((1, _INIT_SIZE, _INIT_SIZE, 3), jnp.float32)
    return jax.jit(model.init)(rng, images)["params"]


def param_shapes(config: ZoeDepthConfig) -> dict[str, Any]:
    """The ``params`` tree of ``config`` as ``jax.ShapeDtypeStruct`` leaves, without allocating anything."""
    model = ZoeDepth(config)
    images = jax.ShapeDtypeStruct((1, _INIT_SIZE, _INIT_SIZE, 3), jnp.float32)
    return jax.eval_shape(model.init, jax.random.key(0), images)["params"]


def count_params(tree: Any) -> int:
    """Number of scalars in a parameter tree (arrays or ShapeDtypeStructs)."""
    return sum(int(x.size) for x in jax.tree.leaves(tree))
