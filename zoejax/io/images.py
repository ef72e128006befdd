"""Reading the user's images for prediction: one RGB image per file, with errors that name the file.

ZoeDepth takes 3-channel RGB. A grayscale, palette or RGBA file is refused unless the caller asks for the
conversion (``convert=True``: grey is replicated to three channels, alpha is dropped), because silently
flattening a transparency or a single-channel scan is rarely what was meant.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from PIL import Image

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm")
# Pillow raises many types for undecodable files (truncation, unknown format, bad headers).
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, Image.DecompressionBombError)


class ImageInputError(ValueError):
    """An input image that cannot be used; the message names the file and the reason."""


def read_image(path: str | os.PathLike, convert: bool = False) -> np.ndarray:
    """``path`` -> uint8 (H, W, 3) RGB. Raises ImageInputError (missing, unreadable, not RGB without
    ``convert``, empty)."""
    path = Path(path)
    if not path.is_file():
        raise ImageInputError(f"{path}: no such file")
    try:
        with Image.open(path) as img:
            img.load()
            mode = img.mode
            if mode != "RGB":
                if not convert:
                    raise ImageInputError(
                        f"{path}: image mode {mode} ({_describe_mode(mode)}); ZoeDepth takes RGB — convert it, or "
                        "pass --convert-to-rgb (grey is replicated to 3 channels, alpha dropped)")
                img = img.convert("RGB")
            arr = np.asarray(img)
    except ImageInputError:
        raise
    except _DECODE_ERRORS as e:
        raise ImageInputError(f"{path}: unreadable image ({type(e).__name__}: {e})") from None
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.size == 0:
        raise ImageInputError(f"{path}: decoded to shape {arr.shape}, expected (H, W, 3)")
    return arr


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
