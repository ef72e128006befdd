"""Inference speed of every backbone: the jitted zoejax forward against the PyTorch reference with the same weights,
fp32, timed alternately after warm-up; medians, outputs compared. PyTorch runs in a spawned process of its own
(``torch_worker.py``) that rebuilds the same weights; ``--torch-in-process`` runs it beside jax instead.

ZoeD_N on each ZoeDepth backbone (default 384x512): BEiT against transformers ZoeDepth; Swin/SwinV2 against
transformers' ZoeDepth decoder and head on timm's encoder, as in the tests. The Depth Anything entries (default
518x686, sides multiples of the patch, 14; ``depth_anything_torch.py``): ``da2_vitl``, Depth Anything V2 Large
relative, against transformers' ``DepthAnythingForDepthEstimation``; ``da1_metric_n``, Depth Anything V1 metric
(ZoeD_N's head on DINOv2-L and the Depth Anything DPT head), against that model composed from transformers'
Depth Anything and transformers' ZoeDepth metric head (transformers' ZoeDepth on a DINOv2 backbone is a different
network: its fusion and head upsample by 2 where Depth Anything resizes to exact sizes). ``--tiny`` runs the Depth
Anything entries on the registry's tiny DINOv2 instead, to check the script in seconds.

  python benchmarks/backbones.py                                        # the six ZoeDepth backbones, 384x512
  python benchmarks/backbones.py --backbones swin2_t256,beit_b384 --repeats 5
  python benchmarks/backbones.py --backbones da2_vitl,da1_metric_n     # Depth Anything, 518x686
"""

from __future__ import annotations

import argparse
import datetime
import gc
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import torch
from common import machine_line, median, parse_list, timed
from depth_anything_torch import DEFAULT_SIZE as DEPTH_ANYTHING_SIZE
from depth_anything_torch import ENTRIES as DEPTH_ANYTHING_ENTRIES
from depth_anything_torch import config_of, is_depth_anything
from numerics import rel_l2
from torch_worker import TorchWorker, reference_pixels

from zoejax.models import presets
from zoejax.models.config import ZoeDepthConfig
from zoejax.models.family import module_for
from zoejax.models.init import count_params

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))

BACKBONES = ("beit_l384", "beit_b384", "swin2_l384", "swin2_b384", "swin2_t256", "swin_l384")
DEPTH_ANYTHING = tuple(DEPTH_ANYTHING_ENTRIES)
ZOEDEPTH_SIZE = (384, 512)


def model_config(name: str, tiny: bool):
    """The zoejax config of a ``--backbones`` entry; ValueError naming the entries."""
    if name in DEPTH_ANYTHING:
        return config_of(name, tiny)
    if name not in BACKBONES:
        raise ValueError(f"unknown entry {name!r}; ZoeDepth backbones: {', '.join(BACKBONES)}; Depth Anything: "
                         f"{', '.join(DEPTH_ANYTHING)}")
    if tiny:
        raise ValueError(f"--tiny applies to the Depth Anything entries ({', '.join(DEPTH_ANYTHING)}), not {name}")
    return presets.zoed_n(name)


def input_size(name: str, cfg, size: tuple[int, int] | None) -> tuple[int, int]:
    """``size`` (H, W) pixels, or the entry's default, checked against the sides the model takes (multiples of
    32 for ZoeDepth's MiDaS core, of the patch, 14, for Depth Anything); ValueError with the nearest valid size."""
    h, w = size or (DEPTH_ANYTHING_SIZE if is_depth_anything(cfg) else ZOEDEPTH_SIZE)
    multiple = cfg.input_multiple if isinstance(cfg, ZoeDepthConfig) else cfg.backbone.patch_size
    if h % multiple or w % multiple or h <= 0 or w <= 0:
        near = "x".join(str(max(multiple, round(v / multiple) * multiple)) for v in (h, w))
        raise ValueError(f"--size {h}x{w} does not fit {name}: its height and width must be multiples of {multiple} "
                         f"(e.g. {near})")
    return h, w


def reference(cfg):
    """(torch module in eval mode, zoejax params with its weights)."""
    if is_depth_anything(cfg):
        from depth_anything_torch import reference_and_params as depth_anything_reference

        return depth_anything_reference(cfg, seed=0)
    if cfg.backbone.kind == "swin":  # the test references: timm encoder + transformers decoder for Swin
        import timm_import  # noqa: F401 - stands in for torchvision while timm is imported
        from swin_reference import zoedepth_reference

        return zoedepth_reference(cfg, seed=0, strict_img_size=False)
    from common import reference_and_params

    return reference_and_params(cfg, seed=0)


