"""Resizing that reproduces PyTorch's ``F.interpolate`` bit for bit (up to fp32 rounding).

``jax.image.resize`` antialiases when downsampling, has no ``align_corners=True`` mode and its cubic kernel
uses Keys' A = -0.5, while the official ZoeDepth code relies on PyTorch's bilinear (both corner modes) and
bicubic (A = -0.75) interpolation. Every resize here is separable: source indices and weights are computed
on the host in float32 with PyTorch's formulas (shapes are static under ``jit``), and applied with gathers,
so results match PyTorch to ~1e-7 instead of going through a matmul whose precision depends on the backend.

TPUs run gathers and their scatter-add gradients slowly (the x2 upsample in front of DPT's full-resolution
head convolution cost the compiler's estimate 6.5 ms of a 384x512 v5p step at 4 images against 3.0 ms as a
matmul), so bilinear resizes have a second form, "matmul": the same taps as a constant (out, in) interpolation
matrix contracted on each axis, in the input's dtype (bfloat16 weights for bfloat16 activations, float32 at
HIGHEST precision otherwise). The model's ``OpForms.resize`` (``zoejax.ops.platform``) chooses.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from zoejax.ops.taps import cubic_taps, linear_taps

RESIZE_FORMS = ("gather", "matmul")


@functools.lru_cache(maxsize=256)
def interpolation_matrix(in_size: int, out_size: int, align_corners: bool) -> np.ndarray:
    """(out_size, in_size) float32 matrix of the linear taps: row o has 1 - lam at i0[o] and lam at i1[o]."""
    i0, i1, lam = linear_taps(in_size, out_size, align_corners)
    m = np.zeros((out_size, in_size), np.float32)
    np.add.at(m, (np.arange(out_size), i0), 1.0 - lam)
    np.add.at(m, (np.arange(out_size), i1), lam)
    m.flags.writeable = False
    return m


def _lerp_axis_matmul(x: jnp.ndarray, axis: int, out_size: int, align_corners: bool) -> jnp.ndarray:
    weights = jnp.asarray(interpolation_matrix(x.shape[axis], out_size, align_corners), x.dtype)
    letters = "abcdefgh"[: x.ndim]
    out = letters.replace(letters[axis], "z")
    precision = jax.lax.Precision.HIGHEST if x.dtype == jnp.float32 else None
    y = jnp.einsum(f"{letters},z{letters[axis]}->{out}", x, weights, precision=precision,
                   preferred_element_type=jnp.float32)
    return y.astype(x.dtype)


def _lerp_axis(x: jnp.ndarray, axis: int, out_size: int, align_corners: bool, form: str = "gather"
               ) -> jnp.ndarray:
    in_size = x.shape[axis]
    if in_size == out_size:  # both corner modes are the identity then
        return x
    if form == "matmul":
        return _lerp_axis_matmul(x, axis, out_size, align_corners)
    i0, i1, lam = linear_taps(in_size, out_size, align_corners)
    shape = [1] * x.ndim
    shape[axis] = out_size
    lam = jnp.asarray(lam, dtype=jnp.float32).reshape(shape)
    a = jnp.take(x, jnp.asarray(i0), axis=axis)
    b = jnp.take(x, jnp.asarray(i1), axis=axis)
    out = a.astype(jnp.float32) * (1.0 - lam) + b.astype(jnp.float32) * lam
    return out.astype(x.dtype)


def resize_bilinear(
    x: jnp.ndarray, size: Sequence[int], *, align_corners: bool, axes: tuple[int, int] = (1, 2),
    form: str = "gather",
) -> jnp.ndarray:
    """Bilinear resize without antialiasing, matching ``F.interpolate(mode="bilinear")``.

    Args:
      x: array with two spatial axes, e.g. (B, H, W, C) with ``axes=(1, 2)`` (the default).
      size: output (height, width).
      align_corners: PyTorch's flag. The official ZoeDepth uses True everywhere except the BEiT relative
        position table resize (False).
      axes: the (height, width) axes of ``x``.
      form: "gather" (taps gathered, interpolated in float32) or "matmul" (an interpolation matrix per axis,
        in x's dtype; accumulated in float32): the model's ``OpForms.resize``.
    Returns:
      ``x`` resized to ``size`` on ``axes``, same dtype.
    """
    if form not in RESIZE_FORMS:
        raise ValueError(f"unknown resize form {form!r}; expected one of {RESIZE_FORMS}")
    out_h, out_w = int(size[0]), int(size[1])
    # PyTorch interpolates both axes from the same four taps; doing it separably (width first) changes only
    # the fp32 rounding order.
    x = _lerp_axis(x, axes[1], out_w, align_corners, form)
    return _lerp_axis(x, axes[0], out_h, align_corners, form)


def _cubic_axis(x: jnp.ndarray, axis: int, out_size: int, a: float, scale_factor: float | None = None) -> jnp.ndarray:
    in_size = x.shape[axis]
    if in_size == out_size and scale_factor is None:
        return x
    return _apply_taps(x, axis, *cubic_taps(in_size, out_size, a, scale_factor))


def _apply_taps(x: jnp.ndarray, axis: int, index: np.ndarray, weights: np.ndarray) -> jnp.ndarray:
    """out[..., o, ...] = sum_k weights[o, k] * x[..., index[o, k], ...] along ``axis``, in float32, taps in order."""
    out_size = index.shape[0]
    shape = [1] * x.ndim
    shape[axis] = out_size
    out = None
    for k in range(index.shape[1]):
        w = jnp.asarray(weights[:, k].astype(np.float32)).reshape(shape)
        term = jnp.take(x, jnp.asarray(index[:, k].astype(np.int32)), axis=axis).astype(jnp.float32) * w
        out = term if out is None else out + term
    return out.astype(x.dtype)


def _keys_cubic_f32(x: np.ndarray, a: float) -> np.ndarray:
    """Keys' cubic-convolution kernel at |x|, evaluated in float32 as PyTorch's ``aa_filter``; zero from 2 on."""
    a = np.float32(a)
    x = np.abs(x.astype(np.float32))
    near = ((a + np.float32(2)) * x - (a + np.float32(3))) * x * x + np.float32(1)
    far = ((a * x - np.float32(5) * a) * x + np.float32(8) * a) * x - np.float32(4) * a
    return np.where(x < 1, near, np.where(x < 2, far, np.float32(0))).astype(np.float32)


@functools.lru_cache(maxsize=128)
def antialias_cubic_taps(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Source indices and weights of PyTorch's ``bicubic`` with ``antialias=True`` along one axis (its
    ``_upsample_bicubic2d_aa``, the PIL-style filter): Keys' kernel with A = -0.5, stretched by the scale when
    downsampling, taps outside the input dropped (not clamped) and the rest renormalised to sum 1. Computed in
    float32 with PyTorch's expressions (its weights for float32 input differ from exact ones by up to ~1e-6;
    these agree with them to ~2e-7).

    Returns:
      index: int32 (out_size, K); weights: float32 (out_size, K), zero beyond each output's taps.
    """
    f32 = np.float32
    scale = f32(f32(in_size) / f32(out_size))
    support = f32(2.0 * float(scale)) if scale >= 1 else f32(2.0)
    inv = f32(1.0 / float(scale)) if scale >= 1 else f32(1.0)
    width = int(np.ceil(support)) * 2 + 1
    index = np.zeros((out_size, width), np.int32)
    weights = np.zeros((out_size, width), np.float32)
    for i in range(out_size):
        center = f32(float(scale) * (i + 0.5))
        lo = max(int(float(center - support) + 0.5), 0)
        hi = min(int(float(center + support) + 0.5), in_size)
        taps = np.arange(lo, hi)
        args = ((taps.astype(np.float32) - center).astype(np.float64) + 0.5) * float(inv)
        w = _keys_cubic_f32(args.astype(np.float32), -0.5)
        total = f32(0)
        for v in w:  # summed in order, in float32
            total = f32(total + v)
        index[i, : hi - lo] = taps
        index[i, hi - lo:] = taps[-1]
        weights[i, : hi - lo] = w / total if total != 0 else w
    for arr in (index, weights):
        arr.setflags(write=False)  # cached and shared
    return index, weights


def resize_bicubic(
    x: jnp.ndarray, size: Sequence[int], *, a: float = -0.75, axes: tuple[int, int] = (1, 2),
    scale_factor: tuple[float, float] | None = None, antialias: bool = False,
) -> jnp.ndarray:
    """Bicubic resize with ``align_corners=False``, matching ``F.interpolate(mode="bicubic")`` (A = -0.75).

    Used by the official ``infer`` to bring the network-resolution depth back to the input size, and for the
    DINOv2 position embeddings.

    Args:
      x: array with two spatial axes ``axes`` (height, width).
      size: output (height, width).
      a: the cubic kernel's A (PyTorch: -0.75). Ignored with ``antialias``, whose filter has A = -0.5.
      scale_factor: (height, width) factors as given to ``F.interpolate(scale_factor=...)`` without
        ``recompute_scale_factor``: the source coordinate is then (dst + 0.5) / factor - 0.5 instead of
        (dst + 0.5) * in / out - 0.5, and an axis whose size does not change is still resampled. ``size`` must be
        the size PyTorch derives, floor(in * factor).
      antialias: PyTorch's ``antialias=True`` (``antialias_cubic_taps``); only with sizes, not factors.
    """
    if antialias:
        if scale_factor is not None:
            raise ValueError("resize_bicubic: antialias is implemented for output sizes, not scale factors")
        for axis, out_size in ((axes[1], int(size[1])), (axes[0], int(size[0]))):
            if x.shape[axis] != out_size:
                x = _apply_taps(x, axis, *antialias_cubic_taps(x.shape[axis], out_size))
        return x
    factors = (None, None) if scale_factor is None else tuple(float(f) for f in scale_factor)
    x = _cubic_axis(x, axes[1], int(size[1]), a, factors[1])
    return _cubic_axis(x, axes[0], int(size[0]), a, factors[0])
