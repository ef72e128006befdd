"""``gradient_barrier``: identity in value and gradient, and what it is for, the BEiT backward's fusions not growing
with depth on XLA:CPU."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from zoejax.models.backbones.beit import BeitConfig, BeitEncoder
from zoejax.ops.grad_barrier import gradient_barrier
from zoejax.ops.platform import FORMS


def _loss(x, w, barrier, form="cond"):
    for _ in range(3):
        x = gradient_barrier(x, form) if barrier else x
        x = x + jnp.tanh(x @ w)
    return jnp.sum(x**2)


def test_identity_in_value_and_gradient():
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(5, 8)), jnp.float32)
    w = jnp.asarray(rng.normal(size=(8, 8)) * 0.3, jnp.float32)
    np.testing.assert_array_equal(gradient_barrier(x, "cond"), x)
    for form in ("cond", "optimization_barrier"):
        for argnums in (0, 1):
            plain = jax.jit(jax.grad(_loss, argnums), static_argnums=(2, 3))(x, w, False, form)
            barred = jax.jit(jax.grad(_loss, argnums), static_argnums=(2, 3))(x, w, True, form)
            np.testing.assert_allclose(barred, plain, rtol=1e-6, atol=1e-6)
            assert float(jnp.abs(plain).max()) > 0
    with pytest.raises(ValueError, match="unknown barrier form"):
        gradient_barrier(x, "fence")
    # Under remat and vmap, too.
    remat = jax.grad(jax.checkpoint(lambda x: _loss(x, w, True)))(x)
    np.testing.assert_allclose(remat, jax.grad(lambda x: _loss(x, w, False))(x), rtol=1e-6, atol=1e-6)
    # A cotangent with NaN first is returned all NaN (non-finite either way); NaN elsewhere passes unchanged.
    for where, all_nan in ((0, True), (7, False)):
        ct = jnp.arange(40.0).reshape(5, 8).at[where // 8, where % 8].set(jnp.nan)
        back = jax.jit(jax.vjp(lambda x: gradient_barrier(x, "cond"), x)[1])(ct)[0]
        if all_nan:
            assert np.all(np.isnan(np.asarray(back)))
        else:
            np.testing.assert_array_equal(back, ct)
    per_row = jax.vmap(jax.grad(lambda r: _loss(r[None], w, True)))(x)
    np.testing.assert_allclose(per_row, jax.grad(lambda x: _loss(x, w, False))(x), rtol=1e-6, atol=1e-6)


def _largest_fusion(depth: int) -> int:
    """Instructions in the largest fused computation of the encoder's compiled gradient (input 32x48), hooked at
    the last block only: BEiT-L's hooks are six blocks apart, and a hook must not be what bounds the fusions."""
    encoder = BeitEncoder(BeitConfig(embed_dim=64, depth=depth, num_heads=2, mlp_ratio=4.0, patch_size=16,
                                     pretrain_window=(2, 3), init_values=0.1, hooks=(depth - 1,)),
                          ops=FORMS["cpu"])
    images = jnp.asarray(np.random.default_rng(0).uniform(-1, 1, (1, 32, 48, 3)), jnp.float32)
    params = encoder.init(jax.random.key(0), images)["params"]

    def loss(p):
        return sum(jnp.sum(tap**2) for tap in encoder.apply({"params": p}, images))

    with jax.default_device(jax.devices("cpu")[0]):  # the fusion heuristic in question is XLA:CPU's
        text = jax.jit(jax.grad(loss)).lower(params).compile().as_text()
    sizes = [len(body.splitlines()) for body in re.findall(r"\n%fused_computation[^\n]*\{\n(.*?)\n\}", text, re.S)]
    return max(sizes)


def test_backward_fusions_do_not_grow_with_depth():
    # Without the barriers the residual-stream gradient of every later block is fused (and recomputed) into each
    # block's transposed copies: the largest fusion grows linearly with depth (131, 239, 455 instructions at depth
    # 2, 4, 8, as with lax.optimization_barrier, which XLA:CPU drops before fusion) and the backward quadratically.
    # Depth 4 already shows that growth (+108 instructions), at less than half depth 8's compile time.
    shallow, deep = _largest_fusion(2), _largest_fusion(4)
    assert deep <= shallow + 10, (shallow, deep)
