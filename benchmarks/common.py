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
    from torch_reference import build_reference, state_dict_numpy

    from zoejax.conversion.hf import params_from_hf_state_dict

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


def machine_line() -> str:
    """One line: host, cores, accelerator and the versions that matter for the numbers."""
    import flax
    import jax
    import torch

    dev = jax.devices()[0]
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    return (f"host={platform.node()} cpus={os.cpu_count()} jax_backend={jax.default_backend()} "
            f"jax_device={dev.device_kind} torch_cuda={gpu} python={platform.python_version()} "
            f"jax={jax.__version__} flax={flax.__version__} torch={torch.__version__} "
            f"torch_threads={torch.get_num_threads()} XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}")


def parse_list(text: str, kind=str) -> list:
    return [kind(x) for x in text.split(",") if x]
