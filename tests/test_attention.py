"""zoejax.ops.attention: the CPU per-(example, head) loop equals the batched form and the plain formula."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from zoejax.ops.attention import attention


def _inputs(dtype, b=3, n=17, heads=4, d=8):
    rng = np.random.default_rng(0)
    q, k, v = (jnp.asarray(rng.standard_normal((b, n, heads, d)), dtype) for _ in range(3))
    return q, k, v, jnp.asarray(rng.standard_normal((heads, n, n)), jnp.float32)


def _plain(q, k, v, bias):
    logits = jnp.einsum("bqhd,bkhd->bhqk", q.astype(jnp.float32), k.astype(jnp.float32)) + bias[None]
    return jnp.einsum("bhqk,bkhd->bqhd", jax.nn.softmax(logits, axis=-1), v.astype(jnp.float32))


@pytest.mark.parametrize("impl", ["per_head", "batched"])
def test_matches_plain_formula(impl):
    q, k, v, bias = _inputs(jnp.float32)
    out = jax.jit(lambda *a: attention(*a, implementation=impl))(q, k, v, bias)
    assert out.shape == q.shape and out.dtype == q.dtype
    np.testing.assert_allclose(out, _plain(q, k, v, bias), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("impl", ["per_head", "batched"])
@pytest.mark.parametrize("batch", [1, 3])
def test_gathered_bias_equals_materialised(impl, batch):
    q, k, v, _ = _inputs(jnp.float32, b=batch)
    rng = np.random.default_rng(1)
    table = jnp.asarray(rng.standard_normal((4, 30)), jnp.float32)
    index = rng.integers(0, 30, (17, 17))
    bias = table[:, index]
    got = attention(q, k, v, bias_table=table, bias_index=index, implementation=impl)
    np.testing.assert_allclose(got, _plain(q, k, v, bias), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError):
        attention(q, k, v, bias, bias_table=table, bias_index=index, implementation=impl)


def test_bfloat16_close_and_unknown_implementation():
    q, k, v, bias = _inputs(jnp.bfloat16)
    batched = attention(q, k, v, bias, implementation="batched")
    per_head = attention(q, k, v, bias, implementation="per_head")
    assert per_head.dtype == jnp.bfloat16
    np.testing.assert_allclose(np.float32(per_head), np.float32(batched), atol=3e-2)
    with pytest.raises(ValueError, match="flash"):
        attention(q, k, v, bias, implementation="flash")


@pytest.mark.parametrize("impl", ["per_head", "batched"])
@pytest.mark.parametrize("n", [17, 32])  # padded keys (17 -> 32) must get no weight without a bias either
def test_without_a_bias_matches_plain_formula(impl, n):
    q, k, v, _ = _inputs(jnp.float32, n=n)
    out = jax.jit(lambda *a: attention(*a, implementation=impl))(q, k, v)
    np.testing.assert_allclose(out, _plain(q, k, v, jnp.zeros((4, n, n))), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("n", [17, 32])  # keys padded to 32 with zero weight / no padding
def test_gradients_through_the_key_padding_match_the_plain_formula(n):
    q, k, v, _ = _inputs(jnp.float32, b=2, n=n)
    rng = np.random.default_rng(2)
    table = jnp.asarray(rng.standard_normal((4, 30)), jnp.float32)
    index = rng.integers(0, 30, (n, n))

    def loss(fn, q, k, v, table):
        return jnp.sum(jnp.sin(fn(q, k, v, table)))

    ours = jax.jit(jax.grad(lambda *a: loss(lambda q, k, v, t: attention(
        q, k, v, bias_table=t, bias_index=index, implementation="per_head"), *a), argnums=(0, 1, 2, 3)))(
        q, k, v, table)
    ref = jax.grad(lambda *a: loss(lambda q, k, v, t: _plain(q, k, v, t[:, index]), *a), argnums=(0, 1, 2, 3))(
        q, k, v, table)
    for a, b in zip(ours, ref, strict=True):
        assert a.shape == b.shape and bool(jnp.all(jnp.isfinite(a)))
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_backward_builds_no_argmax_mask():
    """The softmax shift is a stop_gradient max: differentiating it would compare every (N, M) logit with its row
    max (an equality mask per head, saved for the backward)."""
    q, k, v, _ = _inputs(jnp.float32, b=1, n=17)
    table = jnp.ones((4, 30), jnp.float32)
    index = np.random.default_rng(3).integers(0, 30, (17, 17))

    def loss(q):
        return jnp.sum(attention(q, k, v, bias_table=table, bias_index=index, implementation="per_head") ** 2)

    text = jax.jit(jax.grad(loss)).lower(q).compile().as_text()
    masks = [line for line in text.splitlines() if "compare(" in line and "direction=EQ" in line
             and re.search(r"pred\[(\d+,)*17,32\]", line)]
    assert not masks, masks