def output_key(cfg) -> str:
    """The forward's depth: ZoeDepth's metric depth, a Depth Anything model's own output."""
    return "metric_depth" if isinstance(cfg, ZoeDepthConfig) else cfg.output_key


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbones", default=",".join(BACKBONES),
                        help=f"comma-separated entries: ZoeDepth backbones ({', '.join(BACKBONES)}) and Depth "
                             f"Anything models ({', '.join(DEPTH_ANYTHING)})")
    parser.add_argument("--size", type=int, nargs=2, default=None, metavar=("H", "W"),
                        help="input height and width in pixels, for every entry (default: 384x512 for ZoeDepth, "
                             "518x686 for Depth Anything); multiples of 32 for ZoeDepth, of 14 for Depth Anything")
    parser.add_argument("--tiny", action="store_true",
                        help="Depth Anything entries on the tiny test DINOv2 (checks the script, times nothing real)")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per implementation (median)")
    parser.add_argument("--torch-in-process", action="store_true",
                        help="run PyTorch in this process instead of a spawned one")
    parser.add_argument("--pause", type=float, default=0.5, help="idle seconds before each timed call")
    args = parser.parse_args()
    entries = []
    try:  # every entry and size checked before anything is built
        for name in parse_list(args.backbones):
            cfg = model_config(name, args.tiny)
            entries.append((name, cfg, input_size(name, cfg, args.size)))
    except ValueError as e:
        parser.error(str(e))
    print(machine_line())
    print(f"date={datetime.date.today()} size={'x'.join(map(str, args.size)) if args.size else 'default'} batch=1 "
          f"fp32 repeats={args.repeats} pytorch={'in-process' if args.torch_in_process else 'spawned process'}"
          + (" tiny=True" if args.tiny else ""))
    rows = []
    for name, cfg, size in entries:
        module, params = reference(cfg)
        x = np.random.default_rng(0).random((1, *size, 3), dtype=np.float32)
        model, key = module_for(cfg), output_key(cfg)
        fn = jax.jit(lambda p, im, model=model, key=key: model.apply({"params": p}, im)[key])
        params = jax.device_put(params)
        xj = jnp.asarray(x)

        def run_jax(fn=fn, params=params, xj=xj):
            return fn(params, xj).block_until_ready()

        worker = None
        if args.torch_in_process:
            pixels = reference_pixels(cfg, x)

            def run_torch(want_output=False, module=module, pixels=pixels):
                with torch.no_grad():
                    t0 = time.perf_counter()
                    out = module(pixel_values=pixels).predicted_depth
                    return time.perf_counter() - t0, out.numpy() if want_output else None
        else:
            del module  # the child rebuilds it from the same seed
            gc.collect()
            worker = TorchWorker(cfg, seed=0, threads=torch.get_num_threads())
            worker.set_input(0, x)

            def run_torch(want_output=False, worker=worker):
                return worker.call("eager", 0, "fp32", want_output)

        compile_s = timed(run_jax)
        err = rel_l2(np.asarray(run_jax())[0], run_torch(want_output=True)[1][0])
        jax_t, torch_t = [], []
        for _ in range(args.repeats):
            time.sleep(args.pause)
            jax_t.append(timed(run_jax))
            time.sleep(args.pause)
            torch_t.append(run_torch()[0])
        if worker is not None:
            worker.close()
        row = (name, f"{size[0]}x{size[1]}", count_params(params), compile_s, median(jax_t), median(torch_t), err)
        rows.append(row)
        print(f"{name}: size={row[1]} params={row[2]:,} compile={compile_s:.1f}s zoejax={row[4]:.3f}s "
              f"torch={row[5]:.3f}s "
              f"rel_l2={err:.1e} zoejax_calls={[round(t, 2) for t in jax_t]} "
              f"torch_calls={[round(t, 2) for t in torch_t]}", flush=True)
        del params, fn, run_torch
        if args.torch_in_process:
            del module
        gc.collect()
    print("\n| backbone | size | params | zoejax s/img | PyTorch eager s/img | speedup | rel. L2 "
          "| zoejax compile s |")
    print("|---|---|---|---|---|---|---|---|")
    for name, size, n, compile_s, j, t, err in rows:
        print(f"| {name} | {size} | {n / 1e6:.1f} M | {j:.3f} | {t:.3f} | {t / j:.2f}x | {err:.1e} "
              f"| {compile_s:.0f} |")


if __name__ == "__main__":
    main()
