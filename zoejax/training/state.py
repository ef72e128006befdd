"""The train state and its creation directly in its sharded layout (params and optimizer state are born
sharded: shardings come from ``eval_shape``, then ``jit(init, out_shardings=...)``)."""

from __future__ import annotations

from functools import partial
from typing import Any

import flax
import jax
import jax.numpy as jnp
import optax
from jax.sharding import Mesh

from zoejax.models.config import ZoeDepthConfig
from zoejax.models.init import compile_init, init_fn, logical_axes, param_shapes
from zoejax.training.sharding import param_shardings, replicated


@flax.struct.dataclass
class TrainState:
    """step (int32 scalar), params (Flax tree), opt_state (optax state)."""

    step: jax.Array
    params: Any
    opt_state: Any


def create_train_state(params: Any, tx: optax.GradientTransformation) -> TrainState:
    """Unsharded state (single device / tests)."""
    return TrainState(jnp.zeros((), jnp.int32), params, tx.init(params))


def state_shardings(config: ZoeDepthConfig, tx: optax.GradientTransformation, mesh: Mesh) -> TrainState:
    """The NamedSharding of every leaf of the train state on ``mesh``.

    Params follow the logical-axis rules; optimizer moments mirror their parameter; scalars are replicated.
    """
    params = param_shardings(logical_axes(config), mesh)
    abstract_params = param_shapes(config)
    abstract_opt = jax.eval_shape(tx.init, abstract_params)
    by_path = {key_path(path): (leaf.shape, sharding) for (path, leaf), sharding in zip(
        jax.tree_util.tree_leaves_with_path(abstract_params), jax.tree.leaves(params), strict=True)}

    def opt_sharding(path, leaf):
        # Adam moments are params-shaped subtrees of the optimizer state: their path ends in a param path.
        keys = key_path(path)
        for start in range(len(keys)):
            match = by_path.get(keys[start:])
            if match is not None and match[0] == leaf.shape:
                return match[1]
        return replicated(mesh)

    opt = jax.tree_util.tree_map_with_path(opt_sharding, abstract_opt)
    return TrainState(replicated(mesh), params, opt)


def key_path(path) -> tuple[str, ...]:
    """A jax tree path as plain strings (dict keys, attribute names, sequence indices)."""
    return tuple(str(getattr(k, "key", getattr(k, "name", getattr(k, "idx", k)))) for k in path)


def create_sharded_state(config: ZoeDepthConfig, tx: optax.GradientTransformation, mesh: Mesh,
                         rng: jax.Array, params: Any = None) -> tuple[TrainState, TrainState]:
    """(state, shardings): a fresh state initialised in place, or one built around given ``params``
    (e.g. converted official or MiDaS weights, host arrays), placed directly into its sharding."""
    shardings = state_shardings(config, tx, mesh)
    if params is None:
        lowered = jax.jit(lambda key: create_train_state(init_fn(config)(key), tx), out_shardings=shardings).lower(rng)
        return compile_init(lowered, lowered.out_info.params)(rng), shardings
    params = jax.device_put(params, shardings.params)
    opt_state = jax.jit(tx.init, out_shardings=shardings.opt_state)(params)
    step = jax.device_put(jnp.zeros((), jnp.int32), shardings.step)
    return TrainState(step, params, opt_state), shardings


def abstract_train_state(config: ZoeDepthConfig, tx: optax.GradientTransformation,
                         shardings: TrainState) -> TrainState:
    """The train state as ``jax.ShapeDtypeStruct`` leaves carrying ``shardings``: what a checkpoint restores
    into when a run resumes (nothing is initialised or allocated)."""
    abstract = jax.eval_shape(partial(create_train_state, tx=tx), param_shapes(config))
    return jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s), abstract, shardings)
