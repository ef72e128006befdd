"""Parameter initialisation and abstract shapes of a model config of any family (``zoejax.models.family``);
jit-compiled, as eager init is slow."""

from __future__ import annotations

import functools
import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from zoejax.models.config import ZoeDepthConfig
from zoejax.models.family import module_for

# Parameter shapes do not depend on the input size; the smallest valid input keeps tracing cheap: a multiple of
# 32 (the decoder's coarsest map) and of the family's ``input_multiple`` (DINOv2's patch 14; 32 otherwise).
_INIT_MULTIPLE = 32


def _init_size(config: ZoeDepthConfig) -> int:
    return math.lcm(_INIT_MULTIPLE, int(config.input_multiple))

# Initialisation runs once, so for small models XLA's optimisation passes cost more compile time than they save
# (CPU, jax 0.10.2: ZoeD_N "tiny" compiles in 10 s instead of 24 s and runs 0.03 -> 0.15 s; "small", 4.7M params,
# 8.5 instead of 16 s, 0.07 -> 0.44 s). Big models keep them: unoptimised, BEiT-L's init runs 33 s instead of 3.3 s.
UNOPTIMISED_INIT_MAX_PARAMS = 20_000_000
_UNOPTIMISED = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}


def init_fn(config: ZoeDepthConfig):
    """``rng -> params`` (plain arrays; logical-axis boxes removed), to jit or ``eval_shape``."""
    model = module_for(config)

    def init(rng: jax.Array) -> dict[str, Any]:
        images = jnp.zeros((1, _init_size(config), _init_size(config), 3), jnp.float32)
        return nn.unbox(model.init(rng, images)["params"])

    return init


def init_params(config: ZoeDepthConfig, rng: jax.Array | int = 0, *, only: str | None = None) -> dict[str, Any]:
    """Freshly initialised ``params`` for ``config`` (float32 unless ``config.param_dtype`` says otherwise).

    ``only``: the name of one top-level submodule (e.g. "metric_head"): just its params, equal to that part of
    the full initialisation. XLA drops the unused work, so a fresh BEiT-L metric head takes ~5 s, not ~35 s.
    """
    rng = jax.random.key(rng) if isinstance(rng, int) else rng
    init = init_fn(config)
    if only is None:
        return compile_init(jax.jit(init).lower(rng))(rng)
    full = param_shapes(config)
    if only not in full:
        raise KeyError(f"no top-level params {only!r}; the model has {sorted(full)}")
    # Compiled as the full init would be (optimised or not by the whole model's size), so the values match it.
    return compile_init(jax.jit(lambda key: init(key)[only]).lower(rng), params=full)(rng)


def compile_init(lowered: jax.stages.Lowered, params: Any = None) -> jax.stages.Compiled:
    """Compiles a lowered initialisation, without XLA's optimisations when the model is small (see
    ``UNOPTIMISED_INIT_MAX_PARAMS``). ``params``: the part of ``lowered.out_info`` that is the params tree
    (default: all of it)."""
    size = count_params(lowered.out_info if params is None else params)
    return lowered.compile(dict(_UNOPTIMISED) if size <= UNOPTIMISED_INIT_MAX_PARAMS else None)


def param_shapes(config: ZoeDepthConfig) -> dict[str, Any]:
    """The ``params`` tree of ``config`` as ``jax.ShapeDtypeStruct`` leaves, without allocating anything."""
    return nn.unbox(_abstract_boxed_params(config))


def logical_axes(config: ZoeDepthConfig) -> dict[str, Any]:
    """The params tree of ``PartitionSpec``s over *logical* axis names (``None`` where not annotated)."""
    return nn.get_partition_spec(_abstract_boxed_params(config))


# Tracing BEiT-L's init takes ~2 s, and one training run (shardings, resume target) or conversion asks for the
# shapes and logical axes several times: one trace per config serves them all. Callers get fresh trees (``unbox``
# and ``get_partition_spec`` build new ones), so the cached one never changes.
@functools.lru_cache(maxsize=8)
def _abstract_boxed_params(config: ZoeDepthConfig) -> dict[str, Any]:
    images = jax.ShapeDtypeStruct((1, _init_size(config), _init_size(config), 3), jnp.float32)
    return jax.eval_shape(module_for(config).init, jax.random.key(0), images)["params"]


def count_params(tree: Any) -> int:
    """Number of scalars in a parameter tree (arrays or ShapeDtypeStructs)."""
    return sum(int(x.size) for x in jax.tree.leaves(tree))
