"""Throughput of the full training input pipeline on NYU-shaped data.

Writes its own dataset in the NYU BTS layout (640x480 JPEG at quality 95 + 16-bit depth PNGs rendered by the
synthetic scene generator, so compression ratios are photo-like) into a temp dir, then times
``build_train`` end to end: decode, the NYU augmentation recipe (rotation +-1 deg on every sample, flip 0.5,
photometric jitter 0.5), bilinear resize to 384x512, masking and batching by 16, for several worker/thread
settings. Also prints where the time goes per image, stage by stage, in one process, and how long the synthetic
scene generator takes for a full-size frame (the demo's and tests' data source).

  python benchmarks/input_pipeline.py                       # ~1-2 minutes on 2 cores
  python benchmarks/input_pipeline.py --frames 128 --batches 6 --settings 0:0,2:0

The last line is ``images/s: X`` for the best setting.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np
from PIL import Image

from data_pipelines.config import DataConfig
from data_pipelines.files import read_depth_png, read_rgb, write_depth_png
from data_pipelines.pipeline import build_train
from data_pipelines.sources.base import make_example
from data_pipelines.synthetic.scenes import INDOOR, OUTDOOR, render_frame
from data_pipelines.transforms import (
    Finalize,
    PhotometricJitter,
    RandomHorizontalFlip,
    RandomRotate,
    ResizeImage,
)

BATCH, INPUT_SIZE = 16, (384, 512)


def write_nyu_layout(root: str, frames: int, unique: int = 24) -> str:
    """Writes ``frames`` rows (``unique`` rendered scenes, saved under distinct names); returns the list."""
    scenes = [render_frame(0, i, INDOOR, 480, 640) for i in range(unique)]
    lines = []
    for i in range(frames):
        image, depth, _ = scenes[i % unique]
        folder = os.path.join(root, f"scene_{i % 8:02d}")
        os.makedirs(folder, exist_ok=True)
        Image.fromarray(image).save(os.path.join(folder, f"rgb_{i:05d}.jpg"), quality=95)
        write_depth_png(os.path.join(folder, f"sync_depth_{i:05d}.png"), depth, 1000.0)
        lines.append(f"/scene_{i % 8:02d}/rgb_{i:05d}.jpg /scene_{i % 8:02d}/sync_depth_{i:05d}.png 518.8579")
    list_file = os.path.join(root, "train.txt")
    with open(list_file, "w") as f:
        f.write("\n".join(lines) + "\n")
    return list_file


def throughput(cfg: DataConfig, batches: int, warmup: int) -> tuple[float, float]:
    """(images/s over ``batches`` after ``warmup`` batches, seconds to the first batch)."""
    t0 = time.perf_counter()
    it = iter(build_train(cfg, seed=0, process_index=0, process_count=1))
    next(it)
    first = time.perf_counter() - t0
    for _ in range(warmup - 1):
        next(it)
    t0 = time.perf_counter()
    for _ in range(batches):
        batch = next(it)
    rate = batches * BATCH / (time.perf_counter() - t0)
    assert batch["image"].shape == (BATCH, *INPUT_SIZE, 3)
    it.close()
    return rate, first


def stage_profile(root: str, list_file: str, n: int = 24) -> list[tuple[str, float]]:
    """Milliseconds per image of each step, measured in this process (photometric counted at p = 0.5)."""
    with open(list_file) as f:
        rows = [line.split() for line in f.read().splitlines()[:n]]
    timings: dict[str, float] = {}

    def timed(name, fn, *args):
        t0 = time.perf_counter()
        out = fn(*args)
        timings[name] = timings.get(name, 0.0) + (time.perf_counter() - t0) * 1e3 / n
        return out

    rng = np.random.default_rng(0)
    finals = []
    for rgb, dep, _ in rows:
        image = timed("decode JPEG 640x480", read_rgb, os.path.join(root, rgb.lstrip("/")))
        depth = timed("decode 16-bit PNG", read_depth_png, os.path.join(root, dep.lstrip("/")), 1000.0)
        ex = make_example(image, depth, depth > 0, 518.8579, 0)
        ex = timed("rotate (image bilinear, depth nearest)", RandomRotate(1.0).random_map, ex, rng)
        ex = timed("flip (p=0.5)", RandomHorizontalFlip(0.5).random_map, ex, rng)
        ex = timed("photometric (p=0.5)", PhotometricJitter(0.5, brightness=(0.75, 1.25)).random_map, ex, rng)
        ex = timed("resize image to 384x512", ResizeImage(INPUT_SIZE).map, ex)
        finals.append(timed("mask + cast", Finalize(1e-3, 10.0).map, ex))
    for k in range(0, len(finals) - BATCH + 1, BATCH):
        group = finals[k:k + BATCH]
        timed("stack a batch of 16", lambda g: {key: np.stack([e[key] for e in g]) for key in g[0]}, group)
    timings["stack a batch of 16"] *= n / (BATCH * max(len(finals) // BATCH, 1))
    return list(timings.items())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=256, help="frames written (default 256)")
    parser.add_argument("--batches", type=int, default=12, help="timed batches per setting (default 12)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed batches per setting (default 3)")
    parser.add_argument("--settings", default="0:0,0:2,1:0,2:0,2:1",
                        help="comma-separated workers:read_threads pairs to time "
                        "(default 0:0,0:2,1:0,2:0,2:1)")
    parser.add_argument("--data-dir", default="",
                        help="write the dataset here and keep it (default: a temp dir)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        root = args.data_dir or tmp
        t0 = time.perf_counter()
        list_file = write_nyu_layout(root, args.frames)
        print(f"wrote {args.frames} NYU-layout frames (640x480 JPEG q95 + 16-bit PNG) in "
              f"{time.perf_counter() - t0:.1f} s to {root}; {os.cpu_count()} CPU cores")

        print("\nsynthetic scene renderer (data_pipelines/synthetic), 480x640, best of 5 frames:")
        for name, domain in (("indoor", INDOOR), ("outdoor", OUTDOOR)):
            times = []
            for i in range(6):  # the first frame warms caches and the allocator
                start = time.perf_counter()
                render_frame(0, i, domain, 480, 640)
                times.append(time.perf_counter() - start)
            print(f"  {name:<8} {1e3 * min(times[1:]):6.1f} ms per frame")

        print("\nper-image cost of each step (one process):")
        stages = stage_profile(root, list_file)
        for name, ms in stages:
            print(f"  {name:<40} {ms:6.2f} ms")
        total = sum(ms for _, ms in stages)
        print(f"  {'total':<40} {total:6.2f} ms  (= {1e3 / total:.0f} images/s per core)")

        base = {"sources": [{"name": "nyu", "root": root, "list_file": list_file}], "batch_size": BATCH,
                "image_size": list(INPUT_SIZE)}
        print(f"\nfull pipeline, batch {BATCH}, output {INPUT_SIZE[0]}x{INPUT_SIZE[1]}:")
        print(f"  {'workers':>7} {'threads':>7} {'images/s':>9} {'first batch s':>14}")
        best = 0.0
        for setting in args.settings.split(","):
            workers, threads = (int(v) for v in setting.split(":"))
            cfg = DataConfig.from_dict({**base, "num_workers": workers, "read_threads": threads})
            rate, first = throughput(cfg, args.batches, args.warmup)
            best = max(best, rate)
            print(f"  {workers:>7} {threads:>7} {rate:>9.1f} {first:>14.2f}", flush=True)
    print(f"images/s: {best:.1f}")


if __name__ == "__main__":
    main()
