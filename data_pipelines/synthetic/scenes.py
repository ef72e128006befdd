"""Procedural RGB-D scenes with exact metric depth: indoor rooms (<= 10 m) and outdoor streets (<= 80 m).

A scene is a camera, an optional room (the inside of a box: floor, walls, ceiling), an optional ground
plane split into road and sidewalk, and solid boxes (furniture, cars, buildings, poles), each with a
world-space material. :func:`render` ray-casts it in numpy; :func:`random_scene` draws one from
``(seed, index)`` alone, so frame i of a dataset is reproducible anywhere.

Depth cues a model can learn: perspective of floor/road lines and box edges, texture periods fixed in
metres (shrinking on screen with distance), light fall-off indoors and haze outdoors.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from data_pipelines.synthetic.raycast import Camera, HitBuffer
from data_pipelines.synthetic.textures import (
    CHECKER,
    LANES,
    PLAIN,
    PLANKS,
    STRIPES,
    WINDOWS,
    Material,
    pick,
    shade_materials,
)

INDOOR, OUTDOOR = 0, 1
SKY_TOP, SKY_HORIZON = np.array([0.35, 0.55, 0.9], np.float32), np.array([0.8, 0.85, 0.92], np.float32)


@dataclasses.dataclass(frozen=True)
class Box:
    lo: tuple[float, float, float]
    hi: tuple[float, float, float]
    material: Material


@dataclasses.dataclass(frozen=True)
class Scene:
    """Everything :func:`render` needs.

    Attributes:
      camera: the pinhole camera.
      room: (lo, hi, six materials: x-low wall, x-high wall, floor, ceiling, near wall, far wall) or None.
      ground: (road material, sidewalk material, road half width in metres) for the plane y = 0, or None.
      boxes: solid boxes.
      light: indoor point light position (metres) or None (outdoor: sun).
      sun: unit direction towards the sun (outdoor).
      fog: haze distance in metres (inf = none).
      max_depth: hits farther than this are reported as invalid (depth 0), like a sensor's range.
    """

    camera: Camera
    room: tuple[tuple[float, ...], tuple[float, ...], tuple[Material, ...]] | None = None
    ground: tuple[Material, Material, float] | None = None
    boxes: tuple[Box, ...] = ()
    light: tuple[float, float, float] | None = None
    sun: tuple[float, float, float] = (0.3, 0.8, -0.5)
    fog: float = float("inf")
    max_depth: float = 80.0


def render(scene: Scene, rng: np.random.Generator | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Ray-casts ``scene``.

    Returns:
      image: uint8 (H, W, 3) RGB.
      depth: float32 (H, W) planar depth in metres; 0 where nothing is hit or beyond ``max_depth``.
    """
    cam = scene.camera
    hits = HitBuffer(cam)
    materials: list[Material] = []
    normals: list[tuple[int, float]] = []  # (axis, sign) of each surface id

    if scene.room is not None:
        lo, hi, mats = scene.room
        hits.room(np.asarray(lo), np.asarray(hi), len(materials))
        for face in range(6):
            materials.append(mats[face])
            normals.append((face // 2, -1.0 if face % 2 else 1.0))  # inward normals
    ground_id = -1
    if scene.ground is not None:
        road, sidewalk, _ = scene.ground
        ground_id = len(materials)
        hits.plane(1, 0.0, ground_id)
        materials += [road, sidewalk]
        normals += [(1, 1.0), (1, 1.0)]
    # Near boxes first, so HitBuffer.box can skip boxes hidden behind them.
    origin = np.asarray(cam.position)
    for box in sorted(scene.boxes, key=lambda b: float(np.linalg.norm(np.clip(origin, b.lo, b.hi) - origin))):
        hits.box(np.asarray(box.lo), np.asarray(box.hi), len(materials))
        for face in range(6):
            materials.append(box.material)
            normals.append((face // 2, 1.0 if face % 2 else -1.0))  # entered through low face: -axis

    points = hits.points()
    surface = hits.surface
    if ground_id >= 0:
        road_half = scene.ground[2]
        surface = surface + ((surface == ground_id) & (np.abs(points[0]) > road_half))  # sidewalk id
    hit = surface >= 0
    sid = np.maximum(surface, 0)
    axis_lut = np.array([a for a, _ in normals], np.int32)
    sign_lut = np.array([s for _, s in normals], np.float32)
    axis, sign = axis_lut[sid], sign_lut[sid]

    t = hits.t.copy()
    np.copyto(t, np.float32(0.0), where=~hit)
    dx, dy, dz = hits.dirs
    ray_len = np.sqrt(dx * dx + dy * dy + dz * dz)
    d_normal = pick(axis, dx, dy, dz) * sign  # d . n
    # Pixel footprint on the surface along its two texture axes: t|d|/f across the ray's in-plane direction,
    # stretched by 1/cos(incidence) along it (a grazing floor is foreshortened in depth, not sideways).
    base = t * ray_len / np.float32(cam.focal)
    cos = np.maximum(np.abs(d_normal) / ray_len, np.float32(0.2))
    in_plane = np.maximum(1.0 - cos * cos, np.float32(1e-6))
    d_u = pick(axis, dz, dx) / ray_len  # texture axes as in textures.surface_coords
    d_v = pick(axis, dy, dz, dy) / ray_len
    stretch = 1.0 / cos - 1.0
    footprint = (base * (1.0 + stretch * d_u * d_u / in_plane), base * (1.0 + stretch * d_v * d_v / in_plane))
    albedo = shade_materials(materials, surface, points, axis_lut, footprint)  # (3, H, W)

    if scene.light is not None:
        to_light = np.asarray(scene.light, np.float32)[:, None, None] - points
        dist2 = np.sum(to_light * to_light, axis=0)
        l_normal = pick(axis, *to_light) * sign
        lambert = np.maximum(l_normal, 0.0) / np.sqrt(np.maximum(dist2, 1e-6))
        light = 0.3 + 1.6 * lambert / (1.0 + 0.06 * dist2)
    else:
        sun = np.asarray(scene.sun, np.float32)
        light = 0.5 + 0.6 * np.maximum(sun[axis] * sign, 0.0)
    colour = albedo * light

    if np.isfinite(scene.fog):
        haze = 1.0 - np.exp(-t * ray_len / np.float32(scene.fog))
        colour = colour * (1.0 - haze) + SKY_HORIZON[:, None, None] * haze
    if not hit.all():
        elevation = np.clip(dy / ray_len, 0.0, 1.0)  # sine of the ray's elevation
        sky = SKY_HORIZON[:, None, None] + (SKY_TOP - SKY_HORIZON)[:, None, None] * np.sqrt(elevation)
        np.copyto(colour, sky, where=~hit)
    image = colour.transpose(1, 2, 0) * np.float32(255.0)
    if rng is not None:
        # Sensor noise, uniform with std ~2.3 grey levels, from raw bytes (far cheaper than normals).
        noise = np.frombuffer(rng.bytes(image.size), np.uint8).reshape(image.shape)
        image += (noise.astype(np.float32) - np.float32(127.5)) * np.float32(8.0 / 255.0)
    image = np.clip(image + 0.5, 0, 255).astype(np.uint8)
    depth = t * (t <= scene.max_depth)  # t is already 0 where nothing is hit
    return image, depth


def _colour(rng: np.random.Generator, lo: float = 0.2, hi: float = 0.9) -> tuple[float, float, float]:
    return tuple(float(c) for c in rng.uniform(lo, hi, 3))


def _shade(c: tuple[float, ...], f: float) -> tuple[float, float, float]:
    return tuple(float(min(max(x * f, 0.0), 1.0)) for x in c)


def _indoor(rng: np.random.Generator, height: int, width: int) -> Scene:
    w, h, far = rng.uniform(3.0, 5.5), rng.uniform(2.4, 3.2), rng.uniform(4.0, 8.0)
    near = -rng.uniform(0.3, 1.0)
    lo, hi = (-w / 2, 0.0, near), (w / 2, h, far)
    wall = _colour(rng, 0.45, 0.9)
    floor_kind = PLANKS if rng.random() < 0.5 else CHECKER
    floor = Material(floor_kind, _colour(rng, 0.2, 0.7), _colour(rng, 0.2, 0.8),
                     rng.uniform(0.12, 0.25) if floor_kind == PLANKS else rng.uniform(0.3, 0.6), 0.15)
    walls = [Material(STRIPES if rng.random() < 0.6 else PLAIN, wall, _shade(wall, 0.8),
                      rng.uniform(0.08, 0.3), 0.1) for _ in range(4)]
    ceiling = Material(CHECKER, (0.92, 0.92, 0.9), (0.8, 0.8, 0.78), 0.6, 0.03)
    mats = (walls[0], walls[1], floor, ceiling, walls[2], walls[3])
    cam_x = rng.uniform(-0.25, 0.25) * w
    boxes = []
    for _ in range(rng.integers(2, 7)):
        bw, bh, bd = rng.uniform(0.4, 1.6), rng.uniform(0.3, min(1.9, h - 0.3)), rng.uniform(0.4, 1.2)
        x = rng.uniform(-w / 2 + bw / 2, w / 2 - bw / 2)
        z = rng.uniform(1.2 + bd / 2, max(far - bd / 2, 1.3 + bd / 2))
        if z - bd / 2 < 1.0 and abs(x - cam_x) < bw / 2 + 0.3:
            continue  # would swallow the camera's view
        kind = [CHECKER, STRIPES, PLAIN][rng.integers(3)]
        mat = Material(kind, _colour(rng), _colour(rng), rng.uniform(0.08, 0.3), 0.1)
        boxes.append(Box((x - bw / 2, 0.0, z - bd / 2), (x + bw / 2, bh, z + bd / 2), mat))
    cam = Camera(height, width, 0.81 * width * rng.uniform(0.95, 1.05), (cam_x, rng.uniform(1.0, 1.7), 0.0),
                 yaw=np.deg2rad(rng.uniform(-20, 20)), pitch=np.deg2rad(rng.uniform(-12, 5)),
                 roll=np.deg2rad(rng.uniform(-2, 2)))
    light = (rng.uniform(-w / 4, w / 4), h - 0.05, rng.uniform(1.0, max(far - 1.0, 1.5)))
    return Scene(cam, room=(lo, hi, mats), boxes=tuple(boxes), light=light, max_depth=10.0)


def _buildings(rng: np.random.Generator, side: float, inner: float) -> list[Box]:
    boxes, z = [], rng.uniform(-8.0, 0.0)
    while z < 140.0:
        length = rng.uniform(8.0, 25.0)
        x0 = inner + rng.uniform(0.0, 3.0)
        x_lo, x_hi = (x0, x0 + 12.0) if side > 0 else (-x0 - 12.0, -x0)
        facade = _colour(rng, 0.3, 0.8)
        kind = WINDOWS if rng.random() < 0.75 else STRIPES
        mat = Material(kind, facade, _shade(_colour(rng, 0.1, 0.4), 1.0), rng.uniform(1.5, 3.0), 0.12)
        boxes.append(Box((x_lo, 0.0, z), (x_hi, rng.uniform(5.0, 25.0), z + length), mat))
        z += length + rng.uniform(0.0, 4.0)
    return boxes


def _outdoor(rng: np.random.Generator, height: int, width: int) -> Scene:
    road_half, walk = rng.uniform(3.0, 6.0), rng.uniform(2.0, 4.0)
    asphalt = _shade((0.32, 0.32, 0.33), rng.uniform(0.7, 1.2))
    road = Material(LANES, asphalt, (0.92, 0.92, 0.88), road_half, 0.2)
    paving = (_colour(rng, 0.5, 0.75), _colour(rng, 0.4, 0.65))
    sidewalk = Material(CHECKER, *paving, rng.uniform(0.4, 0.8), 0.15)
    boxes = _buildings(rng, 1.0, road_half + walk) + _buildings(rng, -1.0, road_half + walk)
    lanes: dict[int, list[float]] = {0: [], 1: []}
    for _ in range(rng.integers(2, 9)):
        lane = int(rng.integers(2))
        z = rng.uniform(6.0, 70.0)
        if any(abs(z - other) < 7.0 for other in lanes[lane]):
            continue
        lanes[lane].append(z)
        x = (-0.5 if lane == 0 else 0.5) * road_half + rng.uniform(-0.4, 0.4)
        cw, ch, cl = rng.uniform(1.7, 2.0), rng.uniform(1.4, 1.8), rng.uniform(3.8, 4.8)
        mat = Material(STRIPES, _colour(rng, 0.1, 0.95), (0.15, 0.17, 0.2), 0.6, 0.05)
        boxes.append(Box((x - cw / 2, 0.0, z), (x + cw / 2, ch, z + cl), mat))
    for _ in range(rng.integers(2, 9)):
        x = (road_half + 0.5) * (1 if rng.random() < 0.5 else -1)
        z = rng.uniform(4.0, 80.0)
        pole = Material(PLAIN, _colour(rng, 0.2, 0.5), _colour(rng, 0.2, 0.5), 1.0, 0.1)
        boxes.append(Box((x - 0.12, 0.0, z - 0.12), (x + 0.12, rng.uniform(3.0, 7.0), z + 0.12), pole))
    cam = Camera(height, width, 0.58 * width * rng.uniform(0.95, 1.05),
                 (rng.uniform(-0.6, 0.6) * road_half, rng.uniform(1.5, 1.8), 0.0),
                 yaw=np.deg2rad(rng.uniform(-10, 10)), pitch=np.deg2rad(rng.uniform(-4, 2)),
                 roll=np.deg2rad(rng.uniform(-1, 1)))
    sun = np.array([rng.uniform(-1, 1), rng.uniform(0.4, 1.0), rng.uniform(-1, 1)])
    return Scene(cam, ground=(road, sidewalk, road_half), boxes=tuple(boxes),
                 sun=tuple(float(s) for s in sun / np.linalg.norm(sun)), fog=rng.uniform(60.0, 200.0),
                 max_depth=80.0)


def random_scene(seed: int, index: int, domain: int, height: int,
                 width: int) -> tuple[Scene, np.random.Generator]:
    """The scene of frame ``index`` and the generator for its sensor noise; a function of the arguments."""
    rng = np.random.default_rng([int(seed), int(index), int(domain), 0x5CE1E])
    scene = _indoor(rng, height, width) if domain == INDOOR else _outdoor(rng, height, width)
    return scene, rng


def render_frame(seed: int, index: int, domain: int, height: int = 480,
                 width: int = 640) -> tuple[np.ndarray, np.ndarray, float]:
    """Frame ``index`` of the synthetic dataset ``(seed, domain)``.

    Returns:
      uint8 (H, W, 3) image, float32 (H, W) depth in metres (0 = invalid), focal length in pixels.
    """
    scene, rng = random_scene(seed, index, domain, height, width)
    image, depth = render(scene, rng)
    return image, depth, float(scene.camera.focal)
