"""Identity in the forward pass whose cotangent is materialised in the backward pass.

Without it, XLA:CPU fuses the residual-stream gradient of a deep pre-norm transformer into every consumer: the
elementwise LayerNorm-backward terms of all later blocks are recomputed inside each block's transposed copies
(fusions of >300 instructions spanning six BEiT-L blocks between two DPT hooks), which makes the backward
quadratic in depth.

``lax.optimization_barrier`` does not stop that on XLA:CPU: its compiler expands the barriers before fusion. A
conditional does, as long as its branches differ (XLA folds a conditional whose branches are the same), so on
CPU the cotangent goes through ``cond(isnan(first element), all NaN, unchanged)``. That is the identity for every
cotangent except one whose first element is NaN, which comes back all NaN: a gradient that is non-finite anyway,
and the step is skipped as such. Other backends keep the optimization barrier (a conditional would read its
predicate on the host there). Which of the two is ``zoejax.ops.platform.OpForms.barrier``, passed by the model.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from zoejax.ops.platform import BARRIER_FORMS


@functools.partial(jax.custom_vjp, nondiff_argnums=(1,))
def gradient_barrier(x: jax.Array, form: str) -> jax.Array:
    """Returns ``x``; its cotangent is computed in full before anything upstream uses it, by ``form``
    ("cond" on CPU, "optimization_barrier" elsewhere: ``zoejax.ops.platform.OpForms.barrier``)."""
    _check(form)
    return x


def _check(form: str) -> None:
    if form not in BARRIER_FORMS:
        raise ValueError(f"unknown barrier form {form!r}; expected one of {BARRIER_FORMS}")


def _forward(x, form):
    _check(form)
    return x, None


def _backward(form, _, cotangent):
    if form == "optimization_barrier":
        return (jax.lax.optimization_barrier(cotangent),)
    poisoned = jnp.isnan(cotangent.reshape(-1)[0])
    return (jax.lax.cond(poisoned, lambda c: jnp.full_like(c, jnp.nan), lambda c: c, cotangent),)


gradient_barrier.defvjp(_forward, _backward)
