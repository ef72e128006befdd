"""``zoejax.ops.winograd``: F(2x2, 3x3) equals XLA's 3x3 "SAME" convolution up to float rounding, for odd sizes and
batches, and ``zoejax.ops.conv`` sends wide float32 convolutions (DPT's decoder) through it, with XLA's gradients."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

import zoejax.ops.conv as conv_ops
from zoejax.ops.winograd import winograd_conv3x3

PAD = ((1, 1), (1, 1))


def _xla(x, k):
    return lax.conv_general_dilated(x, k, (1, 1), PAD, dimension_numbers=("NHWC", "HWIO", "NHWC"))


def _inputs(shape, out_channels, seed=0):
    rng = np.random.default_rng(seed)
    x = jnp.asarray(rng.normal(size=shape), jnp.float32)
    k = jnp.asarray(rng.normal(size=(3, 3, shape[-1], out_channels)) / np.sqrt(9 * shape[-1]), jnp.float32)
    return x, k


@pytest.mark.parametrize("shape,out_channels", [
    ((1, 12, 16, 8), 4),  # whole tiles
    ((2, 7, 9, 5), 3),  # odd sizes: padded to whole tiles and cropped; batch of two
    ((1, 1, 1, 3), 2),  # a single pixel: every tap but the centre reads padding
    ((3, 2, 5, 16), 32),
])
def test_equals_xla_convolution(shape, out_channels):
    x, k = _inputs(shape, out_channels)
    ref = np.asarray(_xla(x, k), np.float64)
    ours = np.asarray(jax.jit(winograd_conv3x3)(x, k), np.float64)
    assert ours.shape == ref.shape
    # Float rounding only: the transforms add, subtract and halve.
    assert np.linalg.norm(ours - ref) / np.linalg.norm(ref) < 2e-6
    assert np.abs(ours - ref).max() < 1e-5 * np.abs(ref).max()


def test_each_output_position_sees_its_own_window():
    """A delta kernel at each of the nine taps shifts the map by that tap's offset: any mix-up between tiles,
    tap positions or the output interleave moves values to the wrong pixel."""
    x = jnp.arange(1 * 5 * 7 * 1, dtype=jnp.float32).reshape(1, 5, 7, 1)
    for i in range(3):
        for j in range(3):
            k = jnp.zeros((3, 3, 1, 1)).at[i, j].set(1.0)
            np.testing.assert_array_equal(np.asarray(winograd_conv3x3(x, k)), np.asarray(_xla(x, k)))


def test_rejects_a_kernel_that_does_not_fit():
    with pytest.raises(ValueError, match=r"\(3, 3, 4, O\)"):
        winograd_conv3x3(jnp.ones((1, 4, 4, 4)), jnp.ones((3, 3, 5, 2)))


def _loss(x, k):
    dn = lax.conv_dimension_numbers(x.shape, k.shape, ("NHWC", "HWIO", "NHWC"))
    return jnp.sum(jnp.sin(conv_ops.conv_general_dilated(x, k, (1, 1), PAD, dimension_numbers=dn)))


def _forward_jaxpr(x, k) -> str:
    dn = lax.conv_dimension_numbers(x.shape, k.shape, ("NHWC", "HWIO", "NHWC"))
    return str(jax.make_jaxpr(lambda x, k: conv_ops.conv_general_dilated(x, k, (1, 1), PAD,
                                                                       dimension_numbers=dn))(x, k))


def test_wide_convolutions_take_it_with_xla_values_and_gradients():
    x, k = _inputs((1, 24, 32, 256), 256, seed=1)  # DPT's 256-channel decoder at BEiT-L's 24x32 grid
    forward = _forward_jaxpr(x, k)
    assert "conv_general_dilated" not in forward and forward.count("dot_general") == 16
    value, grads = jax.jit(jax.value_and_grad(_loss, (0, 1)))(x, k)
    ref_value, ref_grads = jax.value_and_grad(lambda x, k: jnp.sum(jnp.sin(_xla(x, k))), (0, 1))(x, k)
    np.testing.assert_allclose(value, ref_value, rtol=1e-4)
    for ours, ref in zip(grads, ref_grads, strict=True):
        assert float(jnp.linalg.norm(ours - ref) / jnp.linalg.norm(ref)) < 1e-5


@pytest.mark.parametrize("shape,out_channels,dtype", [
    ((1, 24, 32, 128), 256, jnp.float32),  # too few input channels
    ((1, 24, 32, 256), 128, jnp.float32),  # too few output channels
    ((1, 12, 16, 256), 256, jnp.float32),  # too few tiles for the transforms to pay
    ((1, 24, 32, 256), 256, jnp.bfloat16),  # the transforms would round in bfloat16
])
def test_other_convolutions_stay_direct(shape, out_channels, dtype):
    x, k = (a.astype(dtype) for a in _inputs(shape, out_channels))
    jaxpr = _forward_jaxpr(x, k)
    assert "conv_general_dilated" in jaxpr and "dot_general" not in jaxpr


def test_op_forms_without_winograd_keep_the_direct_convolution():
    from zoejax.ops.platform import FORMS, OpForms

    x, k = _inputs((1, 24, 32, 256), 256)
    dn = lax.conv_dimension_numbers(x.shape, k.shape, ("NHWC", "HWIO", "NHWC"))

    def jaxpr(conv) -> str:
        return str(jax.make_jaxpr(lambda x, k: conv(x, k, (1, 1), PAD, dimension_numbers=dn))(x, k))

    direct = jaxpr(conv_ops.conv_for(OpForms(attention="per_head", conv="products", winograd=False)))
    assert "conv_general_dilated" in direct and "dot_general" not in direct
    assert "dot_general" in jaxpr(conv_ops.conv_for(FORMS["cpu"]))
    assert conv_ops.conv_for(FORMS["tpu"]) is lax.conv_general_dilated
