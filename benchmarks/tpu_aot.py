"""Ahead-of-time TPU compile of zoejax's real train step (or predict path) on this machine, without a TPU.

  python benchmarks/tpu_aot.py --config configs/zoedepth_n.py --topology v5p:2x2x1 --global-batch 16
  python benchmarks/tpu_aot.py --config configs/zoedepth_n.py:tiny --topology v5e:2x2 --mesh 1,4,1
  python benchmarks/tpu_aot.py --config configs/zoedepth_nk.py --topology v5p:2x2x1 --num-slices 2
  python benchmarks/tpu_aot.py --config configs/zoedepth_n.py --topology v5p:2x2x1 --inference --global-batch 8
  python benchmarks/tpu_aot.py --config configs/zoedepth_n.py --topology v5e:2x4 --sweep   # batch x remat x mesh
  python benchmarks/tpu_aot.py ... --override model.backbone.depth=6 --override "model.backbone.hooks=(1,2,3,5)"

``libtpu`` (``pip install "jax[tpu]==0.10.2"``) lets XLA compile for a TPU topology described by
``jax.experimental.topologies`` on a machine without one. The step compiled is the one training runs:
``zoejax.training.loop``'s jitted sharded train step (the config's optimizer, loss and model, state donated),
with ``abstract_train_state``'s sharded ``ShapeDtypeStruct`` leaves; ``--inference`` compiles the evaluator's
``predict_depth`` with flip TTA instead. The model is built with TPU's op forms (``ZoeDepth(..., ops=forms_for(
"tpu"))``, ``zoejax.ops.platform``): the CPU forms (per-head attention, Winograd, kernel-gradient products) are
not in it.

Figures per chip, all from the compiler: HBM (``memory_analysis``: arguments + outputs - aliased + temporaries)
against the chip's capacity, flops and bytes accessed and ``optimal_seconds`` (``cost_analysis``: XLA's TPU cost
model of the step, not a measurement), images/s = global batch / that time, MFU = analytic model FLOPs
(``zoejax/models/flops.py``, 3x the forward for a train step) per chip / time / the chip's bf16 peak (XLA's flop
count where the analytic count does not cover the model), and the collectives of the compiled module with the
bytes each moves (its result's size). ``--dump DIR`` writes the optimized HLO and a ranking of its fusions by the
compiler's estimated cycles (``hlo_ranking``). Calibration: a plain 8192^2 bf16 matmul reaches ~79% of v5p's peak
in this cost model, so ~80% is the ceiling of any figure here.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import importlib.util
import json
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

# libtpu takes /tmp/libtpu_lockfile for the life of a process; compiling for a topology needs no TPU, so
# several compiling processes (xdist workers, a sweep next to a test run) may share the machine.
os.environ.setdefault("ALLOW_MULTIPLE_LIBTPU_LOAD", "1")

GIB = 1024**3


@dataclasses.dataclass(frozen=True)
class Chip:
    """A TPU generation: HBM per chip (GiB), dense bf16 peak per chip (TFLOP/s), chips per host."""

    hbm_gib: float
    peak_tflops: float
    host_bounds: tuple[int, int, int]


# Public spec sheets (cloud.google.com/tpu/docs/system-architecture-tpu-vm).
CHIPS = {"v4": Chip(32, 275, (2, 2, 1)), "v5e": Chip(16, 197, (2, 2, 1)), "v5p": Chip(95, 459, (2, 2, 1)),
         "v6e": Chip(32, 918, (2, 2, 1))}
# Marketing names (TensorCores for v4/v5p, chips for v5e/v6e) -> topology.
ALIASES = {"v4-8": "v4:2x2x1", "v5e-8": "v5e:2x4", "v5p-8": "v5p:2x2x1", "v5p-64": "v5p:4x4x2",
           "v6e-8": "v6e:2x4", "v5e-4": "v5e:2x2"}
COLLECTIVES = ("all-gather", "reduce-scatter", "all-reduce", "all-to-all", "collective-permute")
_DTYPE_BYTES = {"pred": 1, "s8": 1, "u8": 1, "bf16": 2, "f16": 2, "s16": 2, "u16": 2, "f32": 4, "s32": 4,
                "u32": 4, "f64": 8, "s64": 8, "u64": 8, "c64": 8}


def chip_of(topology: str) -> tuple[str, Chip]:
    generation = topology.split(":")[0]
    if generation not in CHIPS:
        raise SystemExit(f"tpu_aot: unknown TPU generation {generation!r} in --topology {topology}; "
                         f"known: {sorted(CHIPS)} (e.g. v5p:2x2x1) or {sorted(ALIASES)}")
    return generation, CHIPS[generation]


def topology_devices(topology: str, num_slices: int) -> list:
    """The devices of ``num_slices`` slices of ``topology``, ordered slice-major (so a mesh's leading ``data``
    axis of size ``num_slices`` runs over DCN and the rest inside each slice, over ICI)."""
    from jax.experimental import topologies

    generation, chip = chip_of(topology)
    config = "megacore" if generation == "v4" else "default"  # v4 without megacore shows each core as a device
    desc = topologies.get_topology_desc(platform="tpu", topology_name=topology, chip_config_name=config,
                                        chips_per_host_bounds=chip.host_bounds, num_slices=num_slices)
    return sorted(desc.devices, key=lambda d: (getattr(d, "slice_index", 0), d.id))


def load_run_config(spec: str, overrides: list[str]):
    """The config file's (model, train, optim, loss) typed configs and its input size, with ``a.b=value``
    overrides applied to the ConfigDict first (values parsed as Python literals, else kept as strings)."""
    from zoejax.cli.config_loading import run_configs

    path, _, arg = spec.partition(":")
    if not os.path.isfile(path):
        raise SystemExit(f"tpu_aot: config file not found: {path}")
    module_spec = importlib.util.spec_from_file_location("tpu_aot_config", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    config = module.get_config(*([arg] if arg else []))
    for item in overrides:
        key, _, raw = item.partition("=")
        try:
            value = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            value = raw
        *parents, leaf = key.split(".")
        node = config
        for part in parents:
            node = node[part]
        node[leaf] = value
    return (*run_configs(config), tuple(config.input_size))


def collectives(hlo_text: str) -> dict[str, dict[str, float]]:
    """{op: {"count", "gib"}} of the collectives in an optimized HLO module (async ``-start`` forms counted,
    ``-done`` not; bytes = the largest array of the op's result, i.e. what lands on each chip)."""
    out: dict[str, dict[str, float]] = {}
    pattern = re.compile(r"=\s*(\(?[^=]*?\)?)\s+(" + "|".join(COLLECTIVES) + r")(-start)?\(")
    for line in hlo_text.splitlines():
        m = pattern.search(line)
        if not m:
            continue
        sizes = [shape_bytes(d, dims) for d, dims in re.findall(r"([a-z]+\d*)\[([\d,]*)\]", m.group(1))]
        entry = out.setdefault(m.group(2), {"count": 0, "gib": 0.0})
        entry["count"] += 1
        entry["gib"] += max(sizes, default=0) / GIB
    return out


def pallas_kernels(hlo_text: str) -> dict[str, int]:
    """{kernel name: count} of the Mosaic custom calls in an optimized HLO module. The compiler's cost model
    takes their time from the cost estimate each kernel declares (``pl.CostEstimate``), not from its own
    analysis, and their instructions carry no estimated cycles for ``hlo_ranking``."""
    out: dict[str, int] = {}
    for line in hlo_text.splitlines():
        m = re.match(r"\s*(?:ROOT\s+)?%([A-Za-z_]+?)(?:\.\d+)?\s*=.*custom_call_target=\"tpu_custom_call\"", line)
        if m:
            out[m.group(1)] = out.get(m.group(1), 0) + 1
    return out


def shape_bytes(dtype: str, dims: str) -> int:
    n = 1
    for d in filter(None, dims.split(",")):
        n *= int(d)
    return n * _DTYPE_BYTES.get(dtype, 4)


@dataclasses.dataclass
class Result:
    topology: str
    chips: int
    mesh: tuple[int, int, int]
    global_batch: int
    remat: str
    dtype: str
    mode: str
    lower_s: float
    compile_s: float
    hbm_gib: float
    capacity_gib: float
    arguments_gib: float
    temporaries_gib: float
    flops_per_chip: float
    bytes_per_chip: float
    step_s: float
    images_per_s: float
    mfu: float
    mfu_basis: str
    state_sharded: float  # share of the train state's (or the params') bytes the step takes sharded
    kernels: dict[str, int]  # Pallas (Mosaic) kernels in the compiled program, by name: their count
    collectives: dict[str, dict[str, float]]

    @property
    def fits(self) -> bool:
        return self.hbm_gib <= self.capacity_gib


def compile_step(config: str, topology: str, mesh_shape: tuple[int, ...], global_batch: int, *,
                 num_slices: int = 1, dtype: str = "bf16", remat: str = "none", inference: bool = False,
                 overrides: tuple[str, ...] = (), dump: str | None = None) -> Result:
    """Compiles the train step (or, with ``inference``, the flip-TTA predict path) of ``config`` (a config
    file[:arg]) for ``num_slices`` slices of ``topology`` on a (data, fsdp, tensor) mesh; the compiler's figures.
    """
    import jax
    import jax.numpy as jnp
    import numpy as np

    from zoejax.evaluation.evaluator import predict_depth
    from zoejax.models import flops
    from zoejax.models.config import RematPolicy
    from zoejax.models.zoedepth import ZoeDepth
    from zoejax.ops.platform import forms_for
    from zoejax.training.loop import _jitted_train_step
    from zoejax.training.sharding import batch_sharding, check_batch_divisible, make_mesh, replicated, traced_under
    from zoejax.training.state import abstract_train_state, state_shardings

    model_cfg, _, optim_cfg, loss_cfg, (h, w) = load_run_config(config, list(overrides))
    dtype = {"bf16": "bfloat16", "fp32": "float32"}.get(dtype, dtype)
    model_cfg = dataclasses.replace(model_cfg, dtype=dtype, remat=RematPolicy(remat))
    devices = topology_devices(topology, num_slices)
    mesh = make_mesh(mesh_shape, devices)
    check_batch_divisible(global_batch, mesh)
    generation, chip = chip_of(topology)
    data = batch_sharding(mesh)

    def spec(shape, dt, sharding=data):
        return jax.ShapeDtypeStruct(shape, dt, sharding=sharding)

    images = spec((global_batch, h, w, 3), jnp.float32)
    tpu = forms_for("tpu")
    t0 = time.perf_counter()
    if inference:
        model = ZoeDepth(model_cfg, ops=tpu)
        tx_shardings = state_shardings(model_cfg, _optimizer(optim_cfg), mesh).params
        params = jax.tree.map(lambda s, sh: spec(s.shape, s.dtype, sh), _param_shapes(model_cfg), tx_shardings)
        fn = jax.jit(traced_under(mesh, lambda p, x: predict_depth(model, p, x, None, (h, w), flip_tta=True)),
                     out_shardings=data)
        lowered = fn.lower(params, images)
        state = params
        forward = _forward_flops(flops, model_cfg, h, w)
        model_flops = None if forward is None else 2 * global_batch * forward  # flip TTA: 2 forwards
    else:
        tx, shardings, step = _jitted_train_step(model_cfg, optim_cfg, loss_cfg, mesh, tpu)
        state = abstract_train_state(model_cfg, tx, shardings)
        batch = {"image": images, "depth": spec((global_batch, h, w), jnp.float32),
                 "valid": spec((global_batch, h, w), jnp.bool_), "domain": spec((global_batch,), jnp.int32)}
        key = jax.ShapeDtypeStruct((), jax.random.key(0).dtype, sharding=replicated(mesh))
        lowered = step.lower(state, batch, key)
        forward = _forward_flops(flops, model_cfg, h, w)
        model_flops = None if forward is None else 3 * global_batch * forward
    lower_s = time.perf_counter() - t0
    compiled = lowered.compile()
    compile_s = time.perf_counter() - t0 - lower_s
    mem = compiled.memory_analysis()
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, list | tuple) else cost
    hbm = (mem.argument_size_in_bytes + mem.output_size_in_bytes - mem.alias_size_in_bytes
           + mem.temp_size_in_bytes + mem.generated_code_size_in_bytes)
    step_s = float(cost.get("optimal_seconds", float("nan")))
    if not step_s > 0:
        # libtpu 0.0.42 returns a negative optimal_seconds for some programs (seen on v5e-8, v6e-8 and v4-8 for
        # the full BEiT-L step): no estimate, reported as nan rather than as a negative speed.
        step_s = float("nan")
    chips = len(devices)
    basis = "model"
    if model_flops is None:
        model_flops, basis = float(cost["flops"]) * chips, "xla"
    text = compiled.as_text()
    # The step's in_shardings are the abstract state's own (fixed, not left to the compiler).
    sizes = [(int(np.prod(x.shape)) * x.dtype.itemsize, x.sharding) for x in jax.tree.leaves(state)]
    sharded = sum(b for b, sh in sizes if not sh.is_fully_replicated)
    if dump:
        from hlo_ranking import write_dump

        print(write_dump(dump, text))
    return Result(
        topology=topology, chips=chips, mesh=tuple(mesh.devices.shape), global_batch=global_batch, remat=remat,
        dtype=dtype, mode="inference" if inference else "train", lower_s=lower_s, compile_s=compile_s,
        hbm_gib=hbm / GIB,
        capacity_gib=chip.hbm_gib, arguments_gib=mem.argument_size_in_bytes / GIB,
        temporaries_gib=mem.temp_size_in_bytes / GIB, flops_per_chip=float(cost["flops"]),
        bytes_per_chip=float(cost.get("bytes accessed", 0.0)), step_s=step_s,
        images_per_s=global_batch / step_s, mfu=model_flops / chips / step_s / (chip.peak_tflops * 1e12),
        mfu_basis=basis, state_sharded=sharded / max(sum(b for b, _ in sizes), 1), collectives=collectives(text),
        kernels=pallas_kernels(text))


