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
