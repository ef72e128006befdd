"""Softmax attention with a per-head additive bias shared by every example, as Pallas TPU kernels (the TPU form).

Why a kernel: XLA's batched attention writes the (B, heads, N, N) logits, probabilities and their gradients to
HBM several times per block, and it adds the bias and reduces the bias gradient over the batch in passes of their
own; on a v5p chip those passes cost BEiT-L more than its matmuls (the compiler puts a 384x512 block at 2.5 ms
against 0.6 ms of matmul work). Here every (N, N) tile stays in VMEM. BEiT's sequences are short (769 tokens at
384x512), so a query block sees all keys at once: the softmax is exact in one pass, with no online rescaling,
and the backward recomputes it from q, k and the bias alone (no saved statistics).

Layout: q, k, v are (B, heads, N, d) and the bias (heads, N, N); blocks span the whole token axis (a full-size
block needs no padding to the TPU's tile sizes), and the kernels walk it in ``ROW_CHUNK``-row pieces. The grid is
(heads, examples), examples innermost: a head's bias is read once for the whole batch, and its gradient is summed
over the examples in the resident output tile, so the (B, heads, N, N) gradient never exists in HBM. The forward
writes the output; the backward writes dq, dk, dv and the bias gradient, recomputing the probabilities.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax.experimental import pallas as pl
from jax.experimental.pallas import tpu as pltpu
from jax.sharding import PartitionSpec as P

ROW_CHUNK = 128  # query rows the kernels work on at a time: bounds the (rows, N) float32 temporaries in VMEM
MXU_WIDTH = 128  # the systolic array's width: a 64-wide head dimension fills half of it
_NT = (((1,), (1,)), ((), ()))  # a @ b.T


def fused_attention(q: jnp.ndarray, k: jnp.ndarray, v: jnp.ndarray, bias: jnp.ndarray, *,
                    interpret: bool = False) -> jnp.ndarray:
    """softmax(q k^T + bias) v with float32 logits and softmax.

    Args:
      q, k, v: (B, N, heads, head_dim) in the compute dtype; q already multiplied by the scale.
      bias: (heads, N, N), shared by every example; added in q's dtype (as the batched XLA form does).
      interpret: run the kernels in Pallas' interpreter (any backend; for tests off TPU).
    Returns:
      (B, N, heads, head_dim) in q's dtype.
    """
    b, n, heads, d = q.shape
    if bias.shape != (heads, n, n):
        raise ValueError(f"bias must be (heads, N, N) = {(heads, n, n)}, got {bias.shape}")

    def local(q, k, v, bias):
        out = _attend(*(t.transpose(0, 2, 1, 3) for t in (q, k, v)), bias.astype(q.dtype), interpret)
        return out.transpose(0, 2, 1, 3)

    mesh = jax.sharding.get_abstract_mesh()
    if mesh.empty or mesh.size == 1:
        return local(q, k, v, bias)
    # XLA cannot partition a Mosaic kernel: under a mesh it runs per shard, examples split over the batch axes
    # and heads over "tensor" where they divide (the logical rules of zoejax.training.sharding, which ops cannot
    # import: the names are the mesh's). The bias gradient is summed over the batch shards by shard_map.
    batch_axes = tuple(a for a in ("data", "fsdp") if a in mesh.axis_names and b % mesh.shape[a] == 0)
    head_axis = "tensor" if "tensor" in mesh.axis_names and heads % mesh.shape["tensor"] == 0 else None
    tokens = P(batch_axes or None, None, head_axis, None)
    return jax.shard_map(local, mesh=mesh, in_specs=(tokens, tokens, tokens, P(head_axis, None, None)),
                         out_specs=tokens, check_vma=False)(q, k, v, bias)


def _chunks(n: int) -> list[tuple[int, int]]:
    """Static (start, size) row chunks covering n rows; the last one takes the remainder."""
    starts = list(range(0, max(n - ROW_CHUNK, 0) + 1, ROW_CHUNK)) if n > ROW_CHUNK else [0]
    return [(s, (starts[i + 1] if i + 1 < len(starts) else n) - s) for i, s in enumerate(starts)]


def _precision(dtype):
    return jax.lax.Precision.HIGHEST if dtype == jnp.float32 else None


def _probabilities(q, k, bias):
    """(rows, d), (N, d), (rows, N) -> the softmax of q k^T + bias over the keys, float32."""
    logits = jax.lax.dot_general(q, k, _NT, preferred_element_type=jnp.float32, precision=_precision(q.dtype))
    logits = logits + bias.astype(jnp.float32)
    p = jnp.exp(logits - jnp.max(logits, axis=-1, keepdims=True))
    return p * (1.0 / jnp.sum(p, axis=-1, keepdims=True))


def _dot(a, b):
    return jnp.dot(a, b, preferred_element_type=jnp.float32, precision=_precision(a.dtype))


def _forward_kernel(q_ref, k_ref, v_ref, bias_ref, o_ref):
    k, v = k_ref[...], v_ref[...]
    for start, size in _chunks(q_ref.shape[0]):
        rows = pl.ds(start, size)
        p = _probabilities(q_ref[rows, :], k, bias_ref[rows, :])
        o_ref[rows, :] = _dot(p.astype(v.dtype), v).astype(o_ref.dtype)


def _backward_kernel(q_ref, k_ref, v_ref, bias_ref, do_ref, dq_ref, dk_ref, dv_ref, dbias_ref):
    @pl.when(pl.program_id(1) == 0)  # the first example of this head: the bias gradient starts at 0
    def _():
        dbias_ref[...] = jnp.zeros(dbias_ref.shape, dbias_ref.dtype)

    k, v = k_ref[...], v_ref[...]
    dk = jnp.zeros(k.shape, jnp.float32)
    dv = jnp.zeros(v.shape, jnp.float32)
    for start, size in _chunks(q_ref.shape[0]):
        rows = pl.ds(start, size)
        q, do = q_ref[rows, :], do_ref[rows, :]
        p = _probabilities(q, k, bias_ref[rows, :])
        dp = jax.lax.dot_general(do, v, _NT, preferred_element_type=jnp.float32, precision=_precision(do.dtype))
        # Row sums of p * dp equal those of d_out * out: computed here, the forward output is not needed.
        ds = p * (dp - jnp.sum(p * dp, axis=-1, keepdims=True))
        dq_ref[rows, :] = _dot(ds.astype(k.dtype), k).astype(dq_ref.dtype)
        dk = dk + _dot(ds.T.astype(q.dtype), q)
        dv = dv + _dot(p.T.astype(do.dtype), do)
        dbias_ref[rows, :] = dbias_ref[rows, :] + ds
    dk_ref[...] = dk.astype(dk_ref.dtype)
    dv_ref[...] = dv.astype(dv_ref.dtype)


def _specs(shape):
    """Block specs over the (heads, examples) grid for (B, heads, N, d) operands: one head of one example per
    step, examples innermost, so a head's bias (and its gradient) stays resident across the batch."""
    b, heads, n, d = shape
    tokens = pl.BlockSpec((None, None, n, d), lambda h, e: (e, h, 0, 0))
    bias = pl.BlockSpec((None, n, n), lambda h, e: (h, 0, 0))
    return (heads, b), tokens, bias


