"""The tiny model's sharded train step compiled ahead of time for a 4-chip TPU v5e slice (libtpu, no TPU needed):
it fits the chip, its state is split over the fsdp axis, and it runs the collectives that FSDP implies."""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "benchmarks"))

import tpu_aot  # noqa: E402

ROOT = os.path.join(os.path.dirname(__file__), "..")


def test_tiny_fsdp_train_step_compiles_for_tpu_v5e_2x2():
    config_file = os.path.join(ROOT, "configs", "zoedepth_n.py") + ":tiny"
    r = tpu_aot.compile_step(config_file, "v5e:2x2", (1, 4, 1), 8, dtype="bf16")
    assert r.chips == 4 and r.mesh == (1, 4, 1)
    assert 0 < r.hbm_gib <= r.capacity_gib == 16
    # The compiled step takes the state as the sharding rules split it: every kernel with an "embed" axis (46% of
    # the tiny model's state bytes; 91% at full size) over fsdp, the rest replicated.
    assert 0.4 < r.state_sharded < 0.6, r.state_sharded
    # FSDP: parameters gathered before use; gradients and the loss reduced over the batch shards.
    assert r.collectives["all-gather"]["count"] >= 10, r.collectives
    reductions = sum(r.collectives.get(op, {"count": 0})["count"] for op in ("all-reduce", "reduce-scatter"))
    assert reductions >= 1, r.collectives
    # BEiT's biased attention runs as the Pallas kernels of zoejax.ops.fused_attention, one pair per block,
    # per shard under shard_map (Mosaic kernels cannot be partitioned by XLA); the tiny BEiT has 4 blocks.
    assert r.kernels == {"fused_attention_fwd": 4, "fused_attention_bwd": 4}, r.kernels
    assert r.flops_per_chip > 0 and r.step_s > 0 and 0 < r.mfu < 1
    assert tpu_aot.summary_line(r).startswith("tpu_aot: topology=v5e:2x2 chips=4 hbm_gib_per_chip=")


def test_fused_attention_at_beit_l_size_fits_tpu_vmem_under_an_fsdp_mesh():
    """BEiT-L's attention at 384x512 (769 tokens, 16 heads of 64, 4 images a chip), forward and backward, compiled
    for v5p:2x2x1 per shard under shard_map as the train step runs it: the kernels lower through Mosaic at full
    size (64-wide lane slices of two-head tiles, 769-row blocks) and fit the chip's 16 MB of scoped VMEM. (The
    full step needs the single-buffered bias to fit; the step itself is compiled by benchmarks/tpu_aot.py.)"""
    import jax
    import jax.numpy as jnp
    from jax.sharding import NamedSharding, PartitionSpec

    from zoejax.ops.fused_attention import fused_attention
    from zoejax.training.sharding import make_mesh, traced_under

    mesh = make_mesh((1, 4, 1), tpu_aot.topology_devices("v5p:2x2x1", 1))

    def loss(qkv, bias):
        return jnp.sum(fused_attention(qkv, bias, 16).astype(jnp.float32))

    qkv = jax.ShapeDtypeStruct((16, 3, 769, 1024), jnp.bfloat16,
                               sharding=NamedSharding(mesh, PartitionSpec(("data", "fsdp"))))
    bias = jax.ShapeDtypeStruct((16, 769, 769), jnp.float32, sharding=NamedSharding(mesh, PartitionSpec()))
    compiled = jax.jit(traced_under(mesh, jax.value_and_grad(loss, argnums=(0, 1)))).lower(qkv, bias).compile()
    assert tpu_aot.pallas_kernels(compiled.as_text()) == {"fused_attention_fwd": 1, "fused_attention_bwd": 1}
