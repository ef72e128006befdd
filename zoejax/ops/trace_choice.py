"""A trace-time choice of implementation, switched for a block of code.

Some ops pick their implementation while being traced (``zoejax.ops.attention``'s per-head or batched attention,
``zoejax.ops.conv``'s Winograd or direct convolutions). Such a choice is not part of jax's trace-cache key, so
switching it must clear jax's caches on entry and on exit: otherwise a function traced inside the block would keep
that trace when jitted again outside it, and one traced before the block would ignore it. Meant for analysis tools
(XLA's cost analysis), not for a training loop: everything is retraced afterwards.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
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
