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
from zoejax.ops.platform import ANALYSIS

# Swin's elementwise work (masks, biases, the softmax over window logits, norms at every block) is a larger share
# than BEiT's: the analytic matmul/conv count sits further below XLA's total.
LOWER_SWIN_TINY = 0.6
LOWER_SWIN = 0.9


def _xla(cfg, batch, size):
    model = ZoeDepth(cfg, ops=ANALYSIS)
    images = jax.ShapeDtypeStruct((batch, *size, 3), jnp.float32)
    return flops.xla_flops(lambda p, x: model.apply({"params": p}, x)["metric_depth"], param_shapes(cfg), images)


@pytest.mark.parametrize("variant,backbone,batch,size,lower", [
    ("zoed_n", "tiny", 2, (64, 96), 0.75),
    ("zoed_k", "tiny", 1, (64, 64), 0.75),
    ("zoed_n", "small", 1, (128, 160), 0.9),
    ("zoed_n", "beit_l384", 1, (384, 512), 0.98),
    ("zoed_n", "swin2_tiny", 2, (64, 96), LOWER_SWIN_TINY),
    ("zoed_k", "swin_tiny", 1, (64, 64), LOWER_SWIN_TINY),
    # Full size with windows below the CPU loop's threshold (batched attention, which the cost analysis counts whole).
    ("zoed_n", "swin_l384", 1, (384, 512), LOWER_SWIN),
])
def test_analytic_matches_xla(variant, backbone, batch, size, lower):
    cfg = presets.VARIANTS[variant](backbone)
    analytic = flops.forward_flops(cfg, batch, *size)
    xla = _xla(cfg, batch, size)
    assert lower * xla <= analytic <= xla, (analytic, xla, analytic / xla)


def test_swin_breakdown_counts_every_window():
    # Swin-L at 384x512: stage grids 96x128, 48x64, 24x32, 12x16 with windows 12, 12, 12 and 12 (the last stage's
    # grid at the build size, 12x12, is its window), so stage 1 pads 96x128 to 96x132 (11 windows across).
    cfg = presets.zoed_n("swin_l384")
    parts = flops.forward_flops_breakdown(cfg, 1, 384, 512)
    heads, dims, depths = (6, 12, 24, 48), (192, 384, 768, 1536), (2, 2, 18, 2)
    grids, padded = ((96, 128), (48, 64), (24, 32), (12, 16)), ((96, 132), (48, 72), (24, 36), (12, 24))
    attention = mlp = 0
    for (h, w), (ph, pw), c, n_heads, depth in zip(grids, padded, dims, heads, depths, strict=True):
        windows, tokens, head_dim = (ph // 12) * (pw // 12), 144, c // n_heads
        per_window = 2 * tokens * c * (3 * c + c) + n_heads * 2 * (2 * tokens * head_dim * tokens)
        attention += depth * windows * per_window
        mlp += depth * 2 * (2 * h * w * c * 4 * c)
    assert parts["attention"] == attention and parts["mlp"] == mlp
    merging = sum(2 * (h // 2) * (w // 2) * 4 * c * 2 * c for (h, w), c in zip(grids[:3], dims[:3], strict=True))
    assert parts["patch_merging"] == merging
    assert parts["patch_embed"] == 2 * 96 * 128 * 48 * 192
    assert flops.forward_flops(cfg, 3, 384, 512) == 3 * flops.forward_flops(cfg, 1, 384, 512)


def test_breakdown_and_scaling():
    cfg = presets.zoed_n("beit_l384")
    parts = flops.forward_flops_breakdown(cfg, 1, 384, 512)
    # Encoder matmuls per block at 769 tokens: qkv 4.84G, qk^T + av 2.42G, proj 1.61G, MLP 12.9G.
    np.testing.assert_allclose(parts["attention"] / 24, 2 * 769 * 1024 * (4 * 1024 + 2 * 769), rtol=0)
    np.testing.assert_allclose(parts["mlp"] / 24, 2 * 2 * 769 * 1024 * 4096, rtol=0)
    # The GPU/TPU bias expansion per block, once per forward whatever the batch: 24x32 patches, 16 heads.
    bias = parts["position_bias"]
    assert bias / 24 == 2 * 16 * (47 * 32 * 32 * 63 + 24 * 24 * 32 * 32 * 47)
    assert flops.forward_flops(cfg, 4, 384, 512) - bias == 4 * (flops.forward_flops(cfg, 1, 384, 512) - bias)
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


def test_depth_anything_has_no_analytic_count_and_training_falls_back_to_xla():
    # The DPT head of Depth Anything sits on the H/14 token grid, not MiDaS' H/4..H/32 maps this count assumes: it
    # refuses (as a model or as a ZoeDepth core) rather than count the wrong layers, and the training loop's MFU
    # then takes XLA's count of the compiled step (it crashed on a Depth Anything config's missing fields before).
    from zoejax.models.depth_anything_config import PRESETS
    from zoejax.training.monitoring import model_flops_per_device

    for cfg, size in ((PRESETS["da_tiny_metric"], (28, 28)), (presets.da1_metric_n("dinov2_tiny"), (28, 42)),
                      (presets.da1_metric_n("dinov2_tiny"), (448, 448))):  # 448: a multiple of 14 and of 32
        with pytest.raises(NotImplementedError, match="no analytic count for the Depth Anything"):
            flops.forward_flops(cfg, 1, *size)
        assert model_flops_per_device(cfg, (2, *size, 3), 1) is None
