"""Separable bilinear resize of (H, W, C) images in numpy, in both of PyTorch's corner conventions.

The official model resizes its input with ``F.interpolate(..., mode="bilinear", align_corners=True)``
(PrepForMidas); the DIODE/HyperSim/DIML/DDAD evaluation loaders pre-resize with torchvision's tensor
``Resize`` (bilinear, align_corners=False, no antialias in torchvision 0.14). Neither antialiases, so a plain
two-tap lerp per axis reproduces both; the source coordinates are computed in float32 as PyTorch does.
"""

from __future__ import annotations

import functools

import numpy as np


@functools.lru_cache(maxsize=64)
def linear_taps(in_size: int, out_size: int,
                align_corners: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """1-D lerp taps: int (out,) indices i0, i1 and float32 (out,) weight of i1."""
    dst = np.arange(out_size, dtype=np.float32)
    if align_corners:
        scale = np.float32((in_size - 1) / (out_size - 1)) if out_size > 1 else np.float32(0.0)
        src = scale * dst
    else:
        scale = np.float32(in_size / out_size)
        src = np.maximum(scale * (dst + np.float32(0.5)) - np.float32(0.5), np.float32(0.0))
    i0 = np.minimum(np.floor(src).astype(np.intp), in_size - 1)
    i1 = np.minimum(i0 + 1, in_size - 1)
    lam = (src - i0.astype(np.float32)).astype(np.float32)
    for a in (i0, i1, lam):
        a.setflags(write=False)  # cached and shared: guard against in-place edits
    return i0, i1, lam


def resize_bilinear(image: np.ndarray, size: tuple[int, int], *, align_corners: bool) -> np.ndarray:
    """Bilinear resize of an (H, W, C) or (H, W) array to ``size`` = (h, w); returns float32.

    uint8 input is resized in its 0..255 value range (convert to [0, 1] by dividing the result).
    """
    out_h, out_w = int(size[0]), int(size[1])
    in_h, in_w = image.shape[:2]
    x = image
    if in_h != out_h:
        i0, i1, lam = linear_taps(in_h, out_h, align_corners)
        lam = lam.reshape((-1,) + (1,) * (x.ndim - 1))
        a = x[i0].astype(np.float32, copy=False)
        b = x[i1].astype(np.float32, copy=False)
        x = a + (b - a) * lam
    if in_w != out_w:
        j0, j1, mu = linear_taps(in_w, out_w, align_corners)
        mu = mu.reshape((1, -1) + (1,) * (x.ndim - 2))
        a = x[:, j0].astype(np.float32, copy=False)
        b = x[:, j1].astype(np.float32, copy=False)
        x = a + (b - a) * mu
    return np.asarray(x, dtype=np.float32)
