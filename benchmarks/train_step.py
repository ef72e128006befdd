"""Training-step speed: zoejax's real train step (forward, SILog, backward, AdamW with the official groups, jitted
with donation) and a PyTorch train step of the reference model, for BEiT-L ZoeD_N at 384x512.

  python benchmarks/train_step.py                                        # sweep: remat x dtype (batch 1) + PyTorch
  python benchmarks/train_step.py --batch-sizes 1,2 --remat none,full --dtypes fp32 --no-torch
  python benchmarks/train_step.py --mesh-check                           # (8,1,1), (2,4,1), (2,2,2) on 8 simulated CPUs

Every configuration runs in its own subprocess (a fresh peak-memory figure, no allocator state carried over) and
reports images/s, median step time, compile time, peak device memory (``memory_stats()['peak_bytes_in_use']``
where the backend has it; on CPU the process's peak RSS) and MFU = analytic model FLOPs per step (3x the forward,
``zoejax/models/flops.py``) / step time / peak FLOP/s. The peak is ``--peak-tflops`` if given, else a table entry
for known GPUs (bf16 dense), else the measured throughput of a large fp32 matmul on this machine (so on CPU "MFU"
is relative to what XLA's own best matmul reaches here). The analytic count is printed next to XLA's cost analysis
of the lowered step (with batched attention, which it can count) and their ratio.

The PyTorch step (transformers ZoeDepthForDepthEstimation, eval mode so dropout/drop-path are off, SILog on the
same batch, AdamW lr 1.61e-4 wd 0.01, gradient clipping 0.1; bf16 through autocast) has no remat equivalent here.
When PyTorch rows run, zoejax starts from the reference's random weights (written once to a temporary .npz;
``--own-weights`` for ``init_params``), so the first step's losses, computed before any update, must agree; the
table shows them next to the last step's (which differ: the two optimizers' schedules and groups differ).
The mesh check compiles and runs two steps of the "small" preset on each layout; its times mean nothing.

``--host-memory keep`` runs both sides with ``zoejax/host_memory.py``'s setting (freed buffers stay in the process
instead of being page-faulted in again every step; ``ZOEJAX_KEEP_HOST_MEMORY=1`` for the CLIs); by default both
use glibc's default behaviour.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
GPU_PEAK_BF16_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0, "L4": 121.0, "A10": 125.0}
MESHES = ((8, 1, 1), (2, 4, 1), (2, 2, 2))


def _batch(batch: int, size: tuple[int, int], seed: int = 0):
    import numpy as np

    rng = np.random.default_rng(seed)
    depth = rng.uniform(0.5, 9.5, (batch, *size)).astype(np.float32)
    return {"image": rng.random((batch, *size, 3), dtype=np.float32), "depth": depth,
            "valid": np.ones((batch, *size), bool), "domain": np.zeros(batch, np.int32)}


def _peak_flops(dtype: str, override: float | None) -> tuple[float, str]:
    import jax
    import jax.numpy as jnp
    import numpy as np

    if override:
        return override * 1e12, "given"
    kind = jax.devices()[0].device_kind
    for name, tflops in GPU_PEAK_BF16_TFLOPS.items():
        if name in kind:
            return tflops * 1e12, f"{name} bf16 dense spec"
    n = 2048
    a = jnp.asarray(np.random.default_rng(0).random((n, n), dtype=np.float32))
    f = jax.jit(lambda a: a @ a)
    f(a).block_until_ready()
    best = float("inf")
    for _ in range(10):
        t0 = time.perf_counter()
        f(a).block_until_ready()
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best, "measured fp32 2048^3 matmul"


def _memory_gb() -> tuple[float, str]:
    import jax
    from common import peak_rss_gb

    stats = jax.devices()[0].memory_stats() or {}
    if "peak_bytes_in_use" in stats:
        return stats["peak_bytes_in_use"] / 1e9, "device peak"
    return peak_rss_gb(), "peak RSS"


def run_zoejax(spec: dict) -> dict:
    import jax

    from zoejax.models import flops, presets
    from zoejax.models.config import RematPolicy
    from zoejax.models.init import init_params
    from zoejax.models.zoedepth import ZoeDepth
    from zoejax.ops.platform import ANALYSIS
    from zoejax.training.optim import OptimConfig, make_optimizer
    from zoejax.training.state import create_train_state
    from zoejax.training.step import LossConfig, make_train_step

    cfg = dataclasses.replace(presets.zoed_n(spec["backbone"]), remat=RematPolicy(spec["remat"]),
                              dtype={"fp32": "float32", "bf16": "bfloat16"}[spec["dtype"]])
    tx = make_optimizer(OptimConfig(total_steps=1000))
    train_step = make_train_step(ZoeDepth(cfg), tx, LossConfig())
    params = _load_params(spec["weights"]) if spec.get("weights") else init_params(cfg, 0)
    state = create_train_state(params, tx)
    del params
    batch = jax.device_put(_batch(spec["batch"], spec["size"]))
    rng = jax.random.key(0)
    b, (h, w) = spec["batch"], spec["size"]
    analytic = flops.train_step_flops(cfg, b, h, w)
    xla = flops.xla_flops(make_train_step(ZoeDepth(cfg, ops=ANALYSIS), tx, LossConfig()), state, batch, rng)
    step = jax.jit(train_step, donate_argnums=0)
    t0 = time.perf_counter()
    compiled = step.lower(state, batch, rng).compile()
    compile_s = time.perf_counter() - t0
    times = []
    for i in range(spec["steps"] + 1):  # the first call is not timed
        t0 = time.perf_counter()
        state, metrics = compiled(state, batch, rng)
        jax.block_until_ready(metrics["loss"])
        if i:
            times.append(time.perf_counter() - t0)
        else:
            first_loss = float(metrics["loss"])
    mem, mem_kind = _memory_gb()
    return {"compile_s": compile_s, "step_times": times, "first_loss": first_loss, "loss": float(metrics["loss"]),
            "memory_gb": mem, "memory_kind": mem_kind, "flops_analytic": analytic, "flops_xla": xla,
            "finite": bool(metrics["finite"])}


def run_pytorch(spec: dict) -> dict:
    import contextlib

    import torch
    from common import peak_rss_gb
    from torch_reference import build_reference

    from zoejax.models import flops, presets

    cfg = presets.zoed_n(spec["backbone"])
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = build_reference(cfg).to(device)  # eval mode: no dropout / drop-path, same FLOPs
    opt = torch.optim.AdamW(model.parameters(), lr=1.61e-4, weight_decay=0.01)
    data = _batch(spec["batch"], spec["size"])
    pixels = ((torch.from_numpy(data["image"]).permute(0, 3, 1, 2) - 0.5) / 0.5).to(device)
    target = torch.from_numpy(data["depth"]).to(device)

    def step():
        autocast = (torch.autocast(device, dtype=torch.bfloat16) if spec["dtype"] == "bf16"
                    else contextlib.nullcontext())
        with autocast:
            pred = model(pixel_values=pixels).predicted_depth
        g = torch.log(pred.float() + 1e-7) - torch.log(target + 1e-7)
        loss = 10 * torch.sqrt(torch.var(g) + 0.15 * torch.mean(g) ** 2)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.1)
        opt.step()
        if device == "cuda":
            torch.cuda.synchronize()
        return float(loss)

    t0 = time.perf_counter()
    loss = first_loss = step()  # first step: allocates the optimizer state
    first_s = time.perf_counter() - t0
    times = []
    for _ in range(spec["steps"]):
        t0 = time.perf_counter()
        loss = step()
        times.append(time.perf_counter() - t0)
    if device == "cuda":
        mem, kind = torch.cuda.max_memory_allocated() / 1e9, "device peak"
    else:
        mem, kind = peak_rss_gb(), "peak RSS"
    b, (h, w) = spec["batch"], spec["size"]
    return {"compile_s": first_s, "step_times": times, "first_loss": first_loss, "loss": loss, "memory_gb": mem,
            "memory_kind": kind, "flops_analytic": flops.train_step_flops(cfg, b, h, w), "flops_xla": None,
            "finite": loss == loss}


def write_reference_weights(spec: dict) -> None:
    """The PyTorch reference's initial weights (``build_reference``, seed 0, as ``run_pytorch`` builds them) in
    zoejax's layout, one array per parameter in an uncompressed .npz: both sides then start from the same model."""
    import numpy as np
    from common import reference_and_params
    from flax.traverse_util import flatten_dict

    from zoejax.models import presets

    _, params = reference_and_params(presets.zoed_n(spec["backbone"]), seed=0)
    tmp = spec["path"] + ".tmp.npz"
    np.savez(tmp, **{"/".join(k): np.asarray(v) for k, v in flatten_dict(params).items()})
    os.replace(tmp, spec["path"])


