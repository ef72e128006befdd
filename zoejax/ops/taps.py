"""PyTorch's source-index arithmetic for linear interpolation, in numpy only (no jax import), shared by the
model's resizes (``zoejax/ops/resize.py``) and the input pipeline's (``data_pipelines/resize.py``).

Indices and weights are computed on the host in float32 with PyTorch's formulas, including the single
rounding of its fused multiply-add, so both resizes agree with ``F.interpolate`` to ~1e-7.
"""

from __future__ import annotations

import functools

import numpy as np


def torch_scale(in_size: int, out_size: int, align_corners: bool) -> np.float32:
    """PyTorch's ``area_pixel_compute_scale`` in float32 (no user-given scale factor)."""
    if align_corners:
        return np.float32((in_size - 1) / (out_size - 1)) if out_size > 1 else np.float32(0.0)
    return np.float32(in_size / out_size)


def fma_source_index(scale: np.float32, out_size: int, offset: float) -> np.ndarray:
    """float32 ``scale * (dst + offset) - offset`` rounded once, as PyTorch's vectorised CPU kernels compute
    it (a fused multiply-add): evaluated exactly in float64, then rounded to float32."""
    dst = np.arange(out_size, dtype=np.float32) + np.float32(offset)
    return (np.float64(scale) * dst.astype(np.float64) - offset).astype(np.float32)


@functools.lru_cache(maxsize=128)
def linear_taps(in_size: int, out_size: int, align_corners: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices (i0, i1) and weight of i1 for 1-D linear interpolation, PyTorch's way.

    Returns:
      i0, i1: int32 (out_size,) source indices; lam: float32 (out_size,) weight of ``i1``.
    """
    scale = torch_scale(in_size, out_size, align_corners)
    if align_corners:
        src = fma_source_index(scale, out_size, offset=0.0)
    else:
        src = np.maximum(fma_source_index(scale, out_size, offset=0.5), np.float32(0.0))
    i0 = np.minimum(np.floor(src).astype(np.int32), in_size - 1)
    i1 = np.minimum(i0 + 1, in_size - 1)
    lam = (src - i0.astype(np.float32)).astype(np.float32)
    for a in (i0, i1, lam):
        a.setflags(write=False)  # cached and shared: guard against in-place edits
    return i0, i1, lam


def cubic_weights(t: np.ndarray, a: float = -0.75) -> np.ndarray:
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


@functools.lru_cache(maxsize=128)
def cubic_taps(in_size: int, out_size: int, a: float = -0.75,
               scale_factor: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Indices and weights of PyTorch's ``bicubic`` (align_corners=False, no antialias) along one axis: half-pixel
    centres, Keys' kernel with ``a``, taps beyond the edge clamped to it (OpenCV's ``INTER_CUBIC`` is the same
    filter). ``scale_factor``: the factor given to ``F.interpolate`` instead of a size (the source step is then
    1 / factor, rounded to float32, rather than in / out).

    Returns:
      index: int32 (out_size, 4) source indices; weights: float32 (out_size, 4).
    """
    if scale_factor is None:
        scale = torch_scale(in_size, out_size, align_corners=False)
    else:  # PyTorch samples with the given factor, computed as 1 / factor in float64 and rounded to float32
        scale = np.float32(1.0 / float(scale_factor))
    src = fma_source_index(scale, out_size, offset=0.5)  # no clamp for cubic
    base = np.floor(src).astype(np.int32)
    weights = cubic_weights(src - base.astype(np.float32), a)
    index = np.clip(base[:, None] - 1 + np.arange(4, dtype=np.int32), 0, in_size - 1).astype(np.int32)
    for arr in (index, weights):
        arr.setflags(write=False)  # cached and shared
    return index, weights


@functools.lru_cache(maxsize=128)
def nearest_index(in_size: int, out_size: int) -> np.ndarray:
    """Source indices of PyTorch's ``nearest`` (and OpenCV's ``INTER_NEAREST``): floor(dst * in / out), clamped.

    Returns int32 (out_size,)."""
    src = np.arange(out_size, dtype=np.float32) * torch_scale(in_size, out_size, False)
    index = np.minimum(np.floor(src).astype(np.int32), in_size - 1)
    index.setflags(write=False)
    return index
