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


def random_params(cfg, seed: int = 0, std: float = 0.05):
    """N(0, ``std``) parameters of ``ZoeDepth(cfg)`` from its abstract shapes: no compiled init, which for a config
    no other test compiles costs more than the forward it feeds (~7 of 14 s for a reduced backbone copy)."""
    import jax
    import jax.numpy as jnp

    from zoejax.models.init import param_shapes

    rng = np.random.default_rng(seed)
    return jax.tree.map(lambda s: jnp.asarray(rng.normal(0, std, s.shape), s.dtype), param_shapes(cfg))
