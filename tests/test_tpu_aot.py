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
