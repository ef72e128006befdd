"""The Depth Anything core of ZoeDepth (Depth Anything V1 metric): a DINOv2 encoder and the Depth Anything DPT head,
handing ZoeDepth's metric head the same taps as ``MidasCore``.

Parameter tree (one ``core.`` level dropped from the official torch paths, as for the MiDaS core):
  core/pretrained/...     the registry's DINOv2 encoder   (official core.core.pretrained.*)
  core/depth_head/...     reassemble, fusion and output    (official core.core.depth_head.*)
"""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from zoejax.models.backbones.registry import backbone_of
from zoejax.models.config import ZoeDepthConfig, parse_dtype
from zoejax.models.depth_anything_head import DepthAnythingHead, DepthAnythingHeadConfig
from zoejax.ops.platform import GENERIC, OpForms


def head_config(config: ZoeDepthConfig) -> DepthAnythingHeadConfig:
    """The DPT head's widths from the ZoeDepth decoder config (features, reassemble widths, output_conv2 width);
    the relative output (ReLU, unitless) is what ZoeDepth's log-binomial reads."""
    dc = config.decoder
    return DepthAnythingHeadConfig(features=dc.features, out_channels=tuple(dc.reassemble_features),
                                   head_features=dc.num_relative_features, depth_type="relative")


class DepthAnythingCore(nn.Module):
    """DINOv2 + the Depth Anything DPT head as a ZoeDepth core.

    Takes ImageNet-normalised images (B, H, W, 3), H and W multiples of the patch size (14); returns the decoder
    taps ZoeDepth's metric head reads (NHWC): ``out_conv`` (B, H, W, 32) after output_conv2's ReLU, ``rel_depth``
    (B, H, W) relative inverse depth, ``l4_rn`` at H/14, ``r4``..``r1`` at 2x..16x that grid (all ``features``
    channels), plus ``encoder_taps`` and ``reassembled``.
    """

    config: ZoeDepthConfig
    ops: OpForms = GENERIC  # platform-dependent op forms (zoejax.ops.platform)

    @nn.compact
    def __call__(self, images: jnp.ndarray) -> dict[str, jnp.ndarray]:
        cfg, bc = self.config, self.config.backbone
        dtype, pdtype = parse_dtype(cfg.dtype), parse_dtype(cfg.param_dtype)
        taps = backbone_of(bc).encoder(bc, cfg.remat, dtype, pdtype, ops=self.ops, name="pretrained")(images)
        out = DepthAnythingHead(head_config(cfg), bc.patch_size, dtype, pdtype, self.ops, name="depth_head")(
            [patches for patches, _cls in taps])
        features = {k: v for k, v in out.items() if k != "depth"}
        return {**features, "rel_depth": out["depth"], "encoder_taps": taps}
