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


def _lerp(a: np.ndarray, b: np.ndarray, w: np.ndarray, scale: float) -> np.ndarray:
    """scale * (a + (b - a) * w) in float32 with one temporary (a, b: gathered rows or columns)."""
    out = np.subtract(b, a, dtype=np.float32)
    out *= w
    out += a
    if scale != 1.0:
        out *= np.float32(scale)
    return out


def resize_bilinear(image: np.ndarray, size: tuple[int, int], *, align_corners: bool,
                    scale: float = 1.0) -> np.ndarray:
    """Bilinear resize of an (H, W, C) or (H, W) array to ``size`` = (h, w); returns float32.

    The result is multiplied by ``scale`` (e.g. 1/255 to take uint8 levels to [0, 1] in the same pass).
    """
    out_h, out_w = int(size[0]), int(size[1])
    in_h, in_w = image.shape[:2]
    x = image.astype(np.float32)  # mixed uint8/float arithmetic below would be ~50% slower
    if in_h != out_h:
        i0, i1, lam = linear_taps(in_h, out_h, align_corners)
        x = _lerp(x[i0], x[i1], lam.reshape((-1,) + (1,) * (x.ndim - 1)), 1.0)
    if in_w != out_w:
        j0, j1, mu = linear_taps(in_w, out_w, align_corners)
        x = _lerp(x[:, j0], x[:, j1], mu.reshape((1, -1) + (1,) * (x.ndim - 2)), 1.0)
    if scale != 1.0:
        x *= np.float32(scale)
    return x
