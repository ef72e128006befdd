"""Tiny datasets written in each native layout, with hand-chosen pixel values the tests check.

Every depth map follows the same recipe so the expected metres are easy to state: a constant value, with a
few special pixels (0 = invalid, out-of-range values) at fixed places.
"""

from __future__ import annotations

import csv
import json
import os

import numpy as np
import pytest
from PIL import Image

H, W = 48, 64  # small frames for every dataset except the KITTI-sized ones (KB crop needs >= 352x1216)
KITTI_H, KITTI_W = 375, 1242


def write_rgb(path: str, image: np.ndarray) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(image).save(path, **({"quality": 98} if path.endswith(".jpg") else {}))


def write_u16(path: str, values: np.ndarray) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(np.asarray(values, np.uint16)).save(path)


def flat_image(value: int, h: int = H, w: int = W) -> np.ndarray:
    """A flat colour (JPEG keeps flat colours within +-1); channel c = value + 20 c."""
    img = np.empty((h, w, 3), np.uint8)
    for c in range(3):
        img[..., c] = value + 20 * c
    return img


def stored_depth(value: int, h: int = H, w: int = W) -> np.ndarray:
    """Stored integer depth: ``value`` everywhere, 0 at (0, 0), 65000 at (1, 1) (out of range for all)."""
    d = np.full((h, w), value, np.uint16)
    d[0, 0] = 0
    d[1, 1] = 65000
    return d


@pytest.fixture(scope="session")
def nyu_root(tmp_path_factory) -> str:
    """NYU BTS layout: sync/<scene>/rgb_#####.jpg + sync_depth_#####.png (mm), list with leading slashes."""
    root = str(tmp_path_factory.mktemp("nyu"))
    lines = []
    for i in range(8):
        scene = f"kitchen_{i % 2:04d}"
        write_rgb(f"{root}/sync/{scene}/rgb_{i:05d}.jpg", flat_image(10 + 20 * i))
        write_u16(f"{root}/sync/{scene}/sync_depth_{i:05d}.png", stored_depth(1000 + 250 * i))  # 1 m + i/4
        lines.append(f"/{scene}/rgb_{i:05d}.jpg /{scene}/sync_depth_{i:05d}.png 518.8579")
    with open(f"{root}/train.txt", "w") as f:
        f.write("\n".join(lines) + "\n")
    return root


@pytest.fixture(scope="session")
def kitti_root(tmp_path_factory) -> str:
    """KITTI BTS layout, full-size 375x1242 frames, sparse depth (/256), one ``None`` row."""
    root = str(tmp_path_factory.mktemp("kitti"))
    lines = []
    drive = "2011_09_26_drive_0001_sync"
    for i in range(3):
        img = np.zeros((KITTI_H, KITTI_W, 3), np.uint8)
        img[..., 0] = np.arange(KITTI_W) % 256  # column code, to check the KB crop offset
        img[..., 1] = (np.arange(KITTI_H) % 256)[:, None]  # row code
        write_rgb(f"{root}/raw/2011_09_26/{drive}/image_02/data/{i:010d}.png", img)
        depth = np.zeros((KITTI_H, KITTI_W), np.uint16)
        depth[::7, ::5] = 256 * (5 + i)  # sparse LiDAR-like points at 5 + i metres
        depth[KITTI_H - 1, 100] = 256 * 90  # 90 m: beyond max_depth 80
        write_u16(f"{root}/gts/{drive}/proj_depth/groundtruth/image_02/{i:010d}.png", depth)
        lines.append(f"2011_09_26/{drive}/image_02/data/{i:010d}.png "
                     f"{drive}/proj_depth/groundtruth/image_02/{i:010d}.png 721.5377")
    lines.append(f"2011_09_26/{drive}/image_02/data/{0:010d}.png None 721.5377")
    with open(f"{root}/eigen.txt", "w") as f:
        f.write("\n".join(lines) + "\n")
    return root


