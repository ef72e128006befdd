"""World-space procedural materials and shading for the synthetic scenes.

Patterns are functions of the hit point's surface coordinates in *metres*, so their apparent size shrinks
with distance (a monocular depth cue a model can learn), and their contrast fades once a pattern period
approaches one pixel along either texture axis (box-filter band limiting, instead of aliasing into noise).
"""

from __future__ import annotations

import dataclasses

import numpy as np

PLAIN, CHECKER, STRIPES, PLANKS, WINDOWS, LANES = range(6)


@dataclasses.dataclass(frozen=True)
class Material:
    """Surface appearance.

    Attributes:
      kind: pattern id (PLAIN, CHECKER, STRIPES, PLANKS, WINDOWS, LANES).
      colour_a, colour_b: RGB in [0, 1]; the pattern blends between them.
      period: pattern period in metres.
      grain: amplitude of a fine world-space noise (0..1), a second scale cue.
    """

    kind: int
    colour_a: tuple[float, float, float]
    colour_b: tuple[float, float, float]
    period: float = 0.5
    grain: float = 0.1


def pick(axis: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray | None = None) -> np.ndarray:
    """Per pixel: ``a`` where axis == 0, ``b`` where 1, ``c`` (default ``b``) where 2; finite inputs only.

    Mask arithmetic, because ``np.where`` is not vectorised and costs ~10x an arithmetic pass.
    """
    if c is None:
        return b + (a - b) * (axis == 0)
    return a * (axis == 0) + b * (axis == 1) + c * (axis == 2)


def surface_coords(points: np.ndarray, normal_axis: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two in-plane coordinates (metres) of hit points (3, H, W) on axis-aligned faces.

    x-facing faces use (z, y), y-facing (x, z), z-facing (x, y): the second coordinate is "up" on walls.
    """
    x, y, z = points
    u = pick(normal_axis, z, x)
    v = pick(normal_axis, y, z, y)
    return u, v


def _hash(i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Deterministic pseudo-random value in [0, 1) per integer cell (i, j)."""
    h = np.sin(i * 12.9898 + j * 78.233) * 43758.5453
    return h - np.floor(h)


def _kind_pattern(k: int, u: np.ndarray, v: np.ndarray, period: np.ndarray) -> np.ndarray:
    """Blend factor of pattern kind ``k`` at surface coordinates u, v (metres, 1-D)."""
    if k == CHECKER:
        return np.mod(np.floor(u / period) + np.floor(v / period), 2.0)
    if k == STRIPES:
        return (np.mod(u / period, 1.0) < 0.5).astype(np.float32)
    if k == PLANKS:  # boards along u, each with its own shade, thin dark seams between them
        cv = np.floor(v / period)
        plank = 0.25 + 0.5 * _hash(cv, np.floor(u / (4 * period)))
        return np.where(v / period - cv < 0.08, np.float32(1.0), plank)
    if k == WINDOWS:  # a grid of panes (period wide, 1.2 * period tall floors) with a frame
        fu = np.mod(u / period, 1.0)
        fv = np.mod(v / (1.2 * period), 1.0)
        return ((fu > 0.2) & (fu < 0.8) & (fv > 0.3) & (fv < 0.85)).astype(np.float32)
    if k == LANES:  # dashed markings every `period` metres across; 3 m dashes, 6 m gaps along
        across = np.abs(u - period * np.round(u / period)) < 0.08
        return (across & (np.mod(v, 9.0) < 3.0)).astype(np.float32)
    return np.zeros_like(u)  # PLAIN


def pattern(kind: np.ndarray, u: np.ndarray, v: np.ndarray, period: np.ndarray,
            present: set[int] | None = None) -> np.ndarray:
    """Blend factor in [0, 1] between colour_a and colour_b for every pixel (all inputs (H, W)).

    Each kind is evaluated only on its own pixels. ``present``: the kinds that may occur; None = all.
    """
    out = np.zeros(u.shape, np.float32)
    flat_kind, flat_out = kind.reshape(-1), out.reshape(-1)
    for k in sorted(present if present is not None else set(range(6))):
        if k == PLAIN:
            continue
        idx = np.flatnonzero(flat_kind == k)
        if idx.size:
            flat_out[idx] = _kind_pattern(k, u.reshape(-1)[idx], v.reshape(-1)[idx], period.reshape(-1)[idx])
    return out


def band_limit(footprint: np.ndarray, period: np.ndarray | float) -> np.ndarray:
    """Contrast left after averaging a period-``period`` pattern over a pixel footprint (metres): the main
    lobe of the box filter's sinc, linearised: 1 - footprint / period, 0 once a period fits in a pixel."""
    return np.clip(1.0 - footprint / period, 0.0, 1.0).astype(np.float32)


def pattern_contrast(kind: np.ndarray, footprint: tuple[np.ndarray, np.ndarray],
                     period: np.ndarray) -> np.ndarray:
    """Band limit of each pattern along the texture axes it varies on (stripes/lanes: u; planks: v)."""
    along_u, along_v = band_limit(footprint[0], period), band_limit(footprint[1], period)
    both = along_u * along_v
    only_u = (kind == STRIPES) | (kind == LANES)
    only_v = kind == PLANKS
    return both + (along_u - both) * only_u + (along_v - both) * only_v


def grain_noise(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Fine world-space texture in [-1, 1] with ~0.1 m features."""
    return (np.sin(u * 61.0 + np.sin(v * 23.0)) * np.sin(v * 57.0 + np.sin(u * 19.0))).astype(np.float32)


def shade_materials(materials: list[Material], surface: np.ndarray, points: np.ndarray,
                    normal_axis_lut: np.ndarray, footprint: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Albedo planes (3, H, W) in [0, 1] of every pixel hit (``surface`` >= 0); other pixels are 0.

    Args:
      materials: material of each surface id.
      surface: int (H, W) surface id per pixel, -1 = no hit.
      points: (3, H, W) world hit points.
      normal_axis_lut: int (S,) axis of each surface's normal.
      footprint: two (H, W) arrays, metres per pixel on the surface along its u and v texture axes.
    """
    hit = surface >= 0
    sid = np.maximum(surface, 0)
    kind = np.array([m.kind for m in materials], np.int32)[sid]
    period = np.array([m.period for m in materials], np.float32)[sid]
    grain_amp = np.array([m.grain for m in materials], np.float32)[sid]
    u, v = surface_coords(points, normal_axis_lut[sid])
    s = pattern(kind, u, v, period, present={m.kind for m in materials})
    s = 0.5 + (s - 0.5) * pattern_contrast(kind, footprint, period)
    fine = 1.0 + grain_noise(u, v) * grain_amp * band_limit(np.maximum(*footprint), 0.2)
    col_a = np.array([m.colour_a for m in materials], np.float32).T  # (3, S)
    col_b = np.array([m.colour_b for m in materials], np.float32).T
    albedo = np.empty((3,) + surface.shape, np.float32)
    for c in range(3):
        a = col_a[c][sid]
        albedo[c] = (a + (col_b[c][sid] - a) * s) * fine * hit
    return albedo
