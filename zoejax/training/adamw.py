"""AdamW with global-norm clipping, per-group schedules and non-finite skipping, as one transformation.

It computes what the optax composition ``apply_if_finite(chain(clip_by_global_norm(c), multi_transform({group:
inject_hyperparams(adamw)(...)})))`` computes, in the same order of float32 operations (``tests/test_optim.py``
checks them against each other step by step; they agree to an ulp), but every parameter's clip, moment updates,
bias correction, decay, learning rate and skip are elementwise expressions of the same few arrays, so XLA fuses
them into a few passes over memory. On CPU the composition's BEiT-L update (345M parameters, 501 leaves) compiles
to ~4700 fusions and ~1000 copies (both moments of every parameter) and takes ~2.1 s; this one ~3100 fusions and
one copy, ~0.9 s. The state is not optax's (``FusedAdamWState``), so a checkpoint written with the composition's
state does not restore into it (``zoejax.training.checkpointing`` names the differing entries).

Two differences. A non-finite gradient is always skipped: optax applies it after ``max_consecutive_errors`` in a
row, which turns every parameter into NaN (a diverged run would then save NaN checkpoints over its good ones);
here the training loop stops the run instead (``zoejax.training.divergence``). And the gradient counts as
non-finite when its global norm is (optax checks every element): the two differ only for finite gradients whose
squared norm overflows float32 (norm > ~1.8e19), which are skipped here (optax would apply a zero clipped
gradient).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

Schedule = Callable[[jax.Array], jax.Array]


class FusedAdamWState(NamedTuple):
    """count: accepted updates so far (int32); the schedules are evaluated at it, Adam's bias correction uses
    count + 1. mu, nu: the moments, shaped like the params. notfinite_count: non-finite gradients in a row;
    last_finite: whether the latest one was finite; total_notfinite: all skipped updates."""

    count: jax.Array
    mu: Any
    nu: Any
    notfinite_count: jax.Array
    last_finite: jax.Array
    total_notfinite: jax.Array


def _increment(count: jax.Array) -> jax.Array:
    return jnp.where(count < jnp.iinfo(jnp.int32).max, count + 1, count)


def _value(schedule: Schedule | float, count: jax.Array) -> jax.Array:
    return jnp.asarray(schedule(count) if callable(schedule) else schedule, jnp.float32)


def fused_adamw(labels: Callable[[Any], Any], learning_rates: Mapping[str, Schedule | float],
                weight_decays: Mapping[str, float], b1: Schedule | float, b2: float, eps: float,
                clip_norm: float | None) -> optax.GradientTransformation:
    """AdamW (decoupled decay, eps outside the square root) on global-norm-clipped gradients.

    Args:
      labels: params -> the same tree of group names (keys of ``learning_rates`` and ``weight_decays``).
      learning_rates: per group, a schedule of the accepted-update count or a constant.
      weight_decays: per group, the decoupled decay coefficient (multiplied by the learning rate).
      b1: Adam's first-moment decay, a schedule (cycled momentum) or a constant; b2, eps as in Adam.
      clip_norm: gradients whose global L2 norm exceeds it are scaled down to it; None: no clipping.
    A non-finite gradient gives a zero update and leaves the state (counts, moments) as it was, however many
    come in a row (``notfinite_count`` counts them; the caller decides when to give up).
    """

    def init(params):
        def zero():  # a new buffer each: a state built outside jit is donated to the train step leaf by leaf
            return jnp.zeros([], jnp.int32)

        return FusedAdamWState(count=zero(), mu=jax.tree.map(jnp.zeros_like, params),
                               nu=jax.tree.map(jnp.zeros_like, params), notfinite_count=zero(),
                               last_finite=jnp.array(True), total_notfinite=zero())

    def update(grads, state, params=None):
        if params is None:
            raise ValueError("fused_adamw needs the params (decoupled weight decay)")
        norm = optax.tree.norm(grads)
        finite = jnp.isfinite(norm)
        notfinite_count = jnp.where(finite, 0, _increment(state.notfinite_count))
        accept = finite
        count_inc = _increment(state.count)
        beta1, beta2 = _value(b1, state.count), jnp.asarray(b2, jnp.float32)
        eps_ = jnp.asarray(eps, jnp.float32)
        hyper = {g: (_value(lr, state.count), jnp.asarray(weight_decays[g], jnp.float32))
                 for g, lr in learning_rates.items()}
        correction1, correction2 = 1 - beta1**count_inc, 1 - beta2**count_inc

        def leaf(group, g, m, v, p):
            lr, decay = hyper[group]
            return _leaf_update(g, m, v, p, norm, accept, beta1, beta2, eps_, correction1, correction2, lr, decay,
                                clip_norm=clip_norm)

        out = jax.tree.map(leaf, labels(params), grads, state.mu, state.nu, params)
        updates, mu, nu = jax.tree.transpose(jax.tree.structure(grads), jax.tree.structure((0, 0, 0)), out)
        return updates, FusedAdamWState(
            count=jnp.where(accept, count_inc, state.count), mu=mu, nu=nu,
            notfinite_count=notfinite_count, last_finite=finite,
            total_notfinite=jnp.where(finite, state.total_notfinite, _increment(state.total_notfinite)))

    return optax.GradientTransformation(init, update)


# One parameter's update, jitted so that it is traced once per distinct (shape, dtype) rather than once per leaf:
# BEiT-L has 501 parameter leaves of ~40 shapes, and tracing ~15 jnp operations per leaf was a third of the train
# step's trace time. Inside the train step's jit XLA inlines these calls, so the fused kernels are the same.
@functools.partial(jax.jit, static_argnames="clip_norm")
def _leaf_update(g, m, v, p, norm, accept, beta1, beta2, eps, correction1, correction2, lr, decay, *,
                 clip_norm: float | None):
    """(update, new first moment, new second moment) of one parameter ``p`` with gradient ``g``."""
    if clip_norm is not None:
        g = jnp.where(norm < clip_norm, g, (g / norm.astype(g.dtype)) * clip_norm)
    # The update is computed from the moments as returned (equal to the new ones whenever it is applied): computed
    # from the unselected ones, XLA fuses their arithmetic into both the update and the returned moments, both then
    # read the old moments, and it copies every moment (2 x 1.4 GB for BEiT-L) to keep the old values readable
    # after the in-place write.
    m = jnp.where(accept, (1 - beta1) * g + beta1 * m, m)
    v = jnp.where(accept, (1 - beta2) * (g**2) + beta2 * v, v)
    m_hat = m / correction1.astype(m.dtype)
    v_hat = v / correction2.astype(v.dtype)
    u = m_hat / (jnp.sqrt(v_hat) + eps)
    u = (-1 * lr) * (u + decay * p)
    return jnp.where(accept, u, jnp.zeros_like(u)), m, v
