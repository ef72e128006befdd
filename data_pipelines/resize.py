"""Separable resizes of (H, W, C) images and (H, W) maps in numpy: bilinear in both of PyTorch's corner conventions,
and the bicubic and nearest resizes of Depth Anything V2's training transform.

The official model resizes its input with ``F.interpolate(..., mode="bilinear", align_corners=True)``
(PrepForMidas); the DIODE/HyperSim/DIML/DDAD evaluation loaders pre-resize with torchvision's tensor
``Resize`` (bilinear, align_corners=False, no antialias in torchvision 0.14). Neither antialiases, so a plain
two-tap lerp per axis reproduces both; the taps come from ``zoejax.ops.taps`` (PyTorch's float32 arithmetic).
Depth Anything V2's metric training resizes the image with OpenCV's ``INTER_CUBIC`` (PyTorch's bicubic: A = -0.75,
half-pixel centres, edges clamped, no antialias) and depth and mask with ``INTER_NEAREST``; both take an optional
output window, so a random crop of the resized frame computes only the pixels it keeps.
"""

from __future__ import annotations

import numpy as np

# PyTorch's index arithmetic, shared with the model's resizes
from zoejax.ops.taps import cubic_taps, linear_taps, nearest_index


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


Window = tuple[int, int]  # (start, length) of an output axis


def _window(taps: np.ndarray, window: Window | None) -> np.ndarray:
    return taps if window is None else taps[window[0]: window[0] + window[1]]


def resize_bicubic(image: np.ndarray, size: tuple[int, int], *, rows: Window | None = None,
                   cols: Window | None = None, scale: float = 1.0) -> np.ndarray:
    """Bicubic resize (PyTorch's, = OpenCV's ``INTER_CUBIC``) of an (H, W, C) or (H, W) array to ``size`` = (h, w),
    multiplied by ``scale``; returns float32. Values may overshoot the input's range, as the reference's do.

    ``rows`` / ``cols``: (start, length) output windows; the result is then that part of the full resize (its
    shape (rows length, cols length)), computed without the rest.
    """
    passes = [(0, int(size[0]), rows), (1, int(size[1]), cols)]
    # The pass whose intermediate is smaller goes first: kept rows x input width, or input height x kept columns.
    kept = [w[1] if w is not None else n for _, n, w in passes]
    if kept[0] * image.shape[1] > image.shape[0] * kept[1]:
        passes.reverse()
    x = image  # uint8 stays uint8 until the first weighted tap (float32 from there)
    for axis, out_size, window in passes:
        if x.shape[axis] == out_size and window is None:
            continue
        index, weights = cubic_taps(x.shape[axis], out_size)
        index, weights = _window(index, window), _window(weights, window)
        shape = (-1,) + (1,) * (x.ndim - 1) if axis == 0 else (1, -1) + (1,) * (x.ndim - 2)
        out = np.take(x, index[:, 0], axis=axis) * weights[:, 0].reshape(shape)
        for k in range(1, 4):  # the taps summed in order, in float32, as PyTorch does
            out += np.take(x, index[:, k], axis=axis) * weights[:, k].reshape(shape)
        x = out
    x = x.astype(np.float32, copy=x is image)  # never scale the caller's array in place
    if scale != 1.0:
        x *= np.float32(scale)
    return x


def resize_nearest(array: np.ndarray, size: tuple[int, int], *, rows: Window | None = None,
                   cols: Window | None = None) -> np.ndarray:
    """Nearest resize (PyTorch's ``nearest``, = OpenCV's ``INTER_NEAREST``) of an (H, W, ...) array to ``size``,
    keeping its dtype; ``rows`` / ``cols`` as in :func:`resize_bicubic`."""
    i = _window(nearest_index(array.shape[0], int(size[0])), rows)
    j = _window(nearest_index(array.shape[1], int(size[1])), cols)
    return array[i[:, None], j[None, :]]
