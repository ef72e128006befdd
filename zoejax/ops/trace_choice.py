"""Trace-time choices of implementation, switched for a block of code.

Some ops pick their implementation while being traced (``zoejax.ops.attention``'s per-head or batched attention,
``zoejax.ops.conv``'s Winograd or direct convolutions). Such a choice is not part of jax's trace-cache key, so
switching it must clear jax's caches on entry and on exit: otherwise a function traced inside the block would keep
that trace when jitted again outside it, and one traced before the block would ignore it. Meant for analysis tools
(XLA's cost analysis) and exports, not for a training loop: everything is retraced afterwards.

The platform the ops choose for is one such choice (``target_platform``): this machine's backend, unless an
export for other platforms sets it with ``lowering_for``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import jax


@contextlib.contextmanager
def traced_choice(cell: list, value: Any) -> Iterator[None]:
    """Within the block, ``cell[0]`` is ``value`` (``cell`` is a module's one-element setting list)."""
    previous, cell[0] = cell[0], value
    jax.clear_caches()
    try:
        yield
    finally:
        cell[0] = previous
        jax.clear_caches()


_target: list[str | None] = [None]


def target_platform() -> str:
    """The platform ops pick their implementation for: ``lowering_for``'s target, else ``jax.default_backend()``.
    Only "cpu" has implementations of its own; every other value gets the generic (GPU/TPU) forms."""
    return _target[0] or jax.default_backend()


@contextlib.contextmanager
def lowering_for(platforms: Sequence[str] | None) -> Iterator[None]:
    """Within the block, ops are traced for ``platforms`` (``jax.export`` names: "cpu", "cuda", "rocm", "tpu")
    rather than for this machine. The CPU forms (per-head attention, convolutions as products, Winograd) are
    used only when every platform is "cpu"; otherwise the generic forms, which are correct on any platform.
    ``None`` keeps this machine's choice."""
    if platforms is None:
        yield
        return
    platforms = [p.lower() for p in platforms]
    if not platforms:
        raise ValueError("lowering_for needs at least one platform")
    with traced_choice(_target, "cpu" if set(platforms) == {"cpu"} else next(p for p in platforms if p != "cpu")):
        yield