def _optimizer(optim_cfg):
    from zoejax.training.optim import make_optimizer

    return make_optimizer(optim_cfg)


def _param_shapes(model_cfg):
    from zoejax.models.init import param_shapes

    return param_shapes(model_cfg)


def _forward_flops(flops, model_cfg, h: int, w: int) -> int | None:
    try:
        return flops.forward_flops(model_cfg, 1, h, w)
    except NotImplementedError:
        return None


def report(r: Result) -> None:
    fit = "fits" if r.fits else "DOES NOT FIT"
    print(f"{r.mode} step, {r.topology} ({r.chips} chips), mesh (data, fsdp, tensor) = {r.mesh}, global batch "
          f"{r.global_batch}, {r.dtype}, remat {r.remat}; traced in {r.lower_s:.0f} s, compiled in {r.compile_s:.0f} s")
    print(f"  HBM per chip   {r.hbm_gib:7.2f} GiB of {r.capacity_gib:.0f} ({fit}; arguments {r.arguments_gib:.2f}, "
          f"temporaries {r.temporaries_gib:.2f}; {100 * r.state_sharded:.0f}% of the state's bytes sharded)")
    print(f"  flops per chip {r.flops_per_chip / 1e12:7.2f} TFLOP; bytes accessed {r.bytes_per_chip / 1e9:.1f} GB "
          f"(intensity {r.flops_per_chip / max(r.bytes_per_chip, 1):.0f} flop/byte)")
    if r.step_s > 0:
        print(f"  estimated step {r.step_s * 1e3:7.1f} ms -> {r.images_per_s:.1f} images/s, MFU {100 * r.mfu:.1f}% "
              f"({r.mfu_basis} flops)")
    else:
        print("  estimated step    n/a (libtpu's cost analysis gave no valid optimal_seconds for this program)")
    for op, c in sorted(r.collectives.items()):
        print(f"  {op:18s} {c['count']:5d}  {c['gib']:8.3f} GiB")
    for name, count in sorted(r.kernels.items()):
        print(f"  kernel {name:28s} {count:3d}  (Pallas; timed from its declared cost estimate)")


