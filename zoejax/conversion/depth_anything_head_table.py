"""Weight tables of the Depth Anything DPT head (``zoejax.models.depth_anything_head``) in its two layouts.

* official (Depth Anything V1 / V2 ``.pth`` state dicts, and inside the DA1 metric ``.pt``): ``depth_head.projects.i``,
  ``depth_head.resize_layers.i``, ``depth_head.scratch.layerN_rn``, ``...scratch.refinenetN.*``,
  ``...scratch.output_conv1``, ``...scratch.output_conv2.{0,2}``;
* transformers ``DepthAnythingForDepthEstimation``: ``neck.reassemble_stage.layers.i.{projection,resize}``,
  ``neck.convs.i`` (layerN_rn), ``neck.fusion_stage.layers.{3..0}`` (refinenet1..4, coarse to fine) with
  ``residual_layer{1,2}.convolution{1,2}`` and ``projection``, ``head.conv{1,2,3}`` (output_conv*).

refinenet4's first residual unit is stored in both layouts but never called: it is an extra (kept for export).
The reassemble's entries (``projects`` / ``resize_layers``) are the DINOv2 family's, which ZoeDepth on DINOv2 shares.
"""

from __future__ import annotations

from zoejax.conversion.dinov2_table import reassemble_hf, reassemble_official
from zoejax.conversion.table import Table
from zoejax.models.depth_anything_head import RESIZE_FACTORS, DepthAnythingHeadConfig


def official_head_entries(t: Table, config: DepthAnythingHeadConfig, flax_prefix: str = "depth_head",
                          prefix: str = "depth_head.") -> None:
    """The head's entries in the official layout (torch keys under ``prefix``, Flax paths under ``flax_prefix``)."""
    del config  # every width is in the shapes; the layout is the same for every size
    f, p = flax_prefix, prefix
    reassemble_official(t, f, p.rstrip("."))
    s, ps = f"{f}/scratch", f"{p}scratch"
    for k in range(1, 5):
        t.conv(f"{s}/layer{k}_rn", f"{ps}.layer{k}_rn", bias=False)
        for u in ((2,) if k == 4 else (1, 2)):
            for c in (1, 2):
                t.conv(f"{s}/refinenet{k}/resConfUnit{u}/conv{c}", f"{ps}.refinenet{k}.resConfUnit{u}.conv{c}")
        t.conv(f"{s}/refinenet{k}/out_conv", f"{ps}.refinenet{k}.out_conv")
    t.unused_residual_unit(f"{ps}.refinenet4.resConfUnit1", ("conv1", "conv2"))
    t.conv(f"{s}/output_conv1", f"{ps}.output_conv1")
    t.conv(f"{s}/output_conv2_0", f"{ps}.output_conv2.0")
    t.conv(f"{s}/output_conv2_2", f"{ps}.output_conv2.2")


def hf_head_entries(t: Table, config: DepthAnythingHeadConfig, flax_prefix: str = "depth_head") -> None:
    """The head's entries in transformers' ``DepthAnythingForDepthEstimation`` layout (``neck.*``, ``head.*``)."""
    del config
    f = flax_prefix
    reassemble_hf(t, f, "neck.reassemble_stage")
    s = f"{f}/scratch"
    for k in range(1, 5):
        t.conv(f"{s}/layer{k}_rn", f"neck.convs.{k - 1}", bias=False)
        fusion = f"neck.fusion_stage.layers.{4 - k}"
        for u in ((2,) if k == 4 else (1, 2)):
            for c in (1, 2):
                t.conv(f"{s}/refinenet{k}/resConfUnit{u}/conv{c}", f"{fusion}.residual_layer{u}.convolution{c}")
        t.conv(f"{s}/refinenet{k}/out_conv", f"{fusion}.projection")
    t.unused_residual_unit("neck.fusion_stage.layers.0.residual_layer1", ("convolution1", "convolution2"))
    for flax, hf in (("output_conv1", "conv1"), ("output_conv2_0", "conv2"), ("output_conv2_2", "conv3")):
        t.conv(f"{s}/{flax}", f"head.{hf}")


def hf_head_config(config: DepthAnythingHeadConfig, embed_dim: int, patch_size: int = 14) -> dict:
    """transformers ``DepthAnythingConfig`` keyword arguments of the head (the backbone's are the encoder's)."""
    return {"reassemble_hidden_size": embed_dim, "patch_size": patch_size,
            "reassemble_factors": list(RESIZE_FACTORS), "neck_hidden_sizes": list(config.out_channels),
            "fusion_hidden_size": config.features, "head_hidden_size": config.head_features, "head_in_index": -1,
            "depth_estimation_type": config.depth_type,
            # transformers 5.24's config takes an int (every release's bound is whole metres)
            "max_depth": int(config.max_depth) if float(config.max_depth).is_integer() else config.max_depth}


def head_config_from_hf(hf: dict) -> DepthAnythingHeadConfig:
    """The head of a transformers ``config.json`` (ValueError naming a field zoejax's head cannot represent)."""
    factors = tuple(float(x) for x in hf.get("reassemble_factors", RESIZE_FACTORS))
    if factors != tuple(float(x) for x in RESIZE_FACTORS):
        raise ValueError(f"config.json reassemble_factors {list(factors)} are not Depth Anything's "
                         f"{list(RESIZE_FACTORS)}")
    if int(hf.get("head_in_index", -1)) != -1:
        raise ValueError(f"config.json head_in_index={hf['head_in_index']} is not -1 (the finest fusion output)")
    depth_type = hf.get("depth_estimation_type", "relative")
    max_depth = hf.get("max_depth")
    return DepthAnythingHeadConfig(
        features=int(hf.get("fusion_hidden_size", 64)),
        out_channels=tuple(int(x) for x in hf.get("neck_hidden_sizes", (48, 96, 192, 384))),
        head_features=int(hf.get("head_hidden_size", 32)), depth_type=depth_type,
        max_depth=1.0 if max_depth is None else float(max_depth))