@pytest.fixture(scope="session")
def zero_shot_roots(tmp_path_factory) -> dict[str, str]:
    """Two frames of each zero-shot set in its native layout."""
    base = str(tmp_path_factory.mktemp("zeroshot"))
    roots = {}

    r = roots["sunrgbd"] = f"{base}/sunrgbd"
    for i in range(2):
        write_rgb(f"{r}/rgb/rgb/{i:04d}.jpg", flat_image(50))
        d = stored_depth(3000)
        d[2, 2] = 9000  # 9 m > 8 m: invalid for SUN RGB-D
        write_u16(f"{r}/gt/gt/{i:04d}.png", d)

    r = roots["ibims"] = f"{base}/ibims"
    names = ["corridor_01", "office_02"]
    for name in names:
        write_rgb(f"{r}/rgb/{name}.png", flat_image(60))
        write_u16(f"{r}/depth/{name}.png", np.full((H, W), 6553, np.uint16))  # 6553 * 50 / 65535 m
        invalid = np.full((H, W), 255, np.uint8)
        invalid[:, :4] = 0  # masked out columns
        transp = np.full((H, W), 255, np.uint8)
        transp[:3] = 0  # transparent rows
        for sub, m in (("mask_invalid", invalid), ("mask_transp", transp)):
            os.makedirs(f"{r}/{sub}", exist_ok=True)
            Image.fromarray(m).save(f"{r}/{sub}/{name}.png")
    with open(f"{r}/imagelist.txt", "w") as f:
        f.write("\n".join(names) + "\n")

    for name in ("diode_indoor", "diode_outdoor"):
        r = roots[name] = f"{base}/{name}"
        for i in range(2):
            stem = f"{r}/scene_0000{i}/scan_00{i}/0000{i}_indoors_000_010"
            write_rgb(stem + ".png", flat_image(70))
            d = np.full((H, W, 1), 4.5, np.float32)
            d[0, 0] = 0.0
            os.makedirs(os.path.dirname(stem), exist_ok=True)
            np.save(stem + "_depth.npy", d)
            np.save(stem + "_depth_mask.npy", np.zeros((H, W), np.float32))  # ignored, as officially

    r = roots["hypersim"] = f"{base}/hypersim"
    for i in range(2):
        images = f"{r}/ai_001_00{i}/images"
        write_rgb(f"{images}/scene_cam_00_final_preview/frame.000{i}.tonemap.jpg", flat_image(80))
        dist = np.full((H, W), 5.0, np.float32)
        dist[0, 0] = np.nan
        os.makedirs(f"{images}/scene_cam_00_geometry_hdf5", exist_ok=True)
        with open(f"{images}/scene_cam_00_geometry_hdf5/frame.000{i}.depth_meters.hdf5", "wb") as f:
            np.save(f, dist)  # read back by the npy reader the test injects (h5py is not installed)

    r = roots["vkitti2"] = f"{base}/vkitti2"
    rels = []
    for i in range(2):
        rel = f"rgb/Scene01/clone/frames/rgb/Camera_0/rgb_{i:05d}.jpg"
        write_rgb(f"{r}/{rel}", flat_image(90, KITTI_H, KITTI_W))
        d = np.full((KITTI_H, KITTI_W), 1234, np.uint16)  # 12.34 m
        d[-1, 600] = 65535  # 655.35 m sky: > 80 m is invalid
        write_u16(f"{r}/depth/Scene01/clone/frames/depth/Camera_0/depth_{i:05d}.png", d)
        rels.append(rel)
    with open(f"{r}/test.txt", "w") as f:
        f.write("\n".join(rels) + "\n")

    r = roots["ddad"] = f"{base}/ddad"
    os.makedirs(r)
    for i in range(2):
        write_rgb(f"{r}/{i:06d}_rgb.png", flat_image(100))
        d = np.full((H, W), 33.0, np.float32)
        d[0, 0] = 0.0
        np.save(f"{r}/{i:06d}_depth.npy", d)

    r = roots["diml_indoor"] = f"{base}/diml_indoor"
    for i in range(2):
        write_rgb(f"{r}/LR/scene_{i}/color/in_{i}_c.png", flat_image(110))
        write_u16(f"{r}/LR/scene_{i}/depth_filled/in_{i}_depth_filled.png", stored_depth(2500))

    r = roots["diml_outdoor"] = f"{base}/diml_outdoor"
    for i in range(2):
        write_rgb(f"{r}/scene_{i}/outleft/out_{i}.png", flat_image(120))
        d = stored_depth(20000)
        d[3, 3] = 1500  # 1.5 m < 2 m: invalid for DIML outdoor
        write_u16(f"{r}/scene_{i}/depthmap/out_{i}.png", d)
    return roots


