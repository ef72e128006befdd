"""Numeric helpers shared by the tests (a plain module: importing from conftest is ambiguous once several
conftest.py files exist)."""

import numpy as np


def rel_l2(a, b) -> float:
    """||a - b|| / ||b|| in float64."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30))


def intermediates_forward(cfg):
    """``forward(params, images)`` -> every output of ``ZoeDepth(cfg)`` with ``return_intermediates=True``
    (encoder taps, decoder features, bin centres) for images (B, H, W, 3) in [0, 1] already at a network size
    (multiples of 32): the Flax module's own ``apply``, jitted, for the parity tests that compare intermediates
    with the PyTorch reference. Predictions go through ``zoejax.inference.ZoeDepthModel`` instead."""
    import jax

    from zoejax.models.zoedepth import ZoeDepth

    module = ZoeDepth(cfg)
    jitted = jax.jit(lambda params, images: module.apply({"params": params}, images, return_intermediates=True))
    return lambda params, images: jitted(params, np.asarray(images, np.float32))
