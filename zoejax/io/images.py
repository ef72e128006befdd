"""Reading the user's images for prediction: one RGB image per file, with errors that name the file.

ZoeDepth takes 3-channel RGB. A grayscale, palette or RGBA file is refused unless the caller asks for the
conversion (``convert=True``: grey is replicated to three channels, alpha is dropped), because silently
flattening a transparency or a single-channel scan is rarely what was meant. A 16-bit grey image is scaled to
8 bits (value / 257, so 65535 -> 255), not clipped at 255 as Pillow's own conversion does.

Images are turned upright by their EXIF orientation tag (a phone photo stored sideways is predicted the way
it is shown), with Pillow's ``ImageOps.exif_transpose``.
"""

from __future__ import annotations

import io
import os
import struct
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm")
# Pillow raises many types for undecodable files (truncation, unknown format, bad headers, a broken EXIF block).
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error,
                  Image.DecompressionBombError)
_SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N")


class ImageInputError(ValueError):
    """An input image that cannot be used; the message names the file and the reason."""


class ImageTooLargeError(ImageInputError):
    """An image with more pixels than the caller allows."""


def read_image(path: str | os.PathLike, convert: bool = False) -> np.ndarray:
    """``path`` -> uint8 (H, W, 3) RGB. Raises ImageInputError (missing, unreadable, not RGB without
    ``convert``, empty)."""
    path = Path(path)
    if not path.is_file():
        raise ImageInputError(f"{path}: no such file")
    try:
        with Image.open(path) as img:
            img.load()
            arr = upright_rgb(img, path, convert)
    except ImageInputError:
        raise
    except _DECODE_ERRORS as e:
        raise ImageInputError(f"{path}: unreadable image ({type(e).__name__}: {e})") from None
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.size == 0:
        raise ImageInputError(f"{path}: decoded to shape {arr.shape}, expected (H, W, 3)")
    return arr


def upright_rgb(img: Image.Image, path: str | os.PathLike, convert: bool) -> np.ndarray:
    """A loaded Pillow image -> uint8 (H, W, 3) RGB, turned by its EXIF orientation. Without ``convert`` a mode
    other than RGB raises ImageInputError; with it grey (8 or 16 bit, scaled to 8) is replicated, alpha dropped."""
    img = ImageOps.exif_transpose(img)
    mode = img.mode
    if mode == "RGB":
        return np.asarray(img)
    if not convert:
        raise ImageInputError(
            f"{path}: image mode {mode} ({_describe_mode(mode)}); ZoeDepth takes RGB — convert it, or "
            "pass --convert-to-rgb (grey is replicated to 3 channels, alpha dropped)")
    if mode in _SIXTEEN_BIT_MODES or mode in ("I", "F"):
        grey = _grey_to_8bit(np.asarray(img), mode, path)
        return np.repeat(grey[..., None], 3, axis=2)
    return np.asarray(img.convert("RGB"))


def decode_image_bytes(data: bytes, name: str, max_pixels: int, convert: bool = True) -> np.ndarray:
    """An uploaded file's bytes -> uint8 (H, W, 3) RGB (upright, as ``read_image``). Raises ImageInputError for
    empty bytes, bytes Pillow cannot decode and an image of more than ``max_pixels`` pixels (checked from the
    header, before decoding); ``name`` labels the messages."""
    if not data:
        raise ImageInputError(f"{name}: empty (0 bytes); send the image file's contents")
    try:
        with Image.open(io.BytesIO(data)) as img:
            width, height = img.size
            if width * height > max_pixels:
                raise ImageTooLargeError(f"{name}: {width}x{height} pixels is more than the {max_pixels} allowed; "
                                         "downscale it first")
            img.load()
            arr = upright_rgb(img, name, convert)
    except ImageInputError:
        raise
    except _DECODE_ERRORS as e:
        raise ImageInputError(f"{name}: not an image Pillow can read ({type(e).__name__}: {e})") from None
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.size == 0:
        raise ImageInputError(f"{name}: decoded to shape {arr.shape}, expected (H, W, 3)")
    return arr


def _grey_to_8bit(values: np.ndarray, mode: str, path: str | os.PathLike) -> np.ndarray:
    """16-bit (and 32-bit integer images holding 16-bit values) -> value / 257; float images in [0, 1] -> x 255."""
    values = values.astype(np.float64)
    finite = values[np.isfinite(values)]
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
    if mode == "F":
        if finite.size != values.size or low < 0 or high > 1:
            raise ImageInputError(f"{path}: float grayscale image with values in [{low:g}, {high:g}]; only [0, 1] "
                                  "can be converted to RGB: rescale it to 8-bit first")
        return np.round(values * 255).astype(np.uint8)
    if low < 0 or high > 65535:
        raise ImageInputError(f"{path}: 32-bit grayscale image with values in [{low:g}, {high:g}]; only 16-bit "
                              "values (0..65535) can be converted to RGB: rescale it to 8 or 16 bits first")
    return np.round(values / 257).astype(np.uint8)


def _describe_mode(mode: str) -> str:
    return {"L": "grayscale", "LA": "grayscale with alpha", "RGBA": "RGB with alpha", "P": "palette",
            "1": "1-bit", "I;16": "16-bit grayscale", "I": "32-bit grayscale", "F": "float grayscale",
            "CMYK": "CMYK"}.get(mode, "not RGB")


def expand_inputs(inputs: Iterable[str | os.PathLike]) -> list[Path]:
    """Files and folders -> image files in order (each folder's images sorted by name, not recursive).

    Raises ImageInputError when a path does not exist, or a folder holds no image file.
    """
    files: list[Path] = []
    for item in map(Path, inputs):
        if item.is_dir():
            found = sorted(p for p in item.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise ImageInputError(f"{item}: folder holds no image file ({', '.join(IMAGE_SUFFIXES)})")
            files += found
        elif item.is_file():
            files.append(item)
        else:
            raise ImageInputError(f"{item}: no such file or folder")
    return files


def output_stems(files: list[Path], out_dir: Path) -> list[Path]:
    """One output stem per input (``OUT/<name>``); inputs sharing a name get ``<name>_<ext>`` and, if still
    equal, a counter, so no output is written twice."""
    counts: dict[str, int] = {}
    for f in files:
        counts[f.stem] = counts.get(f.stem, 0) + 1
    stems, used = [], set()
    for f in files:
        name = f.stem if counts[f.stem] == 1 else f"{f.stem}_{f.suffix.lstrip('.').lower()}"
        candidate, k = name, 1
        while candidate in used:
            candidate, k = f"{name}_{k}", k + 1
        used.add(candidate)
        stems.append(out_dir / candidate)
    return stems
