"""Stride-1 NHWC convolution whose kernel gradient is computed as matrix products on XLA:CPU.

XLA:CPU's backward-filter convolution runs 5-8x slower than the forward convolution of the same size (e.g. 340 ms
against 55 ms for DPT's 3x3 256->256 convolutions at 96x128), and it was the largest cost of a train step after the
encoder's matmuls. For a stride-1 kh x kw convolution,

    dK[i, j, c, o] = sum_{b, h, w} xpad[b, h + i, w + j, c] * g[b, h, w, o],

and shifting ``g`` along w instead of ``xpad`` makes each kernel row i one product with a long contraction,
``[g shifted by 0..kw-1]^T @ xpad[:, i:i+Ho]``: kh matmuls, 1.5-3x faster than XLA's filter convolution here.
The input gradient stays XLA's own convolution, and so does the forward except for wide float32 3x3 convolutions
(DPT's 256-channel decoder), which run as Winograd F(2x2, 3x3) (``zoejax.ops.winograd``: 2.25x fewer
multiply-adds, 0.5-0.8x the time, ~6e-7 relative difference).

Convolutions that are matrix products in disguise take that form on CPU as well, where XLA:CPU runs them as slow
generic convolutions (2-3x slower than the product at BEiT-L's 24x32 grid): a 1x1 convolution is a product over
channels, a patchify convolution (stride == kernel, no padding: the ViT patch embedding) a product over patches,
and a strided convolution (DPT's stride-2 3x3 reassemble) one product over its strided im2col columns (small
maps only: the columns are kh*kw times the output). Dilations and groups use ``lax.conv_general_dilated``
unchanged. These are the "products" convolution forms of ``zoejax.ops.platform``; a model takes its convolution
from ``conv_for(ops)``, which is XLA's own for the generic (GPU/TPU) forms.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
from jax import lax

from zoejax.ops.platform import OpForms
from zoejax.ops.winograd import winograd_conv3x3

_NHWC = ("NHWC", "HWIO", "NHWC")


def conv_for(ops: OpForms) -> Callable:
    """The convolution of ``ops`` (pass it as ``nn.Conv(conv_general_dilated=...)``): XLA's own
    ``lax.conv_general_dilated`` for conv="xla"; for conv="products" this module's ``conv_general_dilated``,
    with Winograd where ``ops.winograd``. The same callable for equal ``ops``, so flax modules compare equal."""
    if ops.conv == "xla":
        return lax.conv_general_dilated
    return conv_general_dilated if ops.winograd else _conv_general_dilated_no_winograd


def conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation=None, rhs_dilation=None,
                         dimension_numbers=None, feature_group_count=1, precision=None, preferred_element_type=None,
                         *, winograd: bool = True):
    """Drop-in for ``lax.conv_general_dilated`` in the CPU ("products") forms. For undilated, ungrouped
    NHWC/HWIO convolutions: 1x1 and patchify convolutions are products, stride-1 ones take the matmul kernel
    gradient (and, with ``winograd``, Winograd's forward where it pays), and strided ones whose im2col columns
    (batch included) stay under ``_MAX_COLUMNS`` elements are one product over those columns; everything else is
    XLA's own."""
    plain_nhwc = (
        lhs.ndim == 4 and feature_group_count == 1
        and all(d == 1 for d in (lhs_dilation or (1, 1))) and all(d == 1 for d in (rhs_dilation or (1, 1)))
        and preferred_element_type is None
        and dimension_numbers == lax.conv_dimension_numbers(lhs.shape, rhs.shape, _NHWC))
    if not plain_nhwc:
        return lax.conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation, rhs_dilation,
                                        dimension_numbers, feature_group_count, precision=precision,
                                        preferred_element_type=preferred_element_type)
    strides = tuple(int(s) for s in window_strides)
    if isinstance(padding, str):  # "SAME" / "VALID" as nn.Conv passes them
        padding = lax.padtype_to_pads(lhs.shape[1:3], rhs.shape[:2], strides, padding)
    padding = tuple((int(lo), int(hi)) for lo, hi in padding)
    kh, kw = rhs.shape[:2]
    unpadded = all(p == (0, 0) for p in padding)
    if (kh, kw) == (1, 1) and strides == (1, 1) and unpadded:
        return jnp.dot(lhs, rhs[0, 0], precision=precision)
    if strides == (kh, kw) and unpadded:
        return _patchify_conv(lhs, rhs, precision)
    if strides == (1, 1):
        return conv2d_gemm_kernel_grad(lhs, rhs, padding, precision, winograd)
    if _out_size(lhs.shape[1:3], (kh, kw), strides, padding) * kh * kw * lhs.shape[-1] * lhs.shape[0] <= _MAX_COLUMNS:
        return _im2col_conv(lhs, rhs, strides, padding, precision)
    return lax.conv_general_dilated(lhs, rhs, strides, padding, dimension_numbers=dimension_numbers,
                                    precision=precision)


# Largest im2col matrix (elements, batch included) a strided convolution is computed through: 16 MB in float32.
# DPT's stride-2 reassemble at 384x512 needs 1.8M per image (measured 33 -> 14 ms); larger columns were not
# measured and keep XLA's convolution.
_MAX_COLUMNS = 4 * 1024 * 1024


