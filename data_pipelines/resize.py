"""Separable bilinear resize of (H, W, C) images in numpy, in both of PyTorch's corner conventions.

The official model resizes its input with ``F.interpolate(..., mode="bilinear", align_corners=True)``
(PrepForMidas); the DIODE/HyperSim/DIML/DDAD evaluation loaders pre-resize with torchvision's tensor
``Resize`` (bilinear, align_corners=False, no antialias in torchvision 0.14). Neither antialiases, so a plain
two-tap lerp per axis reproduces both; the taps come from ``zoejax.ops.taps`` (PyTorch's float32 arithmetic).
"""

from __future__ import annotations

import numpy as np

from zoejax.ops.taps import linear_taps  # PyTorch's index arithmetic, shared with the model's resizes


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
