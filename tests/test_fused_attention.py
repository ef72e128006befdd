"""The TPU form of biased attention (``zoejax.ops.fused_attention``: Pallas kernels), run in Pallas' interpreter
here, against the batched XLA form: outputs and the gradients of q, k, v and the bias."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from zoejax.ops.attention import attention
from zoejax.ops.fused_attention import ROW_CHUNK, _chunks, fused_attention


def _inputs(b, n, heads, d, dtype):
    keys = jax.random.split(jax.random.key(n), 5)
    q, k, v, ct = (jax.random.normal(keys[i], (b, n, heads, d)) for i in (0, 1, 2, 4))
    bias = 2.0 * jax.random.normal(keys[3], (heads, n, n))
    return (q * d**-0.5).astype(dtype), k.astype(dtype), v.astype(dtype), bias, ct


@pytest.mark.parametrize("n", [37, 2 * ROW_CHUNK + 44])  # one partial chunk; two full ones and a remainder
def test_fused_attention_matches_the_batched_form_with_gradients_fp32(n):
    q, k, v, bias, ct = _inputs(3, n, 2, 16, jnp.float32)

    def loss(implementation):
        if implementation == "fused":
            return lambda *a: jnp.sum(fused_attention(*a, interpret=True) * ct)
        return lambda *a: jnp.sum(attention(*a, implementation="batched") * ct)

    np.testing.assert_allclose(fused_attention(q, k, v, bias, interpret=True),
                               attention(q, k, v, bias, implementation="batched"), atol=2e-6)
    want = jax.grad(loss("batched"), argnums=(0, 1, 2, 3))(q, k, v, bias)
    got = jax.grad(loss("fused"), argnums=(0, 1, 2, 3))(q, k, v, bias)
    for name, w, g in zip("q k v bias".split(), want, got, strict=True):
        scale = float(jnp.max(jnp.abs(w)))
        assert scale > 0.1, name  # a gradient that is really there
        np.testing.assert_allclose(g, w, atol=2e-6 * scale, err_msg=name)


def test_fused_attention_in_bf16_keeps_the_dtype_and_the_batched_values():
    q, k, v, bias, _ = _inputs(2, 40, 2, 16, jnp.bfloat16)
    out = fused_attention(q, k, v, bias, interpret=True)
    assert out.dtype == jnp.bfloat16 and out.shape == q.shape
    want = attention(q, k, v, bias, implementation="batched").astype(jnp.float32)
    np.testing.assert_allclose(out.astype(jnp.float32), want, atol=3e-2)  # bf16 rounding of p and the output


def test_row_chunks_cover_the_tokens_once_and_bad_bias_is_refused():
    for n in (1, 100, ROW_CHUNK, ROW_CHUNK + 1, 769):
        covered = [i for start, size in _chunks(n) for i in range(start, start + size)]
        assert covered == list(range(n)) and all(size <= 2 * ROW_CHUNK for _, size in _chunks(n))
    q, k, v, bias, _ = _inputs(1, 8, 2, 4, jnp.float32)
    with pytest.raises(ValueError, match=r"bias must be \(heads, N, N\)"):
        fused_attention(q, k, v, bias[:1])
