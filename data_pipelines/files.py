"""Decoding of the image and depth files the datasets ship (Pillow for images, numpy for ``.npy``).

Every reader raises :class:`MissingFileError` or :class:`CorruptFileError` naming the path and the
``where`` context (list file and line) instead of a bare PIL/numpy exception.
"""

from __future__ import annotations

import os

import numpy as np
from PIL import Image

from data_pipelines.errors import CorruptFileError, MissingFileError

# Pillow raises a zoo of types for undecodable files (OSError for truncation, UnidentifiedImageError,
# SyntaxError from some plugins, ValueError/struct errors on bad headers).
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, Image.DecompressionBombError)


def _context(path: str, where: str) -> str:
    return f"{path} ({where})" if where else path


def require_file(path: str, where: str = "") -> None:
    """Raises MissingFileError if ``path`` is not an existing file."""
    if not os.path.isfile(path):
        raise MissingFileError(f"missing file: {_context(path, where)}")


def read_rgb(path: str, where: str = "") -> np.ndarray:
    """Any Pillow-readable image as uint8 (H, W, 3) RGB (grey and RGBA are converted)."""
    require_file(path, where)
    try:
        with Image.open(path) as img:
            if img.mode != "RGB":
                img = img.convert("RGB")
            else:
                img.load()
            arr = np.asarray(img)
    except _DECODE_ERRORS as e:
        raise CorruptFileError(f"unreadable image {_context(path, where)}: {e}") from None
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.size == 0:
        raise CorruptFileError(f"image {_context(path, where)} decoded to shape {arr.shape}")
    return arr


def read_png_raw(path: str, where: str = "") -> np.ndarray:
    """A single-channel PNG (8- or 16-bit) as its stored integer values, shape (H, W)."""
    require_file(path, where)
    try:
        with Image.open(path) as img:
            img.load()
            if img.mode not in ("I;16", "I;16B", "I", "L", "1", "F"):
                raise ValueError(f"expected a single-channel image, got mode {img.mode}")
            arr = np.asarray(img)
    except _DECODE_ERRORS as e:
        raise CorruptFileError(f"unreadable depth/mask image {_context(path, where)}: {e}") from None
    if arr.ndim != 2 or arr.size == 0:
        raise CorruptFileError(f"depth/mask image {_context(path, where)} decoded to shape {arr.shape}")
    return arr


def read_depth_png(path: str, scale: float, where: str = "") -> np.ndarray:
    """Integer depth PNG -> float32 (H, W) metres = stored value / ``scale`` (0 stays 0: invalid)."""
    raw = read_png_raw(path, where)
    return (raw.astype(np.float32) / np.float32(scale)).astype(np.float32)


def read_npy(path: str, where: str = "") -> np.ndarray:
    """A ``.npy`` array (no pickles)."""
    require_file(path, where)
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as e:
        raise CorruptFileError(f"unreadable array {_context(path, where)}: {e}") from None


def read_depth_any(path: str, scale: float, where: str = "") -> np.ndarray:
    """Depth from PNG (integer), TIFF (float 'F' mode) or ``.npy`` -> float32 (H, W) metres = value / scale.

    A trailing singleton channel (DIODE's (H, W, 1) arrays) is dropped.
    """
    if path.lower().endswith(".npy"):
        arr = read_npy(path, where)
        if arr.ndim == 3 and arr.shape[2] == 1:
            arr = arr[:, :, 0]
        if arr.ndim != 2 or arr.size == 0 or not np.issubdtype(arr.dtype, np.number):
            raise CorruptFileError(f"depth array {_context(path, where)} has shape {arr.shape} "
                                   f"and dtype {arr.dtype}; expected a numeric (H, W) array")
    else:
        arr = read_png_raw(path, where)
    return (arr.astype(np.float32) / np.float32(scale)).astype(np.float32)


def read_mask(path: str, where: str = "") -> np.ndarray:
    """A mask image as bool (H, W): nonzero = True."""
    return read_png_raw(path, where) != 0


def write_depth_png(path: str, depth_m: np.ndarray, scale: float) -> None:
    """Writes float metres as a 16-bit PNG storing round(depth * scale); 0 = invalid; clips at 65535."""
    stored = np.clip(np.round(np.nan_to_num(depth_m, nan=0.0) * scale), 0, 65535).astype(np.uint16)
    Image.fromarray(stored).save(path)
