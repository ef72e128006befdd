"""``make demo`` / ``zoejax-demo``: run ZoeDepth end to end on a synthetic scene and write depth PNGs.

Until the training issue lands this runs an *untrained* (randomly initialised, seeded) full-size model: it
shows the whole path — synthetic RGB-D scene, official preprocessing, jit-compiled forward, depth files —
with nothing downloaded. Its depth values are meaningless; the ground-truth depth is written beside them.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import jax
import numpy as np
from PIL import Image

from zoejax.io.depth_files import atomic_path, write_depth
from zoejax.models import presets
from zoejax.models.forward import make_forward
from zoejax.models.init import count_params, init_params
from zoejax.ops.resize import resize_bicubic
from zoejax.preprocess import network_size, to_network_input
from zoejax.training.synthetic_input import synthetic_scene


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default="demo_out", help="folder for the depth files (default: demo_out)")
    parser.add_argument("--backbone", default="beit_b384", choices=sorted(presets.BACKBONES),
                        help="encoder of the ZoeD_N model (default: beit_b384)")
    parser.add_argument("--height", type=int, default=480, help="synthetic image height in pixels")
    parser.add_argument("--width", type=int, default=640, help="synthetic image width in pixels")
    parser.add_argument("--seed", type=int, default=0, help="seed of the scene and of the weights")
    args = parser.parse_args(argv)

    out = Path(args.output)
    image, gt_depth = synthetic_scene(args.height, args.width, args.seed)
    config = presets.zoed_n(args.backbone)
    t0 = time.perf_counter()
    params = init_params(config, args.seed)
    print(f"ZoeD_N ({args.backbone}, untrained, seed {args.seed}): {count_params(params):,} parameters, "
          f"initialised in {time.perf_counter() - t0:.1f}s")

    size = network_size(args.height, args.width, (384, 512), keep_aspect_ratio=True)
    batch = to_network_input(image[None], size)
    forward = make_forward(config)
    t0 = time.perf_counter()
    depth = jax.block_until_ready(forward(params, np.asarray(batch))["metric_depth"])
    t1 = time.perf_counter()
    forward(params, np.asarray(batch))["metric_depth"].block_until_ready()
    t2 = time.perf_counter()
    print(f"network input {size[0]}x{size[1]}: first call (compile + run) {t1 - t0:.1f}s, then {t2 - t1:.2f}s")

    with atomic_path(out / "scene.png") as tmp:
        Image.fromarray(np.round(image * 255).astype(np.uint8)).save(tmp, format="PNG")
    files = [out / "scene.png"]
    files += write_depth(out / "scene_gt_depth", gt_depth)
    # Back to the image's size as the official infer does (bicubic, A = -0.75).
    pred = np.asarray(resize_bicubic(depth[..., None], (args.height, args.width)))[0, ..., 0]
    files += write_depth(out / "scene_pred_depth", pred)
    print(f"predicted depth: {pred.min():.3f} .. {pred.max():.3f} m (untrained weights; ground truth "
          f"{gt_depth.min():.2f} .. {gt_depth.max():.2f} m)")
    print("wrote " + ", ".join(str(f) for f in files))


if __name__ == "__main__":
    main()
