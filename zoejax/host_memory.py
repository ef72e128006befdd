"""Keeping freed host memory in the process on CPU-only runs (glibc malloc settings).

XLA:CPU allocates an executable's temporary buffers on every call and frees them afterwards. glibc returns large
freed blocks to the kernel (each is its own ``mmap``, or the top of a per-thread heap is trimmed), so the next call
touches fresh pages again: a BEiT-L train step at 384x512 took ~1.45 million page faults and ~6 s of kernel time
per step on the 2-core CPU machine (19.3-21.0 s steps; 15.1-16.4 s with the settings below, and no fault after the
first step). A forward takes ~60 thousand faults per call.

``keep_freed_host_memory`` makes glibc serve every block from one arena, never ``mmap`` a block of its own and
never trim the heap, so freed buffers are reused by the next step. The process's resident memory then stays at
its peak (the peak itself is unchanged: 11.2-11.3 GB for that train step either way). It must run before any
thread allocates, i.e. before jax runs its first computation (importing jax is fine). It only acts on
Linux/glibc when jax can only use the CPU (``JAX_PLATFORMS`` is "cpu", or no accelerator plugin is installed): on
GPU/TPU hosts the device buffers live on the device.

It is opt-in, because one arena makes every thread take the same malloc lock: XLA's compilations ran 5-15%
slower, and the demo (a 4.7M-parameter model, compile- and checkpoint-bound) took 174-196 s instead of 159-165 s.
The CLIs apply it when ``ZOEJAX_KEEP_HOST_MEMORY=1`` (``apply_from_environment``): worth it for long CPU runs of
the full-size models.
"""

from __future__ import annotations

import ctypes
import importlib.metadata
import importlib.util
import os
import platform

# mallopt parameter numbers from glibc's <malloc.h>.
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_M_ARENA_MAX = -8
_applied: list[bool] = []


def cpu_only() -> bool:
    """Whether jax can only run on the CPU here: ``JAX_PLATFORMS`` is "cpu", or no GPU/TPU plugin is installed
    (decided without initialising a jax backend)."""
    platforms = os.environ.get("JAX_PLATFORMS", "")
    if platforms:
        return {p.strip() for p in platforms.split(",") if p.strip()} == {"cpu"}
    if importlib.util.find_spec("libtpu") is not None or importlib.util.find_spec("jax_plugins") is not None:
        return False  # jax finds plugins as modules of the jax_plugins namespace package or as entry points
    return not any(importlib.metadata.entry_points(group="jax_plugins"))


def apply_from_environment() -> bool:
    """``keep_freed_host_memory()`` when ``ZOEJAX_KEEP_HOST_MEMORY=1`` (what the CLIs call first thing)."""
    if os.environ.get("ZOEJAX_KEEP_HOST_MEMORY", "0") != "1":
        return bool(_applied and _applied[0])
    return keep_freed_host_memory()


def keep_freed_host_memory() -> bool:
    """Applies the malloc settings above once per process where they help; returns whether they are in effect."""
    if _applied:
        return _applied[0]
    wanted = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc" and cpu_only()
    ok = False
    if wanted:
        try:
            libc = ctypes.CDLL("libc.so.6")
        except OSError:
            libc = None
        if libc is not None:
            # -1 as the trim threshold is SIZE_MAX inside glibc: never trim. Each call returns 1 on success.
            ok = all(libc.mallopt(param, value) == 1 for param, value in (
                (_M_ARENA_MAX, 1), (_M_MMAP_MAX, 0), (_M_TRIM_THRESHOLD, -1)))
    _applied.append(ok)
    return ok


def limit_malloc_arenas(count: int) -> bool:
    """At most ``count`` glibc malloc arenas for the threads created from now on (Linux/glibc; False elsewhere).

    glibc gives each thread that allocates its own arena, up to 8 per core, and each keeps the freed blocks it
    fragments: a long-running server whose threads take turns with large images grows by tens of MB per arena
    before levelling off. Few arenas keep it near one arena's peak, at the cost of threads sharing malloc locks."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        return ctypes.CDLL("libc.so.6").mallopt(_M_ARENA_MAX, int(count)) == 1
    except OSError:
        return False
