"""Input checks that run before anything is traced or compiled, so bad input gets a clear ValueError.

``check_image_shape`` needs only the static shape (it also runs inside the model at trace time);
``check_images`` additionally looks at the values (NaN / Inf, range) and is called by the host-side APIs
before the jitted forward.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def check_image_shape(shape: Sequence[int], multiple: int = 32) -> None:
    """Raise ValueError unless ``shape`` is (B, H, W, 3) with H and W positive multiples of ``multiple``.

    B may be a symbolic dimension (a dynamic-batch export, ``zoejax.serving.onnx``): symbolic sizes are >= 1."""
    shape = tuple(s if _is_symbolic(s) else int(s) for s in shape)
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


def _is_symbolic(size) -> bool:
    """A ``jax.export`` symbolic dimension (e.g. ``"B"``) rather than a number."""
    return not isinstance(size, (int, np.integer)) and hasattr(size, "dimension_as_value")


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


def check_domain_labels(domain, batch_size: int, domain_names: Sequence[str]) -> np.ndarray:
    """Host-side check of ZoeD_NK domain labels; returns them as an int32 (B,) numpy array.

    ``domain_names`` are the model's heads in label order (``ZoeDepthConfig.domain_names``; one name for a
    single-head model). Inside the jitted model a label outside [0, D) selects no head and the depth comes out as
    zeros, so every front door that accepts labels checks them here first and raises ValueError instead.
    """
    if len(domain_names) < 2:
        raise ValueError("domain labels are only meaningful for a multi-head (ZoeD_NK) model; this one has the "
                         f"single head {tuple(domain_names)}: pass domain=None")
    labels = np.asarray(domain)
    if labels.size and not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"domain labels must be integers, got dtype {labels.dtype}")
    labels = labels.astype(np.int32).reshape(-1)
    if labels.shape[0] != batch_size or labels.min(initial=0) < 0 or labels.max(initial=0) >= len(domain_names):
        choices = ", ".join(f"{i} = {name}" for i, name in enumerate(domain_names))
        raise ValueError(f"domain must be {batch_size} labels in [0, {len(domain_names) - 1}] ({choices}), "
                         f"got {labels.tolist()}")
    return labels
