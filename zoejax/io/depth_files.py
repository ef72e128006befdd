"""Writing depth maps: 16-bit PNG in millimetres, float32 .npy in metres, and a colourised preview.

The files of one depth map are written as a set (``zoejax.io.safe_output.atomic_files``): temporary names in
the target folder, renamed into place once all are complete, so a failure never leaves a half-written file or
a new PNG next to an old NPY.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from zoejax.io.safe_output import atomic_files

# Anchors of a perceptual dark-to-bright map (near = bright, far = dark after inversion in ``colorize``).
_ANCHORS = np.array([
    [0, 0, 4], [40, 11, 84], [101, 21, 110], [159, 42, 99], [212, 72, 66], [245, 125, 21], [250, 193, 39],
    [252, 255, 164]], dtype=np.float32)


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


def _save_npy(path: Path, array: np.ndarray) -> None:
    with open(path, "wb") as f:  # an open file: np.save would append ".npy" to a name without it
        np.save(f, array)


def depth_output_paths(stem: str | os.PathLike, *, npy: bool = True, color: bool = True) -> list[Path]:
    """The files ``write_depth`` writes for ``stem``: ``<stem>.png`` [, ``<stem>.npy``] [, ``<stem>_color.png``]."""
    stem = Path(stem)
    suffixes = [".png"] + [".npy"] * npy + ["_color.png"] * color
    return [stem.with_name(stem.name + s) for s in suffixes]


def write_depth(stem: str | os.PathLike, depth_m: np.ndarray, *, npy: bool = True, color: bool = True,
                extra: Sequence[tuple[Path, Callable[[Path], object]]] = ()) -> list[Path]:
    """Write ``<stem>.png`` (uint16 mm), optionally ``<stem>.npy`` (float32 m) and ``<stem>_color.png``, and
    each ``(path, write)`` of ``extra`` (``write`` fills the temporary path it is given), all as one set.
    Returns the paths written."""
    depth_m = np.asarray(depth_m, np.float32)
    if depth_m.ndim != 2:
        raise ValueError(f"depth must be (H, W), got shape {depth_m.shape}")
    paths = depth_output_paths(stem, npy=npy, color=color)
    writers: list[Callable[[Path], object]] = [
        lambda tmp: Image.fromarray(depth_to_uint16_mm(depth_m)).save(tmp, format="PNG")]
    if npy:
        writers.append(lambda tmp: _save_npy(tmp, depth_m))
    if color:
        writers.append(lambda tmp: Image.fromarray(colorize(depth_m)).save(tmp, format="PNG"))
    paths += [Path(p) for p, _ in extra]
    writers += [w for _, w in extra]
    with atomic_files(paths) as temps:
        for write, tmp in zip(writers, temps, strict=True):
            write(tmp)
    return paths


def confidence_writers(stem: str | os.PathLike, confidence: np.ndarray | None
                       ) -> list[tuple[Path, Callable[[Path], object]]]:
    """``(path, write)`` pairs for ``write_depth``'s ``extra``: ``<stem>_confidence.npy`` (float32, 0-1) and
    ``<stem>_confidence.png`` (the colour map of ``colorize``, bright = confident). ``confidence`` (H, W); None
    gives the paths only."""
    stem = Path(stem)
    c = None if confidence is None else np.asarray(confidence, np.float32)
    return [(stem.with_name(stem.name + "_confidence.npy"), lambda tmp: _save_npy(tmp, c)),
            # colorize shows small values bright: 1 - c + 1e-3 maps confident pixels bright, on a fixed 0-1 scale
            (stem.with_name(stem.name + "_confidence.png"),
             lambda tmp: Image.fromarray(colorize(1.001 - c, 0.0, 1.0)).save(tmp, format="PNG"))]


def normalise_relative(relative: np.ndarray) -> np.ndarray:
    """(H, W) relative inverse depth -> float32 in [0, 1] by this image's min and max (1 = nearest), as the
    official Depth Anything ``run.py`` scales its preview; a constant map is all 0."""
    r = np.nan_to_num(np.asarray(relative, np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    lo, hi = float(r.min()), float(r.max())
    return ((r - lo) / (hi - lo) if hi > lo else np.zeros_like(r)).astype(np.float32)


def write_relative_depth(stem: str | os.PathLike, relative: np.ndarray, *, npy: bool = True, color: bool = True
                         ) -> list[Path]:
    """A relative model's files as one set: ``<stem>.png`` (uint16, the min-max normalised map x 65535, 65535 =
    nearest), optionally ``<stem>.npy`` (the raw float32 output, unnormalised) and ``<stem>_color.png`` (the
    normalised map, near bright and far dark). Returns the paths written."""
    relative = np.asarray(relative, np.float32)
    if relative.ndim != 2:
        raise ValueError(f"depth must be (H, W), got shape {relative.shape}")
    unit = normalise_relative(relative)
    paths = depth_output_paths(stem, npy=npy, color=color)
    writers: list[Callable[[Path], object]] = [
        lambda tmp: Image.fromarray(np.round(unit * 65535).astype(np.uint16)).save(tmp, format="PNG")]
    if npy:
        writers.append(lambda tmp: _save_npy(tmp, relative))
    if color:  # ``colorize`` shows small values bright: 2 - unit puts the nearest (unit 1) brightest
        writers.append(lambda tmp: Image.fromarray(colorize(2.0 - unit, 1.0, 2.0)).save(tmp, format="PNG"))
    with atomic_files(paths) as temps:
        for write, tmp in zip(writers, temps, strict=True):
            write(tmp)
    return paths
