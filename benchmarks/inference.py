"""Inference speed: the jitted zoejax forward against the PyTorch reference (transformers ZoeDepth with the same
weights; eager, and ``torch.compile`` where it works), timed alternately in one process.

  python benchmarks/inference.py                                   # BEiT-L ZoeD_N 384x512, batch 1 and 8, fp32 and bf16
  python benchmarks/inference.py --batch-sizes 1 --dtypes fp32     # the quick CPU run
  python benchmarks/inference.py --no-compile --repeats 7
  python benchmarks/inference.py --backbone beit_b384 --batch-sizes 1 --dtypes fp32 --no-compile --onnx

PyTorch runs in a spawned process that never imports jax's runtime (``torch_worker.py``; ``--torch-in-process``
for the old single-process way), and times its calls there; the two sides alternate, each idle while the other
runs. Every implementation is warmed up first (zoejax compiles, torch.compile traces), then each repeat times one
call of every implementation in a rotating order, so load from other processes hits all of them alike; the table
shows the median (and min) of the repeats. fp32 outputs are checked against PyTorch eager (relative L2 of metric_depth
<= 1e-4). Runs on the GPU when jax's default backend and torch.cuda are GPUs. The last line is
``speedup_vs_pytorch: X`` = PyTorch eager fp32 batch 1 median / zoejax fp32 batch 1 median.

``--onnx`` adds an ONNX Runtime row (fp32): zoejax's own export (``zoejax.serving.onnx``, the bare forward with the
same weights, fixed batch; its network resize is the identity at the benchmark size) run by onnxruntime's CPU
provider in this process, timed in the same rotation.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import functools
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np
import torch
from common import machine_line, median, parse_list, peak_rss_gb, reference_and_params
from numerics import rel_l2
from torch_worker import TorchWorker, pixel_values

from zoejax.models import presets
from zoejax.models.zoedepth import ZoeDepth

DTYPES = {"fp32": ("float32", torch.float32), "bf16": ("bfloat16", torch.bfloat16)}
PARITY_TOLERANCE = 1e-4


def zoejax_forward(cfg, params, dtype: str):
    """A jitted ``images -> metric_depth`` at the given compute dtype (params stay float32)."""
    model = ZoeDepth(dataclasses.replace(cfg, dtype=DTYPES[dtype][0]))
    fn = jax.jit(lambda p, x: model.apply({"params": p}, x)["metric_depth"])
    params = jax.device_put(params)
    return lambda images: fn(params, images).block_until_ready()


def onnx_forward(cfg, params, size: tuple[int, int], batch: int, workdir: str):
    """zoejax's ONNX export of the forward, run in ONNX Runtime (CPU): ``images -> metric_depth``."""
    import os

    import onnxruntime as ort

    from zoejax.inference import ZoeDepthModel
    from zoejax.serving.onnx import export_onnx

    path = os.path.join(workdir, f"forward_b{batch}.onnx")
    t0 = time.perf_counter()
    export_onnx(ZoeDepthModel(cfg, params, input_size=size), path, *size, batch_size=batch, program="forward")
    print(f"onnx export batch {batch}: {time.perf_counter() - t0:.1f}s, {os.path.getsize(path) / 1e6:.0f} MB",
          flush=True)
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    index = [o.name for o in sess.get_outputs()].index("metric_depth")
    return lambda images: sess.run(None, {"images": images})[index]


def torch_forward(module, dtype: str, device: str):
    """``pixel_values -> predicted_depth`` under no_grad; bf16 through autocast (weights stay float32)."""
    def run(pixel_values):
        autocast = (torch.autocast(device, dtype=torch.bfloat16) if dtype == "bf16"
                    else contextlib.nullcontext())
        with torch.no_grad(), autocast:
            out = module(pixel_values=pixel_values).predicted_depth
        if device == "cuda":
            torch.cuda.synchronize()
        return out
    return run


