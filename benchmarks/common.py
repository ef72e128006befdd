"""Helpers shared by the benchmarks: the PyTorch reference with zoejax's weights, timing, machine description.

The reference is the tests' one (``tests/torch_reference.py``): transformers' ZoeDepthForDepthEstimation with
BEiT ``layer_norm_eps=1e-6`` and random non-trivial weights, which computes the official ZoeDepth forward;
zoejax gets the same weights through the HF converter.
"""

from __future__ import annotations

import os
import platform
import resource
import statistics
import sys
import time
from collections.abc import Callable

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))


def reference_and_params(cfg, seed: int = 0):
    """(transformers model in eval mode, zoejax params with the same weights) for ``cfg``."""
    from torch_reference import build_reference, params_from_hf_state_dict, state_dict_numpy

    ref = build_reference(cfg, seed=seed)
    return ref, params_from_hf_state_dict(cfg, state_dict_numpy(ref))


def timed(fn: Callable[[], object]) -> float:
    """Seconds one call of ``fn`` takes; ``fn`` must block until its result is ready."""
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def peak_rss_gb() -> float:
    """This process's peak resident set size (Linux reports kB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6


def cpu_model() -> str:
    """The host CPU as ``vendor family/model name +isa`` (e.g. ``AuthenticAMD 26/2 AMD EPYC +avx512``), from
    /proc/cpuinfo: the same VM name can be different hardware, and MKL (PyTorch's CPU GEMM) is much faster on
    Intel than on AMD, so speedups are only comparable on the same CPU."""
    fields: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                fields.setdefault(key.strip(), value.strip())
    except OSError:
        return platform.processor() or "unknown"
    isa = next((name for name in ("avx512f", "avx2", "sse4_2") if name in fields.get("flags", "").split()), "")
    return (f"{fields.get('vendor_id', '?')} {fields.get('cpu family', '?')}/{fields.get('model', '?')} "
            f"{fields.get('model name', '?')}" + (f" +{isa.removesuffix('f')}" if isa else ""))


def machine_line() -> str:
    """One line: host, CPU, cores, accelerator and the versions that matter for the numbers."""
    import flax
    import jax
    import torch

    dev = jax.devices()[0]
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    return (f"host={platform.node()} cpu='{cpu_model()}' cpus={os.cpu_count()} jax_backend={jax.default_backend()} "
            f"jax_device={dev.device_kind} torch_cuda={gpu} python={platform.python_version()} "
            f"jax={jax.__version__} flax={flax.__version__} torch={torch.__version__} "
            f"torch_threads={torch.get_num_threads()} XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}")


def parse_list(text: str, kind=str) -> list:
    return [kind(x) for x in text.split(",") if x]