def _load_params(path: str) -> dict:
    """Parameters written by ``write_reference_weights``, moved to the device one array at a time (so the host
    copy never holds the whole model next to the device one)."""
    import jax
    import numpy as np
    from flax.traverse_util import unflatten_dict

    with np.load(path) as data:
        return unflatten_dict({tuple(k.split("/")): jax.device_put(data[k]) for k in data.files})


def run_mesh_check(steps: int = 2) -> None:
    """In a process with 8 simulated CPU devices: the small preset's real step on each mesh layout."""
    import jax
    import numpy as np

    from zoejax.models import presets
    from zoejax.models.zoedepth import ZoeDepth
    from zoejax.training.optim import OptimConfig, make_optimizer
    from zoejax.training.sharding import batch_sharding, make_mesh, shard_batch
    from zoejax.training.state import create_sharded_state
    from zoejax.training.step import LossConfig, make_train_step

    cfg = presets.zoed_n("small")
    tx = make_optimizer(OptimConfig(total_steps=100))
    train_step = make_train_step(ZoeDepth(cfg), tx, LossConfig())
    batch = _batch(8, (128, 160))
    for layout in MESHES:
        mesh = make_mesh(layout)
        state, shardings = create_sharded_state(cfg, tx, mesh, jax.random.key(0))
        step = jax.jit(train_step, in_shardings=(shardings, batch_sharding(mesh), None),
                       out_shardings=(shardings, None), donate_argnums=0)
        t0 = time.perf_counter()
        compiled = step.lower(state, shard_batch(batch, mesh), jax.random.key(1)).compile()
        compile_s = time.perf_counter() - t0
        losses = []
        for _ in range(steps):
            state, metrics = compiled(state, shard_batch(batch, mesh), jax.random.key(1))
            losses.append(float(metrics["loss"]))
        qkv = state.params["core"]["pretrained"]["model"]["blocks_0"]["attn"]["qkv"]["kernel"]
        print(json.dumps({"mesh": layout, "devices": jax.device_count(), "compile_s": round(compile_s, 1),
                          "losses": losses, "finite": bool(np.all(np.isfinite(losses))),
                          "qkv_sharding": [str(a) for a in qkv.sharding.spec]}), flush=True)


