"""gelu_exact is the erf GELU to float32 accuracy, in values and gradients, and it is not the tanh approximation."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import torch

from zoejax.ops.gelu import gelu_exact


def _reference(x: np.ndarray) -> np.ndarray:
    """float64 x * Phi(x)."""
    erf = np.vectorize(math.erf)
    return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))


def test_values_match_float64_and_pytorch():
    x = np.linspace(-12, 12, 20001, dtype=np.float32)
    ours = np.asarray(jax.jit(gelu_exact)(jnp.asarray(x)), np.float64)
    exact = _reference(x.astype(np.float64))
    np.testing.assert_allclose(ours, exact, rtol=0, atol=2e-6)
    pytorch = torch.nn.functional.gelu(torch.from_numpy(x)).double().numpy()
    np.testing.assert_allclose(ours, pytorch, rtol=0, atol=2e-6)
    assert np.abs(ours - np.asarray(jax.nn.gelu(x, approximate=True), np.float64)).max() > 1e-4  # not tanh


def test_gradient_is_phi_plus_x_times_density():
    x = np.linspace(-8, 8, 4001, dtype=np.float32)
    grad = np.asarray(jax.vmap(jax.grad(gelu_exact))(jnp.asarray(x)), np.float64)
    x64 = x.astype(np.float64)
    expected = _reference(x64) / np.where(x64 == 0, 1, x64) + x64 * np.exp(-0.5 * x64**2) / math.sqrt(2 * math.pi)
    expected[x64 == 0] = 0.5
    np.testing.assert_allclose(grad, expected, rtol=0, atol=5e-6)


def test_keeps_the_dtype():
    assert gelu_exact(jnp.ones((2, 3), jnp.bfloat16)).dtype == jnp.bfloat16
    assert gelu_exact(jnp.ones((2,), jnp.float32)).dtype == jnp.float32