def _out_size(size, kernel, strides, padding) -> int:
    (h, w), (kh, kw), (sh, sw), ((top, bottom), (left, right)) = size, kernel, strides, padding
    return ((h + top + bottom - kh) // sh + 1) * ((w + left + right - kw) // sw + 1)


def _patchify_conv(x: jax.Array, kernel: jax.Array, precision) -> jax.Array:
    """Non-overlapping kh x kw patches (stride == kernel, no padding) times the kernel: (B, H/kh, W/kw, O);
    trailing rows/columns that do not fill a patch are dropped, as the convolution does."""
    b, h, w, c = x.shape
    kh, kw, _, o = kernel.shape
    ho, wo = h // kh, w // kw
    patches = x[:, :ho * kh, :wo * kw].reshape(b, ho, kh, wo, kw, c).transpose(0, 1, 3, 2, 4, 5)
    return jnp.dot(patches.reshape(b, ho, wo, kh * kw * c), kernel.reshape(kh * kw * c, o), precision=precision)


def _im2col_conv(x: jax.Array, kernel: jax.Array, strides: tuple[int, int],
                 padding: Sequence[tuple[int, int]], precision) -> jax.Array:
    """A strided convolution as one product: the (B, Ho, Wo, kh*kw*C) strided columns times the kernel."""
    kh, kw, c, o = kernel.shape
    (sh, sw), ((top, bottom), (left, right)) = strides, padding
    xp = jnp.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)))
    ho, wo = (xp.shape[1] - kh) // sh + 1, (xp.shape[2] - kw) // sw + 1
    columns = jnp.concatenate([xp[:, i:i + sh * (ho - 1) + 1:sh, j:j + sw * (wo - 1) + 1:sw]
                               for i in range(kh) for j in range(kw)], axis=-1)
    return jnp.dot(columns, kernel.reshape(kh * kw * c, o), precision=precision)


# Winograd takes a 3x3 "SAME" convolution when both channel counts are at least _WINOGRAD_MIN_CHANNELS and the
# input holds at least _WINOGRAD_MIN_ELEMENTS values per image. Measured on CPU-2 (minima of 15 alternated calls):
# 256->256 at 24x32 and up, 512->256 at 48x64 and 1024->256 at 12x16 and 24x32 gain 20-50%; 256->256 at 12x16
# (too few tiles), 256->128 at 192x256 (level) and 128->32 at 384x512 (2.6x slower: thin products) do not.
_WINOGRAD_MIN_CHANNELS = 256
_WINOGRAD_MIN_ELEMENTS = 1 << 17


_conv_general_dilated_no_winograd = functools.partial(conv_general_dilated, winograd=False)


def _winograd_applies(x, kernel, padding, winograd) -> bool:
    return (winograd and kernel.shape[:2] == (3, 3) and tuple(padding) == ((1, 1), (1, 1))
            and x.dtype == jnp.float32 and kernel.dtype == jnp.float32
            and min(kernel.shape[2:]) >= _WINOGRAD_MIN_CHANNELS
            and x.shape[1] * x.shape[2] * x.shape[3] >= _WINOGRAD_MIN_ELEMENTS)


def _conv(x, kernel, padding, precision):
    return lax.conv_general_dilated(x, kernel, (1, 1), padding, dimension_numbers=_NHWC, precision=precision)


def _forward_conv(x, kernel, padding, precision, winograd):
    if _winograd_applies(x, kernel, padding, winograd):
        return winograd_conv3x3(x, kernel, precision)
    return _conv(x, kernel, padding, precision)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4))
def conv2d_gemm_kernel_grad(x: jax.Array, kernel: jax.Array, padding: Sequence[tuple[int, int]],
                            precision=None, winograd: bool = True) -> jax.Array:
    """Stride-1 convolution. x (B, H, W, C), kernel (kh, kw, C, O), padding ((top, bottom), (left, right))
    -> (B, Ho, Wo, O); the values and gradients of ``lax.conv_general_dilated`` (up to float rounding where the
    forward is Winograd's, which ``winograd=False`` rules out)."""
    return _forward_conv(x, kernel, padding, precision, winograd)


def _forward(x, kernel, padding, precision, winograd):
    return _forward_conv(x, kernel, padding, precision, winograd), (x, kernel)


def _backward(padding, precision, winograd, residuals, g):
    x, kernel = residuals
    dx = jax.vjp(lambda x: _conv(x, kernel, padding, precision), x)[1](g)[0]
    return dx, kernel_gradient(x, g, kernel.shape, padding, precision).astype(kernel.dtype)


conv2d_gemm_kernel_grad.defvjp(_forward, _backward)


def kernel_gradient(x: jax.Array, g: jax.Array, kernel_shape: Sequence[int],
                    padding: Sequence[tuple[int, int]], precision=None) -> jax.Array:
    """dL/dkernel (kh, kw, C, O) float32 of a stride-1 convolution, from its input x (B, H, W, C) and output
    cotangent g (B, Ho, Wo, O), as kh matrix products."""
    kh, kw = kernel_shape[:2]
    (top, bottom), (left, right) = padding
    xp = jnp.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)))
    ho, wo, width = g.shape[1], g.shape[2], xp.shape[2]
    # shifted[b, h, w', (j, o)] = g[b, h, w' - j, o]: column j of the kernel reads x at w' = w + j.
    shifted = jnp.concatenate([jnp.pad(g, ((0, 0), (0, 0), (j, width - wo - j), (0, 0))) for j in range(kw)],
                              axis=-1)
    c, o = x.shape[-1], g.shape[-1]
    # Transposed once and used as the left operand of every row's product: XLA:CPU would otherwise transpose
    # each (large) slice of x instead.
    shifted_t = shifted.reshape(-1, kw * o).T
    rows = [jnp.dot(shifted_t, xp[:, i:i + ho].reshape(-1, c), precision=precision,
                    preferred_element_type=jnp.float32) for i in range(kh)]  # kh x (kw*O, C)
    return jnp.stack(rows).reshape(kh, kw, o, c).transpose(0, 1, 3, 2)
