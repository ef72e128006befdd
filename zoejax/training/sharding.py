"""The device mesh and the one table that maps logical axis names to mesh axes.

Mesh axes: ``data`` (pure data parallelism), ``fsdp`` (batch *and* parameter sharding, ZeRO-3 style) and
``tensor`` (Megatron-style splits of attention heads and MLP width). The model annotates its large kernels
with logical names (``embed``, ``qkv``, ``heads``, ``mlp``; ``zoejax/models/backbones/beit.py``, ``dpt.py``); everything
else is replicated. Pure data parallel, FSDP and FSDP + tensor parallel are chosen by the mesh shape alone.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import flax.linen as nn
import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

MESH_AXES = ("data", "fsdp", "tensor")

# logical axis -> mesh axis (or axes). The single place where sharding is decided.
LOGICAL_RULES: tuple[tuple[str, Any], ...] = (
    ("batch", ("data", "fsdp")),
    ("embed", "fsdp"),
    ("qkv", "tensor"),
    ("heads", "tensor"),
    ("mlp", "tensor"),
)


def make_mesh(shape: Sequence[int], devices: Sequence[jax.Device] | None = None) -> Mesh:
    """A (data, fsdp, tensor) mesh; one entry may be -1 to take the remaining devices.

    Raises ValueError when the shape does not multiply to the device count.
    """
    devices = list(devices if devices is not None else jax.devices())
    shape = [int(s) for s in shape]
    if len(shape) != 3:
        raise ValueError(f"mesh shape needs 3 entries (data, fsdp, tensor), got {shape}")
    if shape.count(-1) > 1:
        raise ValueError(f"at most one mesh axis may be -1, got {shape}")
    known = int(np.prod([s for s in shape if s != -1]))
    if -1 in shape:
        if len(devices) % known:
            raise ValueError(f"{len(devices)} devices cannot fill mesh {shape}")
        shape[shape.index(-1)] = len(devices) // known
    if int(np.prod(shape)) != len(devices):
        raise ValueError(f"mesh {dict(zip(MESH_AXES, shape, strict=True))} needs {int(np.prod(shape))} devices, "
                         f"{len(devices)} available")
    return Mesh(np.asarray(devices).reshape(shape), MESH_AXES)


def param_shardings(logical_specs: Any, mesh: Mesh, rules=LOGICAL_RULES) -> Any:
    """NamedShardings for a params tree from its logical PartitionSpecs (``zoejax.models.init.logical_axes``)."""
    return nn.logical_to_mesh_sharding(logical_specs, mesh, rules)


def traced_under(mesh: Mesh, fn: Callable) -> Callable:
    """``fn``, traced with ``mesh`` as the abstract mesh (``jax.sharding.use_abstract_mesh``): what a jitted
    sharded step passes to ``jax.jit``. Ops that XLA cannot partition (the Pallas TPU attention of
    ``zoejax.ops.fused_attention``) find the mesh there and run per shard under ``shard_map``."""

    @functools.wraps(fn)
    def traced(*args, **kwargs):
        with jax.sharding.use_abstract_mesh(mesh.abstract_mesh):
            return fn(*args, **kwargs)

    return traced


def batch_sharding(mesh: Mesh) -> NamedSharding:
    """Leading (batch) axis split over data x fsdp; the rest replicated."""
    return NamedSharding(mesh, PartitionSpec(("data", "fsdp")))


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, PartitionSpec())


def shard_batch(batch: dict[str, np.ndarray], mesh: Mesh) -> dict[str, jax.Array]:
    """Assemble global arrays from this process's part of the batch (``make_array_from_process_local_data``).

    Each host passes its per-host batch; the global batch is their concatenation along axis 0.
    """
    sharding = batch_sharding(mesh)
    return {k: jax.make_array_from_process_local_data(sharding, np.asarray(v)) for k, v in batch.items()}


def check_batch_divisible(global_batch: int, mesh: Mesh) -> None:
    ways = mesh.shape["data"] * mesh.shape["fsdp"]
    if global_batch % ways:
        raise ValueError(f"global batch {global_batch} is not divisible by data x fsdp = {ways}")
