"""The TPU form of BEiT's biased attention (``zoejax.ops.fused_attention``: Pallas kernels reading the qkv
projection's layout), run in Pallas' interpreter here, against the batched XLA form: outputs and the gradients of
q, k, v and the bias, for heads narrower than a lane tile (all heads per grid step) and 64-wide ones (two)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from zoejax.ops.attention import attention
from zoejax.ops.fused_attention import ROW_CHUNK, _chunks, fused_attention, head_group


def _inputs(b, n, heads, d, dtype):
    keys = jax.random.split(jax.random.key(n), 3)
    qkv = jax.random.normal(keys[0], (b, 3, n, heads * d))
    qkv = (qkv * jnp.asarray([d**-0.5, 1.0, 1.0])[:, None, None]).astype(dtype)
    bias = 2.0 * jax.random.normal(keys[1], (heads, n, n))
    ct = jax.random.normal(keys[2], (b, n, heads * d))
    return qkv, bias, ct


def _batched(qkv, bias, heads):
    b, _, n, width = qkv.shape
    q, k, v = (qkv[:, i].reshape(b, n, heads, width // heads) for i in range(3))
    return attention(q, k, v, bias, implementation="batched").reshape(b, n, width)


@pytest.mark.parametrize("n, heads, d", [(2 * ROW_CHUNK + 44, 2, 16), (40, 4, 64)])  # all heads a step; two
def test_fused_attention_matches_the_batched_form_with_gradients_fp32(n, heads, d):
    qkv, bias, ct = _inputs(2, n, heads, d, jnp.float32)
    np.testing.assert_allclose(fused_attention(qkv, bias, heads, interpret=True), _batched(qkv, bias, heads),
                               atol=2e-6)
    want = jax.grad(lambda a, c: jnp.sum(_batched(a, c, heads) * ct), argnums=(0, 1))(qkv, bias)
    got = jax.grad(lambda a, c: jnp.sum(fused_attention(a, c, heads, interpret=True) * ct), argnums=(0, 1))(
        qkv, bias)
    for name, w, g in zip(("qkv", "bias"), want, got, strict=True):
        scale = float(jnp.max(jnp.abs(w)))
        assert scale > 0.1, name  # a gradient that is really there
        np.testing.assert_allclose(g, w, atol=2e-6 * scale, err_msg=name)


def test_fused_attention_in_bf16_keeps_the_dtype_and_the_batched_values():
    qkv, bias, _ = _inputs(2, 40, 2, 16, jnp.bfloat16)
    out = fused_attention(qkv, bias, 2, interpret=True)
    assert out.dtype == jnp.bfloat16 and out.shape == (2, 40, 32)
    want = _batched(qkv, bias, 2).astype(jnp.float32)
    np.testing.assert_allclose(out.astype(jnp.float32), want, atol=3e-2)  # bf16 rounding of p and the output


def test_row_chunks_head_groups_and_bad_shapes():
    for n in (1, 100, ROW_CHUNK, ROW_CHUNK + 1, 769):
        covered = [i for start, size in _chunks(n) for i in range(start, start + size)]
        assert covered == list(range(n)) and all(size <= 2 * ROW_CHUNK for _, size in _chunks(n))
    # A grid step's heads span one 128-lane tile (BEiT-L: 16 heads of 64 -> 2), or all heads when narrower.
    assert head_group(16, 64) == 2 and head_group(2, 16) == 2 and head_group(4, 128) == 1 and head_group(3, 64) == 3
    qkv, bias, _ = _inputs(1, 8, 2, 4, jnp.float32)
    with pytest.raises(ValueError, match=r"bias must be \(heads, N, N\)"):
        fused_attention(qkv, bias[:1], 2)
    with pytest.raises(ValueError, match=r"qkv must be \(B, 3, N, heads \* head_dim\)"):
        fused_attention(qkv[:, :2], bias, 2)
