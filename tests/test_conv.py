"""``zoejax.ops.conv``: the matmul kernel gradient equals XLA's convolution gradients, inside jit and under remat,
and only stride-1 NHWC convolutions take it; 1x1, patchify and small strided convolutions are matrix products
with XLA's values and gradients."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from zoejax.ops.conv import conv_general_dilated

CASES = [  # (batch, H, W, C_in, C_out, kh, kw, padding)
    (1, 12, 16, 8, 4, 3, 3, ((1, 1), (1, 1))),
    (2, 7, 9, 3, 5, 3, 3, ((1, 1), (1, 1))),
    (1, 8, 8, 4, 4, 1, 1, ((1, 0), (0, 1))),
    (2, 9, 6, 3, 2, 3, 2, ((0, 2), (1, 0))),
]


def _loss(conv, x, k, padding):
    dn = lax.conv_dimension_numbers(x.shape, k.shape, ("NHWC", "HWIO", "NHWC"))
    return jnp.sum(jnp.sin(conv(x, k, (1, 1), padding, dimension_numbers=dn)))


@pytest.mark.parametrize("case", CASES)
def test_values_and_gradients_match_xla(case):
    b, h, w, c, o, kh, kw, padding = case
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(b, h, w, c)), jnp.float32)
    k = jnp.asarray(rng.normal(size=(kh, kw, c, o)), jnp.float32)
    ref_value, ref_grads = jax.value_and_grad(_loss, (1, 2))(lax.conv_general_dilated, x, k, padding)
    value, grads = jax.jit(jax.value_and_grad(_loss, (1, 2)), static_argnums=(0, 3))(
        conv_general_dilated, x, k, padding)
    np.testing.assert_allclose(value, ref_value, rtol=1e-5)
    for ours, ref in zip(grads, ref_grads, strict=True):
        assert ours.shape == ref.shape and ours.dtype == ref.dtype
        assert float(jnp.abs(ours - ref).max() / jnp.abs(ref).max()) < 1e-5
    # The custom gradient is the one in use (on CPU, where these tests run).
    assert "custom_vjp_call" in str(jax.make_jaxpr(lambda x, k: _loss(conv_general_dilated, x, k, padding))(x, k))


def test_bf16_and_remat():
    rng = np.random.default_rng(1)
    x = jnp.asarray(rng.normal(size=(2, 10, 12, 6)), jnp.bfloat16)
    k = jnp.asarray(rng.normal(size=(3, 3, 6, 4)), jnp.bfloat16)
    pad = ((1, 1), (1, 1))
    ref = jax.grad(lambda k: _loss(lax.conv_general_dilated, x, k, pad).astype(jnp.float32))(k)
    ours = jax.jit(jax.grad(jax.checkpoint(lambda k: _loss(conv_general_dilated, x, k, pad).astype(jnp.float32))))(k)
    assert ours.dtype == jnp.bfloat16
    np.testing.assert_allclose(np.asarray(ours, np.float32), np.asarray(ref, np.float32), rtol=0.05, atol=0.5)


PRODUCT_CASES = [  # (input (B, H, W, C), kernel (kh, kw, C, O), strides, padding)
    ((2, 6, 5, 7), (1, 1, 7, 3), (1, 1), "VALID"),  # a 1x1 convolution: a product over channels
    ((1, 4, 6, 5), (1, 1, 5, 2), (1, 1), "SAME"),  # nn.Conv's default padding
    ((1, 8, 7, 3), (3, 3, 3, 2), (2, 2), "SAME"),  # SAME pads (0, 1) here, (1, 1) for the odd width
    ((1, 18, 17, 3), (4, 4, 3, 6), (4, 4), ((0, 0), (0, 0))),  # patchify; a partial last row/column is dropped
    ((2, 9, 12, 5), (3, 3, 5, 4), (2, 2), ((1, 1), (1, 1))),  # DPT's stride-2 reassemble, odd height
    ((1, 10, 7, 2), (3, 2, 2, 3), (2, 3), ((0, 2), (1, 0))),  # uneven strides and padding
]


@pytest.mark.parametrize("case", PRODUCT_CASES)
def test_matrix_product_forms_match_xla(case):
    x_shape, k_shape, strides, padding = case
    rng = np.random.default_rng(3)
    x = jnp.asarray(rng.normal(size=x_shape), jnp.float32)
    k = jnp.asarray(rng.normal(size=k_shape), jnp.float32)
    dn = lax.conv_dimension_numbers(x.shape, k.shape, ("NHWC", "HWIO", "NHWC"))

    def loss(conv, x, k):
        return jnp.sum(jnp.sin(conv(x, k, strides, padding, dimension_numbers=dn)))

    ref_value, ref_grads = jax.value_and_grad(loss, (1, 2))(lax.conv_general_dilated, x, k)
    value, grads = jax.jit(jax.value_and_grad(loss, (1, 2)), static_argnums=0)(conv_general_dilated, x, k)
    np.testing.assert_allclose(value, ref_value, rtol=1e-5)
    for ours, ref in zip(grads, ref_grads, strict=True):
        assert ours.shape == ref.shape
        assert float(jnp.abs(ours - ref).max() / jnp.abs(ref).max()) < 1e-5
    jaxpr = str(jax.make_jaxpr(lambda x, k: loss(conv_general_dilated, x, k))(x, k))
    assert "conv_general_dilated" not in jaxpr and "dot_general" in jaxpr


def test_other_convolutions_are_plain_xla():
    def jaxpr(x_shape, k_shape, strides, padding):
        x, k = jnp.ones(x_shape), jnp.ones(k_shape)
        dn = lax.conv_dimension_numbers(x.shape, k.shape, ("NHWC", "HWIO", "NHWC"))
        return str(jax.make_jaxpr(lambda x, k: conv_general_dilated(x, k, strides, padding,
                                                                      dimension_numbers=dn))(x, k))

    # A strided convolution whose im2col columns would exceed the limit (here 9 * 4096 channels * 128 pixels).
    big = jaxpr((1, 32, 16, 4096), (3, 3, 4096, 2), (2, 2), ((1, 1), (1, 1)))
    assert "custom_vjp_call" not in big and "conv_general_dilated" in big
    dilated = str(jax.make_jaxpr(lambda x, k: conv_general_dilated(
        x, k, (1, 1), ((2, 2), (2, 2)), rhs_dilation=(2, 2),
        dimension_numbers=lax.conv_dimension_numbers(x.shape, k.shape, ("NHWC", "HWIO", "NHWC"))))(
        jnp.ones((1, 8, 8, 3)), jnp.ones((3, 3, 3, 2))))
    assert "custom_vjp_call" not in dilated and "conv_general_dilated" in dilated


def test_flax_conv_uses_it_with_the_same_parameters():
    x = jnp.asarray(np.random.default_rng(2).normal(size=(1, 6, 7, 4)), jnp.float32)
    plain = nn.Conv(5, (3, 3), padding=((1, 1), (1, 1)))
    ours = nn.Conv(5, (3, 3), padding=((1, 1), (1, 1)), conv_general_dilated=conv_general_dilated)
    params = plain.init(jax.random.key(0), x)
    assert jax.tree.map(jnp.shape, ours.init(jax.random.key(0), x)) == jax.tree.map(jnp.shape, params)
    np.testing.assert_array_equal(ours.apply(params, x), plain.apply(params, x))
    grad = jax.grad(lambda p, m: jnp.sum(m.apply(p, x) ** 2))
    ref, got = grad(params, plain), grad(params, ours)
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(ref), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
