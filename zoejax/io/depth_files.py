"""Writing depth maps: 16-bit PNG in millimetres, float32 .npy in metres, and a colourised preview.

Every file is written to a temporary name in the target folder and renamed into place, so a crash never
leaves a half-written output.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image

# Anchors of a perceptual dark-to-bright map (near = bright, far = dark after inversion in ``colorize``).
_ANCHORS = np.array([
    [0, 0, 4], [40, 11, 84], [101, 21, 110], [159, 42, 99], [212, 72, 66], [245, 125, 21], [250, 193, 39],
    [252, 255, 164]], dtype=np.float32)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it is renamed to ``path``, on error removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix or ".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary folder beside ``path``; on success it replaces ``path``, on error it is removed.
    Refuses a non-empty ``path`` unless ``overwrite``."""
    path = Path(path).absolute()
    if path.exists() and (not path.is_dir() or any(path.iterdir())) and not overwrite:
        raise FileExistsError(f"{path} exists and is not empty (pass overwrite=True / --overwrite to replace it)")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.partial-", dir=path.parent))
    try:
        yield tmp
        if path.exists():
            old = path.with_name(f".{path.name}.old-{os.getpid()}")
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def depth_to_uint16_mm(depth_m: np.ndarray) -> np.ndarray:
    """(H, W) metres -> uint16 millimetres, clipped to [0, 65.535] m; NaN/negative become 0 (invalid)."""
    d = np.nan_to_num(np.asarray(depth_m, np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    return np.clip(np.round(d * 1000.0), 0, 65535).astype(np.uint16)


def colorize(depth_m: np.ndarray, vmin: float | None = None, vmax: float | None = None) -> np.ndarray:
    """(H, W) metres -> (H, W, 3) uint8, near bright and far dark; range from the 2nd-98th percentiles."""
    d = np.asarray(depth_m, np.float32)
    valid = np.isfinite(d) & (d > 0)
    if not valid.any():
        return np.zeros(d.shape + (3,), np.uint8)
    lo = float(np.percentile(d[valid], 2)) if vmin is None else vmin
    hi = float(np.percentile(d[valid], 98)) if vmax is None else vmax
    t = 1.0 - np.clip(np.where(valid, (d - lo) / max(hi - lo, 1e-6), 0.0), 0.0, 1.0)
    pos = t * (len(_ANCHORS) - 1)
    i0 = np.clip(np.floor(pos).astype(int), 0, len(_ANCHORS) - 2)
    frac = (pos - i0)[..., None]
    rgb = _ANCHORS[i0] * (1 - frac) + _ANCHORS[i0 + 1] * frac
    rgb[~valid] = 0
    return np.round(rgb).astype(np.uint8)


def write_depth(stem: str | os.PathLike, depth_m: np.ndarray, *, npy: bool = True, color: bool = True
                ) -> list[Path]:
    """Write ``<stem>.png`` (uint16 mm), optionally ``<stem>.npy`` (float32 m) and ``<stem>_color.png``."""
    stem = Path(stem)
    depth_m = np.asarray(depth_m, np.float32)
    if depth_m.ndim != 2:
        raise ValueError(f"depth must be (H, W), got shape {depth_m.shape}")
    written = []
    png = stem.with_name(stem.name + ".png")
    with atomic_path(png) as tmp:
        Image.fromarray(depth_to_uint16_mm(depth_m)).save(tmp, format="PNG")
    written.append(png)
    if npy:
        path = stem.with_name(stem.name + ".npy")
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.save(f, depth_m)
        written.append(path)
    if color:
        path = stem.with_name(stem.name + "_color.png")
        with atomic_path(path) as tmp:
            Image.fromarray(colorize(depth_m)).save(tmp, format="PNG")
        written.append(path)
    return written
