"""The analytic FLOP count (zoejax/models/flops.py) against XLA's cost analysis of the lowered forward.

XLA also counts elementwise work (norms, softmax, resizes, attractors), so the analytic matmul/conv count is a
little below it: by <2% on BEiT-L at 384x512, by more on the tiny fixture where the head's elementwise work is
a larger share. Lowering (no compile) keeps the full-size case to a few seconds.
"""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from zoejax.models import flops, presets
from zoejax.models.init import param_shapes
from zoejax.models.zoedepth import ZoeDepth


def _xla(cfg, batch, size):
    model = ZoeDepth(cfg)
    images = jax.ShapeDtypeStruct((batch, *size, 3), jnp.float32)
    return flops.xla_flops(lambda p, x: model.apply({"params": p}, x)["metric_depth"], param_shapes(cfg), images)


@pytest.mark.parametrize("variant,backbone,batch,size,lower", [
    ("zoed_n", "tiny", 2, (64, 96), 0.75),
    ("zoed_k", "tiny", 1, (64, 64), 0.75),
    ("zoed_n", "small", 1, (128, 160), 0.9),
    ("zoed_n", "beit_l384", 1, (384, 512), 0.98),
])
def test_analytic_matches_xla(variant, backbone, batch, size, lower):
    cfg = presets.VARIANTS[variant](backbone)
    analytic = flops.forward_flops(cfg, batch, *size)
    xla = _xla(cfg, batch, size)
    assert lower * xla <= analytic <= xla, (analytic, xla, analytic / xla)


def test_breakdown_and_scaling():
    cfg = presets.zoed_n("beit_l384")
    parts = flops.forward_flops_breakdown(cfg, 1, 384, 512)
    # Encoder matmuls per block at 769 tokens: qkv 4.84G, qk^T + av 2.42G, proj 1.61G, MLP 12.9G.
    np.testing.assert_allclose(parts["attention"] / 24, 2 * 769 * 1024 * (4 * 1024 + 2 * 769), rtol=0)
    np.testing.assert_allclose(parts["mlp"] / 24, 2 * 2 * 769 * 1024 * 4096, rtol=0)
    assert flops.forward_flops(cfg, 4, 384, 512) == 4 * flops.forward_flops(cfg, 1, 384, 512)
    assert flops.train_step_flops(cfg, 1, 384, 512) == 3 * flops.forward_flops(cfg, 1, 384, 512)
    with pytest.raises(NotImplementedError):
        flops.forward_flops(presets.zoed_nk("tiny"), 1, 64, 64)


def test_info_counts_every_attention_head():
    # The small BEiT has 3 heads, so on CPU its attention is a loop of 3 steps, which a cost analysis of that
    # trace counts once: zoejax-info must count the batched form, and so land at or above the analytic count.
    from zoejax.cli.info import summary_lines

    line = next(x for x in summary_lines(presets.zoed_n("small"), (384, 512)) if x.startswith("forward FLOPs"))
    xla, analytic = (float(n.replace(",", "")) for n in re.findall(r"([\d,.]+) GFLOP", line))
    assert analytic <= xla <= 1.05 * analytic, line
