"""Coloured point clouds from a depth map: back-projection through pinhole intrinsics, binary PLY output.

A pixel (u, v) with depth z (metres, along the optical axis, as ZoeDepth predicts) becomes
x = (u - cx) z / fx, y = (v - cy) z / fy, z, with u, v at pixel centres (column, row indices).
Axes follow the camera convention: x right, y down, z forward.
"""

from __future__ import annotations

import dataclasses
import math
import os

import numpy as np

from zoejax.io.safe_output import atomic_path

DEFAULT_FOV_DEGREES = 60.0


@dataclasses.dataclass(frozen=True)
class Intrinsics:
    """Pinhole intrinsics in pixels at the depth map's resolution."""

    fx: float
    fy: float
    cx: float
    cy: float

    @classmethod
    def from_fov(cls, height: int, width: int, fov_degrees: float = DEFAULT_FOV_DEGREES) -> Intrinsics:
        """Square pixels, principal point at the centre, ``fov_degrees`` across the image width."""
        if not 0 < fov_degrees < 180:
            raise ValueError(f"field of view must be in (0, 180) degrees, got {fov_degrees}")
        f = (width / 2) / math.tan(math.radians(fov_degrees) / 2)
        return cls(f, f, (width - 1) / 2, (height - 1) / 2)

    @classmethod
    def parse(cls, text: str) -> Intrinsics:
        """"fx,fy,cx,cy" (pixels) -> Intrinsics."""
        try:
            fx, fy, cx, cy = (float(v) for v in text.split(","))
        except ValueError:
            raise ValueError(f"intrinsics must be 'fx,fy,cx,cy' in pixels, got {text!r}") from None
        if not (fx > 0 and fy > 0):
            raise ValueError(f"focal lengths must be > 0, got fx={fx}, fy={fy}")
        return cls(fx, fy, cx, cy)


def backproject(depth: np.ndarray, intrinsics: Intrinsics) -> np.ndarray:
    """depth (H, W) metres -> points (H, W, 3) metres in the camera frame."""
    h, w = depth.shape
    v, u = np.meshgrid(np.arange(h, dtype=np.float32), np.arange(w, dtype=np.float32), indexing="ij")
    z = depth.astype(np.float32)
    return np.stack([(u - intrinsics.cx) * z / intrinsics.fx, (v - intrinsics.cy) * z / intrinsics.fy, z], -1)


def ply_bytes(depth: np.ndarray, rgb: np.ndarray, intrinsics: Intrinsics) -> tuple[bytes, int]:
    """The finite, positive-depth pixels of ``depth`` (H, W) metres, coloured by ``rgb`` (H, W, 3) uint8, as a
    binary little-endian PLY (float x, y, z; uchar red, green, blue). Returns (the file's bytes, the points)."""
    depth = np.asarray(depth, np.float32)
    rgb = np.asarray(rgb)
    if rgb.shape != depth.shape + (3,) or rgb.dtype != np.uint8:
        raise ValueError(f"rgb must be uint8 {depth.shape + (3,)}, got {rgb.dtype} {rgb.shape}")
    keep = np.isfinite(depth) & (depth > 0)
    points = backproject(depth, intrinsics)[keep]
    vertex = np.empty(len(points), dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4"),
                                          ("red", "u1"), ("green", "u1"), ("blue", "u1")])
    vertex["x"], vertex["y"], vertex["z"] = points[:, 0], points[:, 1], points[:, 2]
    vertex["red"], vertex["green"], vertex["blue"] = rgb[keep][:, 0], rgb[keep][:, 1], rgb[keep][:, 2]
    header = ("ply\nformat binary_little_endian 1.0\ncomment zoejax metric depth, metres, camera frame "
              f"(x right, y down, z forward); fx={intrinsics.fx:.3f} fy={intrinsics.fy:.3f} "
              f"cx={intrinsics.cx:.3f} cy={intrinsics.cy:.3f}\nelement vertex {len(vertex)}\n"
              "property float x\nproperty float y\nproperty float z\n"
              "property uchar red\nproperty uchar green\nproperty uchar blue\nend_header\n")
    return header.encode("ascii") + vertex.tobytes(), len(vertex)


def write_ply(path: str | os.PathLike, depth: np.ndarray, rgb: np.ndarray, intrinsics: Intrinsics) -> int:
    """Write ``ply_bytes(depth, rgb, intrinsics)`` to ``path`` atomically. Returns the number of points."""
    data, count = ply_bytes(depth, rgb, intrinsics)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(data)
    return count
