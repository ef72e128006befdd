"""Softmax attention with a per-head additive bias shared by every example, as Pallas TPU kernels (the TPU form).

Why a kernel: XLA's batched attention writes the (B, heads, N, N) logits, probabilities and their gradients to
HBM several times per block, and it adds the bias and reduces the bias gradient over the batch in passes of their
own; on a v5p chip those passes cost BEiT-L more than its matmuls (the compiler puts a 384x512 block at 2.5 ms
against 0.6 ms of matmul work). Here every (N, N) tile stays in VMEM. BEiT's sequences are short (769 tokens at
384x512), so a query block sees all keys at once: the softmax is exact in one pass, with no online rescaling,
and the backward recomputes it from q, k and the bias alone (no saved statistics).

Layout: the kernels read q, k and v straight from the projection's output, (B, 3, N, heads * d), and write the
attention output as (B, N, heads * d), the next projection's input: no head-major transposes. A grid step takes
one example and a group of heads one TPU lane tile wide (two 64-wide heads; all heads when they are narrower
than a tile). Blocks span the whole token axis (a full-size block needs no padding to the tile sizes), and the
kernels walk it in ``ROW_CHUNK``-row pieces. Examples are the innermost grid axis: a head's bias (heads, N, N) is
read once for the whole batch, and its gradient is summed over the examples in the resident output tile, so the
(B, heads, N, N) gradient never exists in HBM. The backward recomputes the probabilities from q, k and the bias.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax.experimental import pallas as pl
from jax.experimental.pallas import tpu as pltpu
from jax.sharding import PartitionSpec as P

ROW_CHUNK = 128  # query rows the kernels work on at a time: bounds the (rows, N) float32 temporaries in VMEM
LANES = 128  # a TPU lane tile: the width of the heads a grid step takes
MXU_WIDTH = 128  # the systolic array's width: a 64-wide head dimension fills half of it
_NT = (((1,), (1,)), ((), ()))  # a @ b.T


def fused_attention(qkv: jnp.ndarray, bias: jnp.ndarray, heads: int, *, interpret: bool = False) -> jnp.ndarray:
    """softmax(q k^T + bias) v per head, with float32 logits and softmax.

    Args:
      qkv: (B, 3, N, heads * head_dim) in the compute dtype: q (already multiplied by the scale), k and v, each
        with its heads side by side on the last axis.
      bias: (heads, N, N), shared by every example; added in qkv's dtype (as the batched XLA form does).
      heads: the number of heads.
      interpret: run the kernels in Pallas' interpreter (any backend; for tests off TPU).
    Returns:
      (B, N, heads * head_dim) in qkv's dtype, the heads side by side.
    """
    b, three, n, width = qkv.shape
    if three != 3 or width % heads:
        raise ValueError(f"qkv must be (B, 3, N, heads * head_dim) with heads={heads}, got {qkv.shape}")
    if bias.shape != (heads, n, n):
        raise ValueError(f"bias must be (heads, N, N) = {(heads, n, n)}, got {bias.shape}")

    def local(qkv, bias):
        return _attend(qkv, bias.astype(qkv.dtype), bias.shape[0], interpret)

    mesh = jax.sharding.get_abstract_mesh()
    if mesh.empty or mesh.size == 1:
        return local(qkv, bias)
    # XLA cannot partition a Mosaic kernel: under a mesh it runs per shard, examples split over the batch axes
    # and heads over "tensor" where they divide (the logical rules of zoejax.training.sharding, which ops cannot
    # import: the names are the mesh's). The bias gradient is summed over the batch shards by shard_map.
    batch_axes = tuple(a for a in ("data", "fsdp") if a in mesh.axis_names and b % mesh.shape[a] == 0)
    head_axis = "tensor" if "tensor" in mesh.axis_names and heads % mesh.shape["tensor"] == 0 else None
    return jax.shard_map(local, mesh=mesh, in_specs=(P(batch_axes or None, None, None, head_axis),
                                                      P(head_axis, None, None)),
                         out_specs=P(batch_axes or None, None, head_axis), check_vma=False)(qkv, bias)


def head_group(heads: int, head_dim: int) -> int:
    """Heads per grid step: as many as fill one lane tile, or all of them when the heads are narrower in all
    (a block's last axis is a multiple of the tile or the whole axis)."""
    if LANES % head_dim == 0 and (heads * head_dim) % LANES == 0:
        return LANES // head_dim
    if head_dim % LANES == 0:
        return 1
    return heads


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


def _forward_kernel(qkv_ref, bias_ref, o_ref):
    group = bias_ref.shape[0]
    d = o_ref.shape[-1] // group
    for j in range(group):
        cols = pl.ds(j * d, d)
        k, v = qkv_ref[1, :, cols], qkv_ref[2, :, cols]
        for start, size in _chunks(o_ref.shape[0]):
            rows = pl.ds(start, size)
            p = _probabilities(qkv_ref[0, rows, cols], k, bias_ref[j, rows, :])
            o_ref[rows, cols] = _dot(p.astype(v.dtype), v).astype(o_ref.dtype)


def _backward_kernel(qkv_ref, bias_ref, do_ref, dqkv_ref, dbias_ref):
    @pl.when(pl.program_id(1) == 0)  # the first example of these heads: the bias gradient starts at 0
    def _():
        dbias_ref[...] = jnp.zeros(dbias_ref.shape, dbias_ref.dtype)

    group = bias_ref.shape[0]
    d = do_ref.shape[-1] // group
    for j in range(group):
        cols = pl.ds(j * d, d)
        k, v = qkv_ref[1, :, cols], qkv_ref[2, :, cols]
        dk = jnp.zeros(k.shape, jnp.float32)
        dv = jnp.zeros(v.shape, jnp.float32)
        for start, size in _chunks(do_ref.shape[0]):
            rows = pl.ds(start, size)
            q, do = qkv_ref[0, rows, cols], do_ref[rows, cols]
            p = _probabilities(q, k, bias_ref[j, rows, :])
            dp = jax.lax.dot_general(do, v, _NT, preferred_element_type=jnp.float32,
                                     precision=_precision(do.dtype))
            # Row sums of p * dp equal those of d_out * out: computed here, the forward output is not needed.
            ds = p * (dp - jnp.sum(p * dp, axis=-1, keepdims=True))
            dqkv_ref[0, rows, cols] = _dot(ds.astype(k.dtype), k).astype(dqkv_ref.dtype)
            dk = dk + _dot(ds.T.astype(q.dtype), q)
            dv = dv + _dot(p.T.astype(do.dtype), do)
            dbias_ref[j, rows, :] = dbias_ref[j, rows, :] + ds
        dqkv_ref[1, :, cols] = dk.astype(dqkv_ref.dtype)
        dqkv_ref[2, :, cols] = dv.astype(dqkv_ref.dtype)


def _specs(shape, heads: int):
    """Grid and block specs for a (B, 3, N, heads * d) qkv: (head groups, examples), examples innermost, so a
    group's bias (and its gradient) stays resident across the batch."""
    b, _, n, width = shape
    group = head_group(heads, width // heads)
    lanes = group * (width // heads)
    qkv = pl.BlockSpec((None, 3, n, lanes), lambda g, e: (e, 0, 0, g))
    out = pl.BlockSpec((None, n, lanes), lambda g, e: (e, 0, g))
    # The bias and its gradient stay put while the examples go by: one VMEM buffer each, not the pipeline's two
    # (BEiT-L: 2 x 2.4 MB of bias and 2 x 4.7 MB of float32 gradient would pass the 16 MB scoped VMEM).
    bias = pl.BlockSpec((group, n, n), lambda g, e: (g, 0, 0), pipeline_mode=pl.Buffered(1))
    return (heads // group, b), qkv, out, bias


def _cost(shape, heads: int, itemsize: int, matmuls: int, extra_bytes: int) -> pl.CostEstimate:
    """The kernel's work for the compiler's cost model. Matmul flops are counted at the MXU's width: a
    head_dim below it leaves the array partly idle, and the estimate should say so rather than assume a full
    array."""
    b, _, n, width = shape
    flops = matmuls * 2 * b * heads * n * n * max(width // heads, MXU_WIDTH)
    io = 4 * b * n * width * itemsize  # q, k, v and the output (forward) or d_out (backward)
    return pl.CostEstimate(flops=flops, transcendentals=b * heads * n * n, bytes_accessed=io + extra_bytes)


def _forward(qkv, bias, heads, interpret):
    grid, qkv_spec, out_spec, bias_spec = _specs(qkv.shape, heads)
    b, _, n, width = qkv.shape
    return pl.pallas_call(
        _forward_kernel, grid=grid, in_specs=[qkv_spec, bias_spec], out_specs=out_spec,
        out_shape=jax.ShapeDtypeStruct((b, n, width), qkv.dtype),
        compiler_params=pltpu.CompilerParams(dimension_semantics=("parallel", "arbitrary")),
        cost_estimate=_cost(qkv.shape, heads, qkv.dtype.itemsize, 2, bias.size * bias.dtype.itemsize),
        interpret=interpret, name="fused_attention_fwd")(qkv, bias)


def _backward(qkv, bias, do, heads, interpret):
    grid, qkv_spec, out_spec, bias_spec = _specs(qkv.shape, heads)
    b, _, n, width = qkv.shape
    out_shape = (jax.ShapeDtypeStruct(qkv.shape, qkv.dtype), jax.ShapeDtypeStruct(bias.shape, jnp.float32))
    extra = bias.size * (bias.dtype.itemsize + 4) + 3 * b * n * width * qkv.dtype.itemsize
    dqkv, dbias = pl.pallas_call(
        _backward_kernel, grid=grid, in_specs=[qkv_spec, bias_spec, out_spec],
        out_specs=[qkv_spec, bias_spec], out_shape=out_shape,
        compiler_params=pltpu.CompilerParams(dimension_semantics=("parallel", "arbitrary")),
        cost_estimate=_cost(qkv.shape, heads, qkv.dtype.itemsize, 5, extra), interpret=interpret,
        name="fused_attention_bwd")(qkv, bias, do)
    return dqkv, dbias.astype(bias.dtype)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def _attend(qkv, bias, heads, interpret):
    return _forward(qkv, bias, heads, interpret)


def _attend_fwd(qkv, bias, heads, interpret):
    return _forward(qkv, bias, heads, interpret), (qkv, bias)


def _attend_bwd(heads, interpret, residuals, do):
    qkv, bias = residuals
    return _backward(qkv, bias, do, heads, interpret)


_attend.defvjp(_attend_fwd, _attend_bwd)
