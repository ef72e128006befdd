"""binomial_probabilities: the conditional log-binomial's softmax, with a hand-written backward, equals the plain
formula under autodiff in values and gradients."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from zoejax.models.metric_bins import binomial_probabilities, log_binomial_coefficients


def _plain(p, temperature, n_classes, eps=1e-4):
    k = jnp.arange(n_classes, dtype=jnp.float32)
    q = jnp.clip(1.0 - p, eps, 1.0)[..., None]
    pc = jnp.clip(p, eps, 1.0)[..., None]
    logits = jnp.asarray(log_binomial_coefficients(n_classes)) + k * jnp.log(pc) + (n_classes - 1 - k) * jnp.log(q)
    return jax.nn.softmax(logits / temperature[..., None], axis=-1)


def _inputs(shape=(2, 5, 7)):
    rng = np.random.default_rng(0)
    p = rng.uniform(0.0, 1.0, shape).astype(np.float32)
    p.flat[:4] = [0.0, 1.0, 1e-6, 1 - 1e-6]  # the clamps
    temperature = rng.uniform(0.0212, 50.0, shape).astype(np.float32)
    temperature.flat[4:6] = [0.0212, 0.05]  # sharp: |logits| in the thousands
    return jnp.asarray(p), jnp.asarray(temperature)


@pytest.mark.parametrize("n_classes", [64, 7])
def test_values_and_gradients_match_autodiff_of_the_formula(n_classes):
    p, temperature = _inputs()
    weights = jnp.asarray(np.random.default_rng(1).normal(size=(*p.shape, n_classes)), jnp.float32)
    np.testing.assert_array_equal(binomial_probabilities(p, temperature, n_classes), _plain(p, temperature, n_classes))

    def loss(fn):
        return lambda p, t: jnp.sum(jnp.sin(3 * fn(p, t, n_classes)) * weights)

    ours = jax.jit(jax.grad(loss(binomial_probabilities), argnums=(0, 1)))(p, temperature)
    ref = jax.jit(jax.grad(loss(_plain), argnums=(0, 1)))(p, temperature)
    for a, b in zip(ours, ref, strict=True):
        assert bool(jnp.all(jnp.isfinite(a))) and float(jnp.abs(b).max()) > 0
        np.testing.assert_allclose(a, b, rtol=2e-4, atol=1e-5 * float(jnp.abs(b).max()))


def test_backward_has_no_reduction_over_the_bins():
    """The sums over the K bins are products: XLA:CPU's fused multiply-reduce over a 64-wide minor axis is slow.
    The forward's softmax reduces over the bins twice (max, sum); autodiff of the plain formula adds three more."""
    p, temperature = _inputs((1, 8, 8))

    def per_pixel_reduces(fn) -> int:
        text = jax.jit(fn).lower(p).compile().as_text()
        return len([line for line in text.splitlines() if re.search(r"= f32\[1,8,8\]\{[\d,]+\} reduce\(", line)])

    def loss(probabilities):
        return lambda p: jnp.sum(probabilities(p, temperature, 64) ** 2)

    forward = per_pixel_reduces(loss(binomial_probabilities))
    assert forward == 2
    assert per_pixel_reduces(jax.grad(loss(binomial_probabilities))) == forward
    assert per_pixel_reduces(jax.grad(loss(_plain))) > forward  # what the hand-written backward avoids