def _numpy(out) -> np.ndarray:
    """A jax array, torch tensor or numpy array (from the worker) as float32 numpy."""
    if isinstance(out, torch.Tensor):
        return out.float().cpu().numpy()
    return np.asarray(jax.device_get(out), np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="beit_l384",
                        help="backbone preset, a key of zoejax.models.presets.BACKBONES (beit_l384, beit_b384, ...)")
    parser.add_argument("--size", type=int, nargs=2, default=(384, 512), metavar=("H", "W"),
                        help="input height and width in pixels (multiples of the patch size)")
    parser.add_argument("--batch-sizes", default="1,8", help="comma-separated, e.g. 1,8")
    parser.add_argument("--dtypes", default="fp32,bf16", help="comma-separated subset of fp32,bf16")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per implementation (median)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed calls per implementation first")
    parser.add_argument("--no-compile", action="store_true", help="skip torch.compile")
    parser.add_argument("--onnx", action="store_true",
                        help="add an ONNX Runtime row (fp32): zoejax's ONNX export of the same forward")
    parser.add_argument("--torch-in-process", action="store_true",
                        help="run PyTorch in this process instead of a spawned one (the two runtimes' threads "
                             "then share the cores between calls)")
    parser.add_argument("--pause", type=float, default=0.5,
                        help="seconds of idle before each timed call, so the other runtime's worker threads "
                             "(XLA's pool, OpenMP) have stopped spinning and do not steal the 2 cores")
    args = parser.parse_args()
    batch_sizes, dtypes = parse_list(args.batch_sizes, int), parse_list(args.dtypes)
    for d in dtypes:
        if d not in DTYPES:
            parser.error(f"unknown dtype {d!r}; choose from {sorted(DTYPES)}")

    print(f"date={datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC {machine_line()}")
    cfg = presets.zoed_n(args.backbone)
    ref, params = reference_and_params(cfg)
    worker = None
    if args.torch_in_process:
        device = "cuda" if torch.cuda.is_available() else "cpu"
        ref = ref.to(device)
        compiled, compile_error = None, None
        if not args.no_compile:
            try:
                compiled = torch.compile(ref)
            except Exception as e:  # noqa: BLE001 - any failure means "n/a", reported with its reason
                compile_error = f"{type(e).__name__}: {e}"
    else:
        del ref  # the worker rebuilds it from the same seed
        worker = TorchWorker(cfg, seed=0, threads=torch.get_num_threads(), compile_model=not args.no_compile)
        device, compile_error = worker.info["device"], worker.info["compile_error"]
        compiled = None if (compile_error or args.no_compile) else "compiled"
    print(f"pytorch: {'this process' if worker is None else 'a spawned process'}, device={device}", flush=True)

    def seconds_and_output(fn):
        t0 = time.perf_counter()
        out = fn()
        return time.perf_counter() - t0, out

    rows, times = [], {}
    onnx_dir = tempfile.TemporaryDirectory(prefix="zoejax_bench_onnx_")
    for dtype in dtypes:
        for batch in batch_sizes:
            images = np.random.default_rng(batch).random((batch, *args.size, 3), dtype=np.float32)
            x = jax.device_put(jnp.asarray(images))
            impls = {"zoejax (jit)": functools.partial(seconds_and_output,
                                                       functools.partial(zoejax_forward(cfg, params, dtype), x))}
            if args.onnx and dtype == "fp32":
                impls["onnxruntime (zoejax export)"] = functools.partial(
                    seconds_and_output, functools.partial(onnx_forward(cfg, params, tuple(args.size), batch,
                                                                       onnx_dir.name), images))
            if worker is None:
                pv = pixel_values(images).to(device)
                impls["pytorch eager"] = functools.partial(
                    seconds_and_output, functools.partial(torch_forward(ref, dtype, device), pv))
                if compiled is not None:
                    impls["pytorch torch.compile"] = functools.partial(
                        seconds_and_output, functools.partial(torch_forward(compiled, dtype, device), pv))
            else:
                worker.set_input(batch, images)
                impls["pytorch eager"] = functools.partial(worker.call, "eager", batch, dtype)
                if compiled is not None:
                    impls["pytorch torch.compile"] = functools.partial(worker.call, "compile", batch, dtype)
            status = {}
            if compiled is None:
                status["pytorch torch.compile"] = compile_error or "skipped (--no-compile)"
            outputs, first_call = {}, {}
            for name, fn in list(impls.items()):
                try:
                    first = fn(want_output=True) if worker is not None and "pytorch" in name else fn()
                    first_call[name], outputs[name] = first
                    for _ in range(args.warmup - 1):
                        fn()
                except Exception as e:  # noqa: BLE001 - torch.compile may fail at its first call
                    status[name] = f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"
                    del impls[name]
            samples = {name: [] for name in impls}
            names = list(impls)
            for r in range(args.repeats):
                for name in names[r % len(names):] + names[: r % len(names)]:
                    time.sleep(args.pause)
                    samples[name].append(impls[name]()[0])
            eager = outputs.get("pytorch eager")
            for name in [*names, *status]:
                if name in status:
                    rows.append((dtype, batch, name, None, None, None, None, status[name]))
                    continue
                t = median(samples[name])
                times[(dtype, batch, name)] = t
                err = ""
                if eager is not None and name != "pytorch eager":
                    got = _numpy(outputs[name])
                    want = _numpy(eager)
                    err = rel_l2(got, want)
                    if dtype == "fp32" and not err <= PARITY_TOLERANCE:
                        raise SystemExit(f"{name} {dtype} batch {batch}: relative L2 {err:.2e} > {PARITY_TOLERANCE}")
                    err = f"{err:.1e}"
                rows.append((dtype, batch, name, t, min(samples[name]), batch / t, first_call[name], err))
            print(f"done {dtype} batch {batch}: " + "; ".join(
                f"{n} median {median(s):.3f}s, calls in order [{', '.join(f'{t:.2f}' for t in s)}]"
                for n, s in samples.items()), flush=True)

    print(f"\nBEiT-L ZoeD_N forward {args.size[0]}x{args.size[1]} ({args.backbone}), device={device}, "
          f"repeats={args.repeats} (median), warmup={args.warmup}, peak RSS {peak_rss_gb():.1f} GB")
    print("| dtype | batch | implementation | median s/call | min s/call | images/s | first call s | "
          "speedup vs eager | rel. L2 vs eager |")
    print("|---|---|---|---|---|---|---|---|---|")
    for dtype, batch, name, t, tmin, ips, first, err in rows:
        if t is None:
            print(f"| {dtype} | {batch} | {name} | n/a | n/a | n/a | n/a | n/a | {err} |")
            continue
        base = times.get((dtype, batch, "pytorch eager"))
        speed = f"{base / t:.2f}x" if base else "n/a"
        print(f"| {dtype} | {batch} | {name} | {t:.3f} | {tmin:.3f} | {ips:.2f} | {first:.1f} | {speed} | {err} |")
    if worker is not None:
        worker.close()
    onnx_dir.cleanup()
    jx, pt = times.get(("fp32", 1, "zoejax (jit)")), times.get(("fp32", 1, "pytorch eager"))
    print(f"speedup_vs_pytorch: {pt / jx:.2f}" if jx and pt else "speedup_vs_pytorch: n/a (needs fp32 batch 1)")


if __name__ == "__main__":
    main()