def summary_line(r: Result) -> str:
    return (f"tpu_aot: topology={r.topology} chips={r.chips} hbm_gib_per_chip={r.hbm_gib:.2f} "
            f"estimated_images_per_s={r.images_per_s:.1f} estimated_mfu={r.mfu:.3f}")


def default_mesh(chips: int, num_slices: int) -> tuple[int, int, int]:
    return (num_slices, chips // num_slices, 1)


def sweep(args, topology: str, chips: int) -> Result | None:
    """Per mesh and remat policy, the per-chip batch doubled from 1 until it no longer fits; the best fitting
    result by estimated images/s. Every point is a full compile (minutes at full size)."""
    per_slice = chips // args.num_slices
    meshes = [default_mesh(chips, args.num_slices), (chips, 1, 1)]
    if per_slice % 2 == 0:
        meshes.append((args.num_slices, per_slice // 2, 2))
    best = None
    for mesh in dict.fromkeys(meshes):
        for remat in args.sweep_remat.split(","):
            per_chip = 1
            while per_chip <= args.sweep_max_per_chip:
                r = compile_step(args.config, topology, mesh, per_chip * chips, num_slices=args.num_slices,
                                 dtype=args.dtype, remat=remat, inference=args.inference, overrides=args.override)
                print(json.dumps({**dataclasses.asdict(r), "fits": r.fits}), flush=True)
                report(r)
                if not r.fits:
                    break
                if best is None or r.images_per_s > best.images_per_s:
                    best = r
                per_chip *= 2
    return best


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="configs/zoedepth_n.py", help="config file[:backbone]")
    p.add_argument("--topology", default="v5p:2x2x1", help=f"e.g. v5p:2x2x1, v5e:2x4, or {sorted(ALIASES)}")
    p.add_argument("--num-slices", type=int, default=1, help="slices joined over DCN (data axis across them)")
    p.add_argument("--mesh", default="", help="data,fsdp,tensor (one may be -1); default: fsdp over each slice")
    p.add_argument("--global-batch", type=int, default=16)
    p.add_argument("--dtype", default="bf16", help="compute dtype: bf16 | fp32 (params stay fp32)")
    p.add_argument("--remat", default="none", help="none | dots | full")
    p.add_argument("--inference", action="store_true", help="the predict path with flip TTA, not a train step")
    p.add_argument("--override", action="append", default=[], help="config field=value, repeatable")
    p.add_argument("--dump", default="", help="directory for the optimized HLO and its fusion ranking")
    p.add_argument("--json", default="", help="append the result as one JSON line to this file")
    p.add_argument("--sweep", action="store_true", help="search per-chip batch x remat x mesh")
    p.add_argument("--sweep-remat", default="none,dots,full")
    p.add_argument("--sweep-max-per-chip", type=int, default=32)
    args = p.parse_args(argv)
    topology = ALIASES.get(args.topology, args.topology)
    chips = len(topology_devices(topology, args.num_slices))
    if args.sweep:
        r = sweep(args, topology, chips)
        if r is None:
            raise SystemExit(f"tpu_aot: nothing fits on {topology} even at 1 image per chip")
        print("best:")
    else:
        mesh = tuple(int(s) for s in args.mesh.split(",")) if args.mesh else default_mesh(chips, args.num_slices)
        r = compile_step(args.config, topology, mesh, args.global_batch, num_slices=args.num_slices,
                         dtype=args.dtype, remat=args.remat, inference=args.inference, overrides=args.override,
                         dump=args.dump or None)
    report(r)
    if args.json:
        with open(args.json, "a") as f:
            f.write(json.dumps({**dataclasses.asdict(r), "fits": r.fits, "config": args.config,
                                "override": args.override, "num_slices": args.num_slices,
                                "date": time.strftime("%Y-%m-%d")}) + "\n")
    print(summary_line(r))


if __name__ == "__main__":
    main()
