"""Writes synthetic frames to disk in the custom-dataset layout (``zoejax-data synth``)."""

from __future__ import annotations

import csv
import json
import os

from PIL import Image
from tqdm import tqdm

from data_pipelines.files import write_depth_png
from data_pipelines.synthetic.scenes import INDOOR, OUTDOOR, render_frame

# mm for rooms (<= 10 m fits 16 bits with 1 mm steps); KITTI's 1/256 m for streets (<= 80 m).
DEPTH_SCALE = {INDOOR: 1000.0, OUTDOOR: 256.0}


def write_synthetic_dataset(out_dir: str, num: int, *, outdoor: bool = False, seed: int = 0,
                            size: tuple[int, int] = (480, 640), list_format: str = "csv",
                            image_format: str = "png", progress: bool = True) -> str:
    """Renders ``num`` frames into ``out_dir/{rgb,depth}/`` and writes the list file.

    Args:
      out_dir: output directory (created).
      num: number of frames.
      outdoor: street scenes instead of rooms.
      seed: scene seed; frame i is identical to ``SyntheticSource(seed=seed)[i]`` (before PNG quantisation).
      size: (H, W) of the frames.
      list_format: "csv" (``list.csv``) or "jsonl" (``list.jsonl``).
      image_format: "png" (lossless) or "jpg" (quality 95).

    Returns:
      Path of the list file (paths inside are relative to ``out_dir``).

    Raises:
      FileExistsError: ``out_dir`` already holds a dataset (a ``list.csv`` / ``list.jsonl``, or files in
        ``rgb/`` or ``depth/``): its list and frames are never cut or overwritten.
    """
    if list_format not in ("csv", "jsonl") or image_format not in ("png", "jpg"):
        raise ValueError("list_format must be csv|jsonl and image_format png|jpg")
    existing = [name for name in ("list.csv", "list.jsonl") if os.path.lexists(os.path.join(out_dir, name))]
    existing += [f"{name}/" for name in ("rgb", "depth")
                 if os.path.isdir(os.path.join(out_dir, name)) and os.listdir(os.path.join(out_dir, name))]
    if existing or (os.path.lexists(out_dir) and not os.path.isdir(out_dir)):
        held = f"already holds a dataset ({', '.join(existing)})" if existing else "is a file"
        raise FileExistsError(f"{out_dir} {held}; synth writes only into a new or empty folder: choose another "
                              "one (or delete it yourself)")
    domain = OUTDOOR if outdoor else INDOOR
    scale = DEPTH_SCALE[domain]
    os.makedirs(os.path.join(out_dir, "rgb"), exist_ok=True)
    os.makedirs(os.path.join(out_dir, "depth"), exist_ok=True)
    rows = []
    for i in tqdm(range(num), desc="rendering", unit="frame", disable=not progress):
        image, depth, focal = render_frame(seed, i, domain, size[0], size[1])
        rgb_rel = os.path.join("rgb", f"{i:05d}.{image_format}")
        depth_rel = os.path.join("depth", f"{i:05d}.png")
        options = {"quality": 95} if image_format == "jpg" else {}
        Image.fromarray(image).save(os.path.join(out_dir, rgb_rel), **options)
        write_depth_png(os.path.join(out_dir, depth_rel), depth, scale)
        rows.append({"image": rgb_rel, "depth": depth_rel, "depth_scale": scale, "focal": round(focal, 4)})
    list_path = os.path.join(out_dir, f"list.{list_format}")
    with open(list_path, "x", encoding="utf-8", newline="") as f:  # "x": never replaces a list
        if list_format == "csv":
            writer = csv.DictWriter(f, fieldnames=["image", "depth", "depth_scale", "focal"])
            writer.writeheader()
            writer.writerows(rows)
        else:
            f.writelines(json.dumps(r) + "\n" for r in rows)
    return list_path
