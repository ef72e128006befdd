"""The official input preparation (``PrepForMidas`` and ``infer``'s padding), host-side where sizes are decided.

  * network size: the "minimal" rule: scale towards ``target`` (keeping the aspect ratio when asked, by the
    scale closer to 1), round each side to a multiple of 32 with numpy's half-to-even rounding;
  * resize: bilinear, align_corners=True, no antialiasing (``zoejax.ops.resize``);
  * ``infer`` padding: reflect-pad by int(sqrt(H/2) * 3) rows and int(sqrt(W/2) * 3) columns.
Normalisation ((x - 0.5) / 0.5) happens inside the model.
"""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np

from zoejax.ops.resize import resize_bilinear


def network_size(height: int, width: int, target: tuple[int, int], keep_aspect_ratio: bool,
                 multiple: int = 32) -> tuple[int, int]:
    """Network input (H, W) for an image of ``height`` x ``width`` (MiDaS ``Resize.get_size``, "minimal").

    Examples (spec 2.1): 572x746 (a padded 480x640) with target 384x512 and keep_aspect_ratio -> 384x512;
    without keeping the aspect ratio the result is ``target`` rounded to multiples of 32.
    """
    scale_h, scale_w = target[0] / height, target[1] / width
    if keep_aspect_ratio:
        if abs(1 - scale_w) < abs(1 - scale_h):
            scale_h = scale_w
        else:
            scale_w = scale_h
    new_h = int(np.round(scale_h * height / multiple) * multiple)
    new_w = int(np.round(scale_w * width / multiple) * multiple)
    return max(new_h, multiple), max(new_w, multiple)


def infer_padding(height: int, width: int, factor: float = 3.0) -> tuple[int, int]:
    """(pad_h, pad_w) of the official ``infer``: int(sqrt(H/2) * 3), int(sqrt(W/2) * 3)."""
    return int(math.sqrt(height / 2) * factor), int(math.sqrt(width / 2) * factor)


def reflect_pad(images: jnp.ndarray, pad_h: int, pad_w: int) -> jnp.ndarray:
    """(B, H, W, C) reflect-padded (edge pixel excluded, like torch's ``F.pad(mode='reflect')``)."""
    return jnp.pad(images, ((0, 0), (pad_h, pad_h), (pad_w, pad_w), (0, 0)), mode="reflect")


def to_network_input(images: jnp.ndarray, size: tuple[int, int]) -> jnp.ndarray:
    """Resize (B, H, W, 3) float images in [0, 1] to the network ``size`` (bilinear, align_corners=True)."""
    return resize_bilinear(images.astype(jnp.float32), size, align_corners=True)


def as_float_image(image: np.ndarray) -> np.ndarray:
    """uint8 [0, 255] or float [0, 1] (H, W, 3) -> float32 [0, 1]; anything else is a ValueError."""
    arr = np.asarray(image)
    if arr.ndim != 3 or arr.shape[-1] != 3:
        raise ValueError(f"expected one (H, W, 3) RGB image, got shape {arr.shape}")
    if arr.dtype == np.uint8:
        return arr.astype(np.float32) / 255.0
    if not np.issubdtype(arr.dtype, np.floating):
        raise ValueError(f"image must be uint8 or float in [0, 1], got dtype {arr.dtype}")
    if not np.all(np.isfinite(arr)):
        raise ValueError("image contains NaN or Inf values")
    if arr.min() < -1e-3 or arr.max() > 1 + 1e-3:
        raise ValueError(f"float image must be in [0, 1], got range [{arr.min():.3g}, {arr.max():.3g}]")
    return np.clip(arr, 0.0, 1.0).astype(np.float32)
