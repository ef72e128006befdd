"""Decoding of the image and depth files the datasets ship (Pillow for images, numpy for ``.npy``).

Every reader raises :class:`MissingFileError` or :class:`CorruptFileError` naming the path and the
``where`` context (list file and line) instead of a bare PIL/numpy exception.
"""

from __future__ import annotations

import os
import struct

import numpy as np
from PIL import Image

from data_pipelines.errors import CorruptFileError, MissingFileError
from zoejax.io.images import ImageInputError, upright_rgb

# Pillow raises a zoo of types for undecodable files (OSError for truncation, UnidentifiedImageError,
# SyntaxError from some plugins, ValueError/struct errors on bad headers).
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error,
                  Image.DecompressionBombError)


def _context(path: str, where: str) -> str:
    return f"{path} ({where})" if where else path


def require_file(path: str, where: str = "") -> None:
    """Raises MissingFileError if ``path`` is not an existing file."""
    if not os.path.isfile(path):
        raise MissingFileError(f"missing file: {_context(path, where)}")


def read_rgb(path: str, where: str = "") -> np.ndarray:
    """Any Pillow-readable image as uint8 (H, W, 3) RGB, upright by its EXIF orientation (grey, 16-bit grey
    scaled to 8 bits, and RGBA are converted: ``zoejax.io.images.upright_rgb``)."""
    require_file(path, where)
    try:
        with Image.open(path) as img:
            img.load()
            arr = upright_rgb(img, path, convert=True)
    except ImageInputError as e:
        raise CorruptFileError(f"unusable image {_context(path, where)}: {str(e).removeprefix(f'{path}: ')}") from None
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


def integer_depth_bits(path: str) -> int | None:
    """Bits per stored value of an integer depth image (8 for "L"/"1", 16, 32 for "I"), None for ``.npy`` and float
    images. Reads the header only."""
    if path.lower().endswith(".npy"):
        return None
    try:
        with Image.open(path) as img:
            mode = img.mode
    except _DECODE_ERRORS:
        return None  # reported by the reader
    return {"1": 8, "L": 8, "I;16": 16, "I;16B": 16, "I;16L": 16, "I;16N": 16, "I": 32}.get(mode)


PNG16_MAX = 65535


def write_depth_png(path: str, depth_m: np.ndarray, scale: float) -> None:
    """Writes float metres as a 16-bit PNG storing round(depth * scale); 0 (and NaN, inf, negative) = invalid.

    Raises ValueError when a depth exceeds what 16 bits hold at this scale (65535 / ``scale`` metres: 65.535 m
    for millimetres), instead of clipping it."""
    depth = np.asarray(depth_m, np.float64)
    depth = np.where(np.isfinite(depth) & (depth > 0), depth, 0.0)
    stored = np.round(depth * scale)
    if stored.max(initial=0) > PNG16_MAX:
        raise ValueError(f"{path}: depth up to {depth.max():.3f} m does not fit a 16-bit PNG at depth_scale {scale:g} "
                         f"(at most {PNG16_MAX / scale:.3f} m); use a smaller scale (256: up to 255.996 m)")
    Image.fromarray(stored.astype(np.uint16)).save(path)
