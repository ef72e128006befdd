"""Resizing that reproduces PyTorch's ``F.interpolate`` bit for bit (up to fp32 rounding).

``jax.image.resize`` antialiases when downsampling, has no ``align_corners=True`` mode and its cubic kernel
uses Keys' A = -0.5, while the official ZoeDepth code relies on PyTorch's bilinear (both corner modes) and
bicubic (A = -0.75) interpolation. Every resize here is separable: source indices and weights are computed
on the host in float32 with PyTorch's formulas (shapes are static under ``jit``), and applied with gathers,
so results match PyTorch to ~1e-7 instead of going through a matmul whose precision depends on the backend.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax.numpy as jnp
import numpy as np

from zoejax.ops.taps import fma_source_index, linear_taps, torch_scale


def _cubic_weights(t: np.ndarray, a: float = -0.75) -> np.ndarray:
    """Cubic-convolution weights for the four taps (i-1, i, i+1, i+2); t in [0, 1). Shape (..., 4)."""
    a = np.float32(a)
    t = t.astype(np.float32)

    def near(x):  # |x| <= 1
        return ((a + 2) * x - (a + 3)) * x * x + 1

    def far(x):  # 1 < |x| < 2
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a

    one = np.float32(1.0)
    rest = one - t  # PyTorch evaluates the last tap at (1 - t) + 1, not 2 - t
    return np.stack([far(t + one), near(t), near(rest), far(rest + one)], axis=-1).astype(np.float32)


def _lerp_axis(x: jnp.ndarray, axis: int, out_size: int, align_corners: bool) -> jnp.ndarray:
    in_size = x.shape[axis]
    if in_size == out_size:  # both corner modes are the identity then
        return x
    i0, i1, lam = linear_taps(in_size, out_size, align_corners)
    shape = [1] * x.ndim
    shape[axis] = out_size
    lam = jnp.asarray(lam, dtype=jnp.float32).reshape(shape)
    a = jnp.take(x, jnp.asarray(i0), axis=axis)
    b = jnp.take(x, jnp.asarray(i1), axis=axis)
    out = a.astype(jnp.float32) * (1.0 - lam) + b.astype(jnp.float32) * lam
    return out.astype(x.dtype)


def resize_bilinear(
    x: jnp.ndarray, size: Sequence[int], *, align_corners: bool, axes: tuple[int, int] = (1, 2)
) -> jnp.ndarray:
    """Bilinear resize without antialiasing, matching ``F.interpolate(mode="bilinear")``.

    Args:
      x: array with two spatial axes, e.g. (B, H, W, C) with ``axes=(1, 2)`` (the default).
      size: output (height, width).
      align_corners: PyTorch's flag. The official ZoeDepth uses True everywhere except the BEiT relative
        position table resize (False).
      axes: the (height, width) axes of ``x``.
    Returns:
      ``x`` resized to ``size`` on ``axes``, same dtype (interpolated in float32).
    """
    out_h, out_w = int(size[0]), int(size[1])
    # PyTorch interpolates both axes from the same four taps; doing it separably (width first) changes only
    # the fp32 rounding order.
    x = _lerp_axis(x, axes[1], out_w, align_corners)
    return _lerp_axis(x, axes[0], out_h, align_corners)


def _cubic_axis(x: jnp.ndarray, axis: int, out_size: int, a: float) -> jnp.ndarray:
    in_size = x.shape[axis]
    if in_size == out_size:
        return x
    scale = torch_scale(in_size, out_size, align_corners=False)
    src = fma_source_index(scale, out_size, offset=0.5)  # no clamp for cubic
    base = np.floor(src).astype(np.int32)
    t = src - base.astype(np.float32)
    weights = _cubic_weights(t, a)  # (out, 4)
    out = None
    for k in range(4):
        idx = np.clip(base - 1 + k, 0, in_size - 1)
        shape = [1] * x.ndim
        shape[axis] = out_size
        w = jnp.asarray(weights[:, k]).reshape(shape)
        term = jnp.take(x, jnp.asarray(idx), axis=axis).astype(jnp.float32) * w
        out = term if out is None else out + term
    return out.astype(x.dtype)


def resize_bicubic(
    x: jnp.ndarray, size: Sequence[int], *, a: float = -0.75, axes: tuple[int, int] = (1, 2)
) -> jnp.ndarray:
    """Bicubic resize with ``align_corners=False``, matching ``F.interpolate(mode="bicubic")`` (A = -0.75).

    Used by the official ``infer`` to bring the network-resolution depth back to the input size.
    """
    x = _cubic_axis(x, axes[1], int(size[1]), a)
    return _cubic_axis(x, axes[0], int(size[0]), a)