def _worker(spec: dict) -> None:
    if spec.get("host_memory") == "keep":
        from zoejax.host_memory import keep_freed_host_memory

        spec["host_memory"] = "keep" if keep_freed_host_memory() else "default (not applicable here)"
    sys.path.insert(0, HERE)
    import common  # noqa: F401 - puts tests/ on sys.path for torch_reference

    if spec["impl"] == "weights":
        write_reference_weights(spec)
        return
    result = run_zoejax(spec) if spec["impl"] == "zoejax" else run_pytorch(spec)
    peak, peak_kind = _peak_flops(spec["dtype"], spec.get("peak_tflops"))
    print("RESULT " + json.dumps({**spec, **result, "peak_flops": peak, "peak_kind": peak_kind}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="beit_l384",
                        help="backbone preset, a key of zoejax.models.presets.BACKBONES (beit_l384, beit_b384, ...)")
    parser.add_argument("--size", type=int, nargs=2, default=(384, 512), metavar=("H", "W"),
                        help="input height and width in pixels (multiples of the patch size)")
    parser.add_argument("--batch-sizes", default="1", help="comma-separated batch sizes")
    parser.add_argument("--remat", default="none,full,dots", help="comma-separated RematPolicy values")
    parser.add_argument("--dtypes", default="fp32,bf16", help="comma-separated compute dtypes: fp32, bf16")
    parser.add_argument("--steps", type=int, default=3, help="timed steps after an untimed first one")
    parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch rows")
    parser.add_argument("--peak-tflops", type=float, default=None, help="peak FLOP/s for MFU (default: see doc)")
    parser.add_argument("--mesh-check", action="store_true", help="only the simulated 8-device mesh layouts")
    parser.add_argument("--host-memory", choices=("default", "keep"), default="default",
                        help="default: glibc's default allocator behaviour for both sides; keep: both keep freed "
                             "host memory in the process (zoejax/host_memory.py, ZOEJAX_KEEP_HOST_MEMORY=1)")
    parser.add_argument("--own-weights", action="store_true",
                        help="zoejax starts from init_params instead of the PyTorch reference's weights (the "
                             "default when PyTorch rows run, so that the first step's losses can be compared)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        if args.worker == "mesh":
            run_mesh_check()
        else:
            _worker(json.loads(args.worker))
        return

    sys.path.insert(0, HERE)
    from common import machine_line, median, parse_list

    print(f"date={datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC {machine_line()}", flush=True)
    if args.mesh_check:
        env = {**os.environ, "XLA_FLAGS": (os.environ.get("XLA_FLAGS", "")
                                           + " --xla_force_host_platform_device_count=8").strip()}
        subprocess.run([sys.executable, __file__, "--worker", "mesh"], env=env, check=True)
        print("mesh_check: ok")
        return

    specs = []
    base = {"backbone": args.backbone, "size": list(args.size), "steps": args.steps, "peak_tflops": args.peak_tflops,
            "host_memory": args.host_memory}
    for batch in parse_list(args.batch_sizes, int):
        for dtype in parse_list(args.dtypes):
            for remat in parse_list(args.remat):
                specs.append({**base, "impl": "zoejax", "batch": batch, "dtype": dtype, "remat": remat})
            if not args.no_torch:
                specs.append({**base, "impl": "pytorch", "batch": batch, "dtype": dtype, "remat": "none"})
    rows = []
    with tempfile.TemporaryDirectory(prefix="zoejax_bench_") as tmp:
        if not args.no_torch and not args.own_weights:
            # zoejax starts from the PyTorch reference's weights, so the first step's losses must agree.
            path = os.path.join(tmp, "weights.npz")
            weights_spec = json.dumps({**base, "impl": "weights", "path": path})
            subprocess.run([sys.executable, __file__, "--worker", weights_spec], check=True)
            specs = [{**spec, "weights": path} if spec["impl"] == "zoejax" else spec for spec in specs]
        for spec in specs:
            proc = subprocess.run([sys.executable, __file__, "--worker", json.dumps(spec)], capture_output=True,
                                  text=True)
            lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
            if proc.returncode or not lines:
                reason = (proc.stderr.strip().splitlines() or ["no output"])[-1][:200]
                print(f"FAILED {spec['impl']} {spec['dtype']} remat={spec['remat']} batch={spec['batch']}: {reason}",
                      flush=True)
                rows.append((spec, None))
                continue
            result = json.loads(lines[-1][len("RESULT "):])
            print(lines[-1], flush=True)
            rows.append((spec, result))

    h, w = args.size
    print(f"\nZoeD_N ({args.backbone}) train step at {h}x{w}; median of {args.steps} steps after one untimed; "
          f"host memory: {args.host_memory}")
    print("| impl | dtype | remat | batch | step s | images/s | compile (first step) s | memory GB | "
          "train GFLOP analytic | XLA | analytic/XLA | achieved TFLOP/s | MFU | loss (first step) | loss (last) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for spec, r in rows:
        if r is None:
            print(f"| {spec['impl']} | {spec['dtype']} | {spec['remat']} | {spec['batch']} | failed |" + " |" * 11)
            continue
        t = median(r["step_times"])
        achieved = r["flops_analytic"] / t
        xla = f"{r['flops_xla'] / 1e9:.4g}" if r["flops_xla"] else "n/a"
        ratio = f"{r['flops_analytic'] / r['flops_xla']:.3f}" if r["flops_xla"] else "n/a"
        print(f"| {spec['impl']} | {spec['dtype']} | {spec['remat']} | {spec['batch']} | {t:.2f} | "
              f"{spec['batch'] / t:.3f} | {r['compile_s']:.1f} | {r['memory_gb']:.1f} ({r['memory_kind']}) | "
              f"{r['flops_analytic'] / 1e9:.4g} | {xla} | {ratio} | {achieved / 1e12:.3f} | "
              f"{100 * achieved / r['peak_flops']:.1f}% of {r['peak_flops'] / 1e12:.2f} ({r['peak_kind']}) | "
              f"{r['first_loss']:.5f} | {r['loss']:.3f} |")


if __name__ == "__main__":
    main()