def _cost(shape, itemsize: int, matmuls: int, extra_bytes: int) -> pl.CostEstimate:
    """The kernel's work for the compiler's cost model. Matmul flops are counted at the MXU's width: a
    head_dim below it leaves the array partly idle, and the estimate should say so rather than assume a full
    array."""
    b, heads, n, d = shape
    flops = matmuls * 2 * b * heads * n * n * max(d, MXU_WIDTH)
    io = 4 * b * heads * n * d * itemsize  # q, k, v and the output (forward) or d_out (backward)
    return pl.CostEstimate(flops=flops, transcendentals=b * heads * n * n, bytes_accessed=io + extra_bytes)


def _forward(q, k, v, bias, interpret):
    grid, tokens, bias_spec = _specs(q.shape)
    b, heads, n, _ = q.shape
    return pl.pallas_call(
        _forward_kernel, grid=grid, in_specs=[tokens, tokens, tokens, bias_spec], out_specs=tokens,
        out_shape=jax.ShapeDtypeStruct(q.shape, q.dtype),
        compiler_params=pltpu.CompilerParams(dimension_semantics=("parallel", "arbitrary")),
        cost_estimate=_cost(q.shape, q.dtype.itemsize, 2, heads * n * n * bias.dtype.itemsize),
        interpret=interpret, name="fused_attention_fwd")(q, k, v, bias)


def _backward(q, k, v, bias, do, interpret):
    grid, tokens, bias_spec = _specs(q.shape)
    b, heads, n, d = q.shape
    out_shape = (jax.ShapeDtypeStruct(q.shape, q.dtype), jax.ShapeDtypeStruct(k.shape, k.dtype),
                 jax.ShapeDtypeStruct(v.shape, v.dtype), jax.ShapeDtypeStruct(bias.shape, jnp.float32))
    extra = heads * n * n * (bias.dtype.itemsize + 4) + 3 * b * heads * n * d * q.dtype.itemsize
    dq, dk, dv, dbias = pl.pallas_call(
        _backward_kernel, grid=grid, in_specs=[tokens, tokens, tokens, bias_spec, tokens],
        out_specs=[tokens, tokens, tokens, bias_spec], out_shape=out_shape,
        compiler_params=pltpu.CompilerParams(dimension_semantics=("parallel", "arbitrary")),
        cost_estimate=_cost(q.shape, q.dtype.itemsize, 5, extra), interpret=interpret,
        name="fused_attention_bwd")(q, k, v, bias, do)
    return dq, dk, dv, dbias.astype(bias.dtype)


@functools.partial(jax.custom_vjp, nondiff_argnums=(4,))
def _attend(q, k, v, bias, interpret):
    return _forward(q, k, v, bias, interpret)


def _attend_fwd(q, k, v, bias, interpret):
    return _forward(q, k, v, bias, interpret), (q, k, v, bias)


def _attend_bwd(interpret, residuals, do):
    q, k, v, bias = residuals
    return _backward(q, k, v, bias, do, interpret)


_attend.defvjp(_attend_fwd, _attend_bwd)