def write_custom_list(root: str, rows: list[dict], fmt: str = "csv") -> str:
    path = os.path.join(root, f"list.{fmt}")
    with open(path, "w", newline="") as f:
        if fmt == "csv":
            keys = sorted({k for r in rows for k in r})
            writer = csv.DictWriter(f, fieldnames=keys)
            writer.writeheader()
            writer.writerows(rows)
        else:
            f.writelines(json.dumps(r) + "\n" for r in rows)
    return path


@pytest.fixture
def custom_root(tmp_path) -> str:
    """A custom dataset: PNG depth in mm with a mask, and an .npy depth in metres."""
    root = str(tmp_path)
    write_rgb(f"{root}/img/a.png", flat_image(30))
    write_u16(f"{root}/dep/a.png", stored_depth(2000))
    mask = np.full((H, W), 255, np.uint8)
    mask[:, -2:] = 0
    Image.fromarray(mask).save(f"{root}/dep/a_mask.png")
    write_rgb(f"{root}/img/b.jpg", flat_image(40))
    np.save(f"{root}/dep/b.npy", np.full((H, W), 7.25, np.float32))
    return root


DA2_H, DA2_W = 14, 28  # one patch high, two wide: the cover-crop to 14x14 keeps the frame's scale


def hypersim_distance(i: int) -> np.ndarray:
    """Frame i's ray distance (metres): 3 + 0.25 * column + i, NaN at (0, 0), 25 m (beyond 20 m) at (1, 1)."""
    dist = 3.0 + 0.25 * np.arange(DA2_W, dtype=np.float32)[None, :] + np.zeros((DA2_H, 1), np.float32) + i
    dist[0, 0] = np.nan
    dist[1, 1] = 25.0
    return dist


def vkitti2_centimetres(i: int) -> np.ndarray:
    """Frame i's stored depth (uint16 cm): 1234 + 100 i; 0 at (0, 0); 8000 (80.00 m, the last valid) at (0, 1);
    8001 at (0, 2); 65535 (sky) at (1, 1)."""
    d = np.full((DA2_H, DA2_W), 1234 + 100 * i, np.uint16)
    d[0, 0], d[0, 1], d[0, 2], d[1, 1] = 0, 8000, 8001, 65535
    return d


@pytest.fixture(scope="session")
def da2_roots(tmp_path_factory) -> dict[str, str]:
    """Depth Anything V2's two training sets in their shipped layouts with split files of relative paths
    (``train.txt``): Hypersim frame 0 with .hdf5 depth, frame 1 with the same array converted to .npy; Virtual KITTI 2
    frames 0 and 1."""
    import h5py

    base = str(tmp_path_factory.mktemp("da2"))
    roots = {"hypersim": f"{base}/hypersim", "vkitti2": f"{base}/vkitti2"}
    lines = []
    for i in range(2):
        images = f"ai_001_00{i + 1}/images"
        rgb = f"{images}/scene_cam_00_final_preview/frame.000{i}.tonemap.jpg"
        depth = f"{images}/scene_cam_00_geometry_hdf5/frame.000{i}.depth_meters." + ("hdf5" if i == 0 else "npy")
        write_rgb(f"{roots['hypersim']}/{rgb}", flat_image(60 + 20 * i, DA2_H, DA2_W))
        os.makedirs(os.path.dirname(f"{roots['hypersim']}/{depth}"), exist_ok=True)
        if i == 0:
            with h5py.File(f"{roots['hypersim']}/{depth}", "w") as f:
                f.create_dataset("dataset", data=hypersim_distance(i).astype(np.float16))
        else:
            np.save(f"{roots['hypersim']}/{depth}", hypersim_distance(i).astype(np.float16))
        lines.append(f"{rgb} {depth}")
    with open(f"{roots['hypersim']}/train.txt", "w") as f:
        f.write("\n".join(lines) + "\n")
    lines = []
    for i in range(2):
        frames = f"Scene01/clone/frames/{{}}/Camera_0/{{}}_{i:05d}"
        rgb, depth = frames.format("rgb", "rgb") + ".jpg", frames.format("depth", "depth") + ".png"
        write_rgb(f"{roots['vkitti2']}/{rgb}", flat_image(90 + 20 * i, DA2_H, DA2_W))
        write_u16(f"{roots['vkitti2']}/{depth}", vkitti2_centimetres(i))
        lines.append(f"{rgb} {depth}")
    with open(f"{roots['vkitti2']}/train.txt", "w") as f:
        f.write("\n".join(lines) + "\n")
    return roots
