"""Analytic FLOP count of a ZoeDepth forward from its config: every matmul and convolution, 2 FLOPs per
multiply-add (the convention of XLA's cost analysis and of MFU).

Counted: the encoder and the features it hands the decoder, by the backbone family's own count in the registry
(BEiT: patch embedding, per block qkv / q k^T / attention x v / output projection / MLP, the four reassemble
stages; Swin: patch embedding, per block window attention and MLP, patch merging); the DPT ``scratch`` convs
(layer{k}_rn, residual conv units, out_convs, the relative-depth head); the metric head's 1x1 convs (seed
regressor and projector, per-level projectors and attractor MLPs, the conditional log-binomial MLP) and the
final sum of probabilities x centres. Not counted: elementwise work (norms, softmax, GELU, resizes, attractor
shifts), which XLA's cost analysis does count, so the analytic total sits a few percent below XLA's on the
full-size models.

A training step is taken as 3x the forward (forward + backward of activations and of weights), the usual
model-FLOPs convention for MFU; rematerialisation adds real work but no model FLOPs.
"""

from __future__ import annotations

from zoejax.models.backbones.registry import backbone_of
from zoejax.models.config import ZoeDepthConfig
from zoejax.models.depth_anything_config import DepthAnythingConfig
from zoejax.models.relative_depth import RelativeDepthConfig


def forward_flops_breakdown(config: ZoeDepthConfig, batch: int, height: int, width: int) -> dict[str, int]:
    """Matmul/conv FLOPs of one forward on (batch, height, width, 3) images, by component.

    Keys: the backbone family's (BEiT: patch_embed, attention, mlp, reassemble; Swin: patch_embed, attention, mlp,
    patch_merging), then scratch and metric_head. Single-head models (ZoeD_N, ZoeD_K) and the naive head on the
    MiDaS core; raises NotImplementedError for ZoeD_NK (router) and for the Depth Anything DPT head (a Depth
    Anything model, or the Depth Anything core of a ZoeDepth one). A relative model (``RelativeDepthConfig``): its
    core's, without metric_head.
    """
    if isinstance(config, DepthAnythingConfig):  # its DPT head sits on the H/14 token grid, not MiDaS' H/4..H/32
        raise NotImplementedError("no analytic count for the Depth Anything DPT head")
    if isinstance(config, RelativeDepthConfig):
        out = forward_flops_breakdown(config.core, batch, height, width)
        out.pop("metric_head")
        return out
    if config.is_multi_head:
        raise NotImplementedError("no analytic count for ZoeD_NK's router: single-head models only")
    if config.core != "midas":  # the DPT below is MiDaS' (maps at H/4..H/32)
        raise NotImplementedError("no analytic count for the Depth Anything core's DPT head")
    enc, dec, head = config.backbone, config.decoder, config.head
    if height % 32 or width % 32:
        raise ValueError(f"height and width must be multiples of 32, got {height}x{width}")
    b = batch

    def mm(rows: int, k: int, cols: int) -> int:  # (rows x k) @ (k x cols)
        return 2 * rows * k * cols

    out = backbone_of(enc).flops(enc, tuple(dec.reassemble_features), b, height, width)
    fs, r = dec.features, dec.num_relative_features
    pix = {k: (height // k) * (width // k) for k in (1, 2, 4, 8, 16, 32)}
    stage_pix = (pix[4], pix[8], pix[16], pix[32])
    scratch = sum(b * mm(px, 9 * f, fs) for px, f in zip(stage_pix, dec.reassemble_features, strict=True))
    rcu = 2 * mm(1, 9 * fs, fs)  # two 3x3 convs per residual conv unit, per pixel
    # refinenet4: one RCU at H/32; refinenet3..1: two RCUs at H/16..H/4. Each block's out_conv runs at its input
    # resolution, before the x2 resize (FeatureFusionBlock).
    scratch += b * (pix[32] * rcu + mm(pix[32], fs, fs))
    for here in (16, 8, 4):
        scratch += b * (2 * pix[here] * rcu + mm(pix[here], fs, fs))
    half = fs // 2
    scratch += b * (mm(pix[2], 9 * fs, half) + mm(pix[1], 9 * half, r) + mm(pix[1], r, 1))
    out["scratch"] = scratch

    if head.head_type == "naive":
        out["metric_head"] = b * (mm(pix[1], r + 1, 32) + mm(pix[1], 32, 1))
        return out
    bins = config.bins[0]
    e, nb = head.bin_embedding_dim, bins.n_bins
    normed = head.bin_centers_type == "normed"
    proj = mm(1, fs, head.projector_mlp_dim) + mm(1, head.projector_mlp_dim, e)  # per pixel
    metric = b * pix[32] * (mm(1, fs, fs) + mm(1, fs, head.seed_mlp_dim) + mm(1, head.seed_mlp_dim, nb) + proj)
    for level, n_att in zip((16, 8, 4, 2), head.n_attractors, strict=True):
        outs = 2 * n_att if normed else n_att
        metric += b * pix[level] * (proj + mm(1, e, e) + mm(1, e, outs))
    main = r + (1 if head.use_rel_depth else 0)
    hidden = (main + e) // head.clb_bottleneck_factor
    # The log-binomial's first conv: the bin embedding's rows at H/2, before its resize (ConditionalLogBinomial).
    metric += b * (pix[1] * (mm(1, main, hidden) + mm(1, hidden, 4) + mm(1, nb, 1)) + pix[2] * mm(1, e, hidden))
    out["metric_head"] = metric
    return out


def forward_flops(config: ZoeDepthConfig, batch: int, height: int, width: int) -> int:
    """Total matmul/conv FLOPs of one forward (see ``forward_flops_breakdown``)."""
    return sum(forward_flops_breakdown(config, batch, height, width).values())


def train_step_flops(config: ZoeDepthConfig, batch: int, height: int, width: int) -> int:
    """Model FLOPs of one training step: 3x the forward (forward, activation gradients, weight gradients)."""
    return 3 * forward_flops(config, batch, height, width)


def xla_flops(fn, *args) -> float:
    """XLA's cost-analysis FLOPs of ``jax.jit(fn)`` lowered (not compiled) for ``args`` (arrays or
    ``jax.ShapeDtypeStruct``s). ``fn`` should run a model built with ``zoejax.ops.platform.ANALYSIS`` op forms
    (batched attention: the cost analysis counts a ``lax.map`` body once; XLA's convolutions: model FLOPs, not
    those of the CPU's Winograd convolutions)."""
    import jax

    cost = jax.jit(fn).lower(*args).cost_analysis()
    if isinstance(cost, list | tuple):  # older jax returned one dict per computation
        cost = cost[0]
    return float(cost["flops"])
