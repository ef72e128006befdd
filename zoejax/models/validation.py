"""Input checks that run before anything is traced or compiled, so bad input gets a clear ValueError.

``check_image_shape`` needs only the static shape (it also runs inside the model at trace time);
``check_images`` additionally looks at the values (NaN / Inf, range) and is called by the host-side APIs
before the jitted forward.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def check_image_shape(shape: Sequence[int], multiple: int = 32) -> None:
    """Raise ValueError unless ``shape`` is (B, H, W, 3) with H and W positive multiples of ``multiple``."""
    shape = tuple(int(s) for s in shape)
    if len(shape) != 4:
        raise ValueError(
            f"images must be a batch of rank 4 (B, H, W, 3), got rank {len(shape)} with shape {shape}; "
            "add a leading batch axis for a single image")
    b, h, w, c = shape
    if c != 3:
        raise ValueError(f"images must have 3 channels (RGB, channels last), got {c} in shape {shape}")
    if b < 1:
        raise ValueError(f"empty batch: shape {shape}")
    if h <= 0 or w <= 0 or h % multiple or w % multiple:
        raise ValueError(
            f"image height and width must be positive multiples of {multiple}, got {h}x{w}; resize with "
            "zoejax's preprocessing (official 'minimal' rule) or pad first")


def check_images(images, multiple: int = 32) -> np.ndarray:
    """Full host-side check of a concrete image batch; returns it as a float32 numpy array.

    Raises ValueError for a bad shape (see ``check_image_shape``), a non-numeric dtype, or NaN / Inf values.
    """
    arr = np.asarray(images)
    check_image_shape(arr.shape, multiple)
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise ValueError(f"images must be numeric, got dtype {arr.dtype}")
    arr = arr.astype(np.float32, copy=False)
    finite = np.isfinite(arr)
    if not finite.all():
        bad = np.unique(np.nonzero(~finite)[0]).tolist()
        raise ValueError(f"images contain NaN or Inf values (batch indices {bad[:10]})")
    return arr
