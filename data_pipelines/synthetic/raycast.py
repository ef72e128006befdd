"""Vectorised ray casting of axis-aligned boxes and planes through a pinhole camera (numpy).

World frame: x right, y up, z forward, metres. A camera ray is ``o + t * d`` with ``d`` built from camera
coordinates ``((u - cx) / f, (v - cy) / f, 1)``: its component along the optical axis is 1, so the ray
parameter ``t`` of a hit *is* the planar (z-buffer) depth that depth datasets store.
"""

from __future__ import annotations

import dataclasses

import numpy as np

_EPS = 1e-4


def rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Camera-to-world rotation (3, 3) whose columns are the camera's right, down and forward axes.

    Angles in radians: yaw about +y (positive turns right), pitch about the camera x axis (positive looks
    up), roll about the optical axis.
    """
    cy, sy = np.cos(yaw), np.sin(yaw)
    cp, sp = np.cos(pitch), np.sin(pitch)
    cr, sr = np.cos(roll), np.sin(roll)
    r_yaw = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    r_pitch = np.array([[1, 0, 0], [0, cp, sp], [0, -sp, cp]])
    r_roll = np.array([[cr, -sr, 0], [sr, cr, 0], [0, 0, 1]])
    base = np.array([[1.0, 0, 0], [0, -1.0, 0], [0, 0, 1.0]])  # columns: right, down, forward at rest
    return r_yaw @ r_pitch @ r_roll @ base


@dataclasses.dataclass(frozen=True)
class Camera:
    """Pinhole camera: image (height, width), focal length in pixels, principal point at the centre."""

    height: int
    width: int
    focal: float
    position: tuple[float, float, float]
    yaw: float = 0.0
    pitch: float = 0.0
    roll: float = 0.0

    @property
    def origin(self) -> np.ndarray:
        return np.asarray(self.position, np.float32)

    @property
    def axes(self) -> np.ndarray:
        return rotation(self.yaw, self.pitch, self.roll).astype(np.float32)

    def rays(self) -> np.ndarray:
        """World ray directions, float32 (H, W, 3), with unit component along the optical axis."""
        u = (np.arange(self.width, dtype=np.float32) - (self.width - 1) / 2) / self.focal
        v = (np.arange(self.height, dtype=np.float32) - (self.height - 1) / 2) / self.focal
        cam = np.empty((self.height, self.width, 3), np.float32)
        cam[..., 0] = u[None, :]
        cam[..., 1] = v[:, None]
        cam[..., 2] = 1.0
        return cam @ self.axes.T

    def project_bbox(self, points: np.ndarray) -> tuple[slice, slice] | None:
        """Pixel region (rows, cols) covering the projection of ``points`` (N, 3); the whole image when a
        point is behind the camera; None when the region is empty."""
        pc = (points - self.origin) @ self.axes  # (N, 3) camera coordinates
        if np.any(pc[:, 2] <= 0.05):
            return slice(0, self.height), slice(0, self.width)
        u = self.focal * pc[:, 0] / pc[:, 2] + (self.width - 1) / 2
        v = self.focal * pc[:, 1] / pc[:, 2] + (self.height - 1) / 2
        c0, c1 = max(int(np.floor(u.min())), 0), min(int(np.ceil(u.max())) + 1, self.width)
        r0, r1 = max(int(np.floor(v.min())), 0), min(int(np.ceil(v.max())) + 1, self.height)
        if c0 >= c1 or r0 >= r1:
            return None
        return slice(r0, r1), slice(c0, c1)


class HitBuffer:
    """Nearest hit per pixel: ``t`` float32 (H, W) (inf = no hit) and ``surface`` int32 (H, W) (-1).

    Ray directions are kept as three (H, W) planes: reductions over a trailing axis of size 3 are several
    times slower in numpy than elementwise ops on separate planes. Likewise selections use
    ``np.copyto(..., where=)``, min/max and mask arithmetic rather than ``np.where``/boolean indexing,
    which are not vectorised.
    """

    def __init__(self, camera: Camera):
        self.camera = camera
        self.origin = camera.origin
        self.dirs = np.ascontiguousarray(np.moveaxis(camera.rays(), -1, 0))  # (3, H, W)
        # An exactly axis-parallel ray gets a huge finite inverse so the slab test stays NaN-free.
        safe = np.where(np.abs(self.dirs) < 1e-12, np.float32(1e-12), self.dirs)
        self.inv = (np.float32(1.0) / safe).astype(np.float32)
        self.t = np.full((camera.height, camera.width), np.inf, np.float32)
        self.surface = np.full((camera.height, camera.width), -1, np.int32)

    def _commit(self, region: tuple[slice, slice], t_new: np.ndarray, surface: np.ndarray | int) -> None:
        t_old = self.t[region]  # views: the updates land in self.t / self.surface
        closer = (t_new > _EPS) & (t_new < t_old)
        np.copyto(t_old, t_new, where=closer)
        np.copyto(self.surface[region], surface, where=closer)

    def plane(self, axis: int, offset: float, surface: int) -> None:
        """The infinite plane ``x[axis] = offset``."""
        t_new = (np.float32(offset) - self.origin[axis]) * self.inv[axis]
        self._commit((slice(None), slice(None)), t_new, surface)

    def box(self, lo: np.ndarray, hi: np.ndarray, first_surface: int) -> None:
        """A solid axis-aligned box seen from outside; face ids ``first_surface + 2 * axis + (d < 0)``
        (entering through the low face when the ray component is positive)."""
        corners = np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1])
                            for z in (lo[2], hi[2])])
        region = self.camera.project_bbox(corners)
        if region is None:
            return
        nearest = float(((corners - self.origin) @ self.camera.axes)[:, 2].min())
        if nearest > 0 and nearest > float(self.t[region].max()):
            return  # entirely behind what is already visible there
        t_near = t_far = face = None
        for a in range(3):
            inv = self.inv[a][region]
            t1 = (np.float32(lo[a]) - self.origin[a]) * inv
            t2 = (np.float32(hi[a]) - self.origin[a]) * inv
            t_in, t_out = np.minimum(t1, t2), np.maximum(t1, t2)
            face_a = np.int32(2 * a) + (inv < 0)
            if t_near is None:
                t_near, t_far, face = t_in, t_out, face_a
            else:
                np.copyto(face, face_a, where=t_in > t_near)
                t_near = np.maximum(t_near, t_in)
                t_far = np.minimum(t_far, t_out)
        np.copyto(t_near, np.float32(np.inf), where=t_near > t_far)  # the ray misses the box
        self._commit(region, t_near, first_surface + face)

    def room(self, lo: np.ndarray, hi: np.ndarray, first_surface: int) -> None:
        """The inside of an axis-aligned box containing the camera; face ids ``first_surface + 2 * axis +
        (exit through the high face)``: 0/1 = x low/high wall, 2/3 = floor/ceiling, 4/5 = z near/far."""
        t_exit = face = None
        for a in range(3):
            high = self.dirs[a] > 0
            bound = np.float32(lo[a]) + high * np.float32(hi[a] - lo[a])
            t_a = (bound - self.origin[a]) * self.inv[a]
            face_a = np.int32(2 * a) + high
            if t_exit is None:
                t_exit, face = t_a, face_a
            else:
                np.copyto(face, face_a, where=t_a < t_exit)
                t_exit = np.minimum(t_exit, t_a)
        self._commit((slice(None), slice(None)), t_exit, first_surface + face)

    def points(self) -> np.ndarray:
        """World hit points as planes (3, H, W); pixels without a hit hold the origin."""
        t = self.t.copy()
        np.copyto(t, np.float32(0.0), where=~np.isfinite(t))
        return self.origin[:, None, None] + t[None] * self.dirs
