"""Inference speed of every backbone: the jitted zoejax ZoeD_N forward against the PyTorch reference with the same
weights (BEiT: transformers ZoeDepth; Swin/SwinV2: transformers' ZoeDepth decoder and head on timm's encoder, as in
the tests), fp32, timed alternately after warm-up; medians, outputs compared. PyTorch runs in a spawned process
of its own (``torch_worker.py``) that rebuilds the same weights; ``--torch-in-process`` runs it beside jax instead.

  python benchmarks/backbones.py                                        # all six backbones, 384x512, batch 1
  python benchmarks/backbones.py --backbones swin2_t256,beit_b384 --repeats 5
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
from numerics import rel_l2
from torch_worker import TorchWorker, pixel_values

from zoejax.models import presets
from zoejax.models.init import count_params
from zoejax.models.zoedepth import ZoeDepth

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))

BACKBONES = ("beit_l384", "beit_b384", "swin2_l384", "swin2_b384", "swin2_t256", "swin_l384")


def reference(cfg):
    """(torch module in eval mode, zoejax params with its weights)."""
    if cfg.backbone.kind == "swin":  # the test references: timm encoder + transformers decoder for Swin
        import timm_import  # noqa: F401 - stands in for torchvision while timm is imported
        from swin_reference import zoedepth_reference

        return zoedepth_reference(cfg, seed=0, strict_img_size=False)
    from common import reference_and_params

    return reference_and_params(cfg, seed=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbones", default=",".join(BACKBONES), help="comma-separated preset names")
    parser.add_argument("--size", type=int, nargs=2, default=(384, 512), metavar=("H", "W"),
                        help="input height and width in pixels (multiples of the patch size)")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per implementation (median)")
    parser.add_argument("--torch-in-process", action="store_true",
                        help="run PyTorch in this process instead of a spawned one")
    parser.add_argument("--pause", type=float, default=0.5, help="idle seconds before each timed call")
    args = parser.parse_args()
    print(machine_line())
    print(f"date={datetime.date.today()} size={args.size[0]}x{args.size[1]} batch=1 fp32 repeats={args.repeats} "
          f"pytorch={'in-process' if args.torch_in_process else 'spawned process'}")
    rows = []
    for name in parse_list(args.backbones):
        cfg = presets.zoed_n(name)
        module, params = reference(cfg)
        x = np.random.default_rng(0).random((1, *args.size, 3), dtype=np.float32)
        model = ZoeDepth(cfg)
        fn = jax.jit(lambda p, im, model=model: model.apply({"params": p}, im)["metric_depth"])
        params = jax.device_put(params)
        xj = jnp.asarray(x)

        def run_jax(fn=fn, params=params, xj=xj):
            return fn(params, xj).block_until_ready()

        worker = None
        if args.torch_in_process:
            pixels = pixel_values(x)

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
        row = (name, count_params(params), compile_s, median(jax_t), median(torch_t), err)
        rows.append(row)
        print(f"{name}: params={row[1]:,} compile={compile_s:.1f}s zoejax={row[3]:.3f}s torch={row[4]:.3f}s "
              f"rel_l2={err:.1e} zoejax_calls={[round(t, 2) for t in jax_t]} "
              f"torch_calls={[round(t, 2) for t in torch_t]}", flush=True)
        del params, fn, run_torch
        if args.torch_in_process:
            del module
        gc.collect()
    print("\n| backbone | params (ZoeD_N) | zoejax s/img | PyTorch eager s/img | speedup | rel. L2 "
          "| zoejax compile s |")
    print("|---|---|---|---|---|---|---|")
    for name, n, compile_s, j, t, err in rows:
        print(f"| {name} | {n / 1e6:.1f} M | {j:.3f} | {t:.3f} | {t / j:.2f}x | {err:.1e} | {compile_s:.0f} |")


if __name__ == "__main__":
    main()
