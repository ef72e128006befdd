"""Run by test_sharded_training.py in a subprocess with 8 simulated CPU devices (XLA_FLAGS must be set before
jax is imported). Trains a tiny ZoeD_N for two steps on several mesh layouts and prints one JSON line per
layout with the losses, the largest parameter difference to the single-device run and the qkv sharding."""

import json
import os
import sys

os.environ["XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"

import jax  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
from batches import synthetic_batch  # noqa: E402

from zoejax.models import presets  # noqa: E402
from zoejax.models.zoedepth import ZoeDepth  # noqa: E402
from zoejax.training.optim import OptimConfig, make_optimizer  # noqa: E402
from zoejax.training.sharding import batch_sharding, make_mesh, shard_batch  # noqa: E402
from zoejax.training.state import create_sharded_state  # noqa: E402
from zoejax.training.step import LossConfig, make_train_step  # noqa: E402

LAYOUTS = [(1, 1, 1), (2, 4, 1), (2, 2, 2)]  # data x fsdp, and every axis; pure data parallel: test_multihost


def run(layout, batch, initial_params=None):
    """Two steps on ``layout``: from a state initialised in place in its sharding (``initial_params`` None),
    or from given host params placed into it (skips compiling one more sharded init)."""
    devices = jax.devices()[: int(np.prod(layout))]
    mesh = make_mesh(layout, devices)
    cfg = presets.zoed_n("tiny")
    tx = make_optimizer(OptimConfig(total_steps=10, lr=1e-3))
    train_step = make_train_step(ZoeDepth(cfg), tx, LossConfig())
    state, shardings = create_sharded_state(cfg, tx, mesh, jax.random.key(0), params=initial_params)
    initial = jax.device_get(state.params)
    step = jax.jit(train_step, in_shardings=(shardings, batch_sharding(mesh), None),
                   out_shardings=(shardings, None), donate_argnums=0)
    global_batch = shard_batch(batch, mesh)
    losses, grad_norms = [], []
    for _ in range(2):
        state, metrics = step(state, global_batch, jax.random.key(1))
        losses.append(float(metrics["loss"]))
        grad_norms.append(float(metrics["grad_norm"]))
    qkv = state.params["core"]["pretrained"]["model"]["blocks_0"]["attn"]["qkv"]["kernel"]
    return losses, grad_norms, initial, jax.device_get(state.params), tuple(qkv.sharding.spec)


def main():
    batch = synthetic_batch(8, (64, 96))
    reference = initial_params = None
    for layout in LAYOUTS:
        # The single-device reference and the layout using every mesh axis initialise in place (the sharded init's
        # values are compared with the single-device one); the others start from the reference's init.
        in_place = reference is None or min(layout) > 1
        losses, grad_norms, initial, params, spec = run(layout, batch, None if in_place else initial_params)
        if reference is None:
            reference, initial_params = params, initial
        print(json.dumps({"layout": layout, "devices": jax.device_count(), "losses": losses, "grad_norms": grad_norms,
                          "in_place_init": in_place, "init_diff": _max_diff(initial, initial_params),
                          "max_param_diff": _max_diff(params, reference), "qkv_spec": [str(a) for a in spec]}),
              flush=True)


def _max_diff(a, b) -> float:
    return max(float(np.max(np.abs(x - y))) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True))


if __name__ == "__main__":
    main()
