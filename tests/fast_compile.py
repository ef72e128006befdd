"""Fast compiles for tests of logic rather than numerics (layouts, restarts, multi-host, CLIs, routing): XLA with
most optimizations off, in this process (``fast_compiles``) or in a subprocess (``fast_compile_env``). Both sides
of every comparison in such a test compile alike."""

import contextlib
import os
from collections.abc import Iterator

import jax

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Subprocesses also use XLA:CPU's older loop emitters for fusions: with optimizations off they take ~30% less CPU
# time to compile a tiny-model train step than the MLIR fusion emitters (jax 0.10.2; with optimizations on they are
# far slower, so never in this process, whose other tests keep the defaults). And they generate code as one LLVM
# module rather than XLA's default split for parallel codegen: ~20% less CPU time for the 8-device (2, 2, 2)
# train step (18.1 -> 14.4 s, three alternating runs), where a test's two cores are shared with another worker.
FAST_COMPILE_XLA_FLAGS = "--xla_cpu_use_fusion_emitters=false --xla_cpu_parallel_codegen_split_count=1"


@contextlib.contextmanager
def fast_compiles() -> Iterator[None]:
    """Within the block, XLA compiles with most optimizations off.

    jit's in-memory caches do not key on this flag: a function compiled inside the block would keep its
    unoptimised executable after it (and one compiled before would stay optimised inside), so the block starts
    and ends with them cleared. Rounding differs between the two by ~1e-5 relative on some models, enough to
    fail a later test comparing two paths at 1e-6. The on-disk cache keys on the compile options and is kept."""
    previous = jax.config.read("jax_disable_most_optimizations")
    jax.clear_caches()
    jax.config.update("jax_disable_most_optimizations", True)
    try:
        yield
    finally:
        jax.config.update("jax_disable_most_optimizations", previous)
        jax.clear_caches()


def fast_compile_env(devices: int | None = None, **extra: str) -> dict[str, str]:
    """``os.environ`` for a logic-only subprocess: fast compiles, the CPU backend, the repository importable,
    and ``devices`` simulated CPU devices where given."""
    flags = FAST_COMPILE_XLA_FLAGS
    if devices is not None:
        flags += f" --xla_force_host_platform_device_count={devices}"
    return {**os.environ, "XLA_FLAGS": flags, "JAX_DISABLE_MOST_OPTIMIZATIONS": "1", "JAX_PLATFORMS": "cpu",
            "PYTHONPATH": ROOT, **extra}
