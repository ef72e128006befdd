"""PointwiseConv is a drop-in for nn.Conv(features, (1, 1)): same parameters, same outputs."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from zoejax.models.pointwise import PointwiseConv


def test_matches_conv_1x1_with_the_same_parameters():
    x = jax.random.normal(jax.random.key(0), (2, 5, 7, 6))
    conv = nn.Conv(4, (1, 1))
    point = PointwiseConv(4)
    conv_params = conv.init(jax.random.key(1), x)
    point_params = point.init(jax.random.key(1), x)
    assert jax.tree.map(jnp.shape, conv_params) == jax.tree.map(jnp.shape, point_params)
    np.testing.assert_allclose(point_params["params"]["kernel"], conv_params["params"]["kernel"])  # same init
    params = jax.tree.map(lambda p: p + 0.1 * jax.random.normal(jax.random.key(2), p.shape), conv_params)
    np.testing.assert_allclose(point.apply(params, x), conv.apply(params, x), rtol=1e-5, atol=1e-6)


def test_several_inputs_are_their_channel_concatenation():
    a = jax.random.normal(jax.random.key(0), (1, 3, 4, 5))
    b = jax.random.normal(jax.random.key(1), (1, 3, 4, 2))
    point = PointwiseConv(3)
    params = point.init(jax.random.key(2), (a, b))
    assert params["params"]["kernel"].shape == (1, 1, 7, 3)
    whole = point.apply(params, jnp.concatenate([a, b], axis=-1))
    np.testing.assert_allclose(point.apply(params, (a, b)), whole, rtol=1e-5, atol=1e-6)
    assert not np.allclose(point.apply(params, (b, a[..., :2], a[..., 2:])), whole, atol=1e-3)  # order matters


def test_compute_dtype_and_no_bias():
    x = jnp.ones((1, 2, 2, 3))
    point = PointwiseConv(2, use_bias=False, dtype=jnp.bfloat16)
    params = point.init(jax.random.key(0), x)
    assert "bias" not in params["params"] and params["params"]["kernel"].dtype == jnp.float32
    assert point.apply(params, x).dtype == jnp.bfloat16


def test_a_smaller_part_is_its_resize_taken_after_the_product():
    from zoejax.ops.resize import resize_bilinear

    main = jax.random.normal(jax.random.key(0), (2, 12, 16, 3))
    small = jax.random.normal(jax.random.key(1), (2, 6, 8, 5))
    point = PointwiseConv(4)
    params = point.init(jax.random.key(2), (main, small), resize_parts=True)
    params = jax.tree.map(lambda p: p + 0.1, params)  # a non-zero bias: it commutes with the resize too
    resized_first = point.apply(params, (main, resize_bilinear(small, (12, 16), align_corners=True)))
    got = point.apply(params, (main, small), resize_parts=True)
    assert got.shape == (2, 12, 16, 4)
    np.testing.assert_allclose(got, resized_first, rtol=1e-5, atol=1e-6)
    # Resized the other way (align_corners=False) it would differ: the test sees which resize is taken.
    other = point.apply(params, (main, resize_bilinear(small, (12, 16), align_corners=False)))
    assert not np.allclose(got, other, atol=1e-3)
