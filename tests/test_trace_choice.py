"""Trace-time choices: the platform ops are traced for (``lowering_for``) and the caches that switching clears."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from zoejax.ops import attention as attention_ops
from zoejax.ops.trace_choice import lowering_for, target_platform


@pytest.mark.parametrize("platforms, expected", [
    (["cpu"], "cpu"), (["cuda"], "cuda"), (["TPU"], "tpu"), (["cpu", "cuda"], "cuda"), (["cpu", "cpu"], "cpu")])
def test_lowering_for_sets_the_target_and_restores_it(platforms, expected):
    here = jax.default_backend()
    assert target_platform() == here
    with lowering_for(platforms):
        assert target_platform() == expected
    assert target_platform() == here
    with lowering_for(None):
        assert target_platform() == here


def test_lowering_for_restores_the_target_after_an_error():
    with pytest.raises(RuntimeError), lowering_for(["tpu"]):
        raise RuntimeError("boom")
    assert target_platform() == jax.default_backend()
    with pytest.raises(ValueError, match="at least one platform"), lowering_for([]):
        pass


def test_a_function_jitted_before_the_block_is_retraced_inside_it():
    """The choice is not in jax's cache key, so the block must clear the caches: the same jitted function is
    per-head attention (a while loop) outside and batched (none) inside, with the same values."""
    rng = np.random.default_rng(0)
    q, k, v = (jnp.asarray(rng.normal(size=(1, 20, 4, 8)), jnp.float32) for _ in range(3))
    bias = jnp.asarray(rng.normal(size=(4, 20, 20)), jnp.float32)
    fn = jax.jit(lambda q, k, v: attention_ops.attention(q, k, v, bias))

    def has_loop() -> bool:
        return "stablehlo.while" in fn.lower(q, k, v).as_text()

    outside = fn(q, k, v)
    assert has_loop() == (jax.default_backend() == "cpu")
    with lowering_for(["cuda"]):
        assert not has_loop()
        np.testing.assert_allclose(fn(q, k, v), outside, rtol=1e-5, atol=1e-6)
    assert has_loop() == (jax.default_backend() == "cpu")
