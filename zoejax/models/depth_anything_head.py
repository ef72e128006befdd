"""The Depth Anything DPT head (``depth_head`` of Depth Anything V1 and V2): reassemble, ``scratch`` fusion and the
depth output, on the four hooked token maps of a ViT/14 encoder (DINOv2).

Layout is NHWC. Parameter names mirror the torch paths of the official ``DPTHead``:
``projects_{i}`` (1x1 conv), ``resize_layers_{i}`` (ConvTranspose 4/4, ConvTranspose 2/2, none, conv 3x3 stride 2),
``scratch/layer{k}_rn`` (3x3, no bias), ``scratch/refinenet{k}`` (MiDaS' fusion blocks from ``zoejax.models.dpt``),
``scratch/output_conv1`` and ``scratch/output_conv2_{0,2}``. There is no class-token readout (``use_clstoken=False``
in every release). Every resize is bilinear with align_corners=True.

Unlike MiDaS' head, the fusion blocks upsample to the next map's exact size (the token grid of a 14-pixel patch need
not be even), and the head resizes to 14x the token grid, i.e. the input size, before its last two convolutions.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from zoejax.models.dpt import ConvTransposeNonOverlapping, FeatureFusionBlock
from zoejax.ops.conv import conv_for
from zoejax.ops.platform import GENERIC, OpForms
from zoejax.ops.resize import resize_bilinear

Dtype = Any

DEPTH_TYPES = ("relative", "metric")
# Resampling of the four taps from the token grid (H/14): x4, x2, x1, x1/2.
RESIZE_FACTORS = (4, 2, 1, 0.5)


@dataclasses.dataclass(frozen=True)
class DepthAnythingHeadConfig:
    """The Depth Anything DPT head.

    Attributes:
      features: fusion width (``features``: 64 / 128 / 256 / 384 for ViT-S / B / L / G).
      out_channels: the four reassembled widths (``out_channels``; L: 256, 512, 1024, 1024).
      head_features: output_conv2's hidden width (32 in every release).
      depth_type: "relative" (ReLU: relative inverse depth, unitless) or "metric" (Sigmoid x max_depth: metres).
      max_depth: the metric output's upper bound in metres (Depth Anything V2: 20 Hypersim, 80 VKITTI2); a
        relative head multiplies its ReLU output by it as transformers does (1 in every release: the identity).
    """

    features: int = 256
    out_channels: tuple[int, int, int, int] = (256, 512, 1024, 1024)
    head_features: int = 32
    depth_type: str = "relative"
    max_depth: float = 1.0

    def __post_init__(self):
        if self.depth_type not in DEPTH_TYPES:
            raise ValueError(f"head.depth_type={self.depth_type!r} is not one of {list(DEPTH_TYPES)}")
        if len(self.out_channels) != 4:
            raise ValueError(f"head.out_channels must have 4 widths, got {tuple(self.out_channels)}")
        if self.features % 2:
            raise ValueError(f"head.features must be even (output_conv1 halves it), got {self.features}")
        if not self.max_depth > 0:
            raise ValueError(f"head.max_depth must be positive (metres), got {self.max_depth}")


def reassemble(maps: Sequence[jnp.ndarray], out_channels: Sequence[int], dtype: Dtype, param_dtype: Dtype,
               ops: OpForms = GENERIC) -> list[jnp.ndarray]:
    """The head's reassemble: per tapped block, a 1x1 conv to ``out_channels[i]`` (``projects_{i}``) and a
    resample to 4x, 2x, 1x, 1/2x the patch grid (``resize_layers_{i}``; the identity has no parameters). Call it
    inside a compact module: the layers are created there (the DINOv2 family's ``reassemble`` does, for ZoeDepth).

    Args:
      maps: four (B, gh, gw, D) patch-token maps (class and register tokens already dropped: no readout).
    Returns:
      four (B, h_i, w_i, out_channels[i]) maps: (4gh, 4gw), (2gh, 2gw), (gh, gw), (ceil(gh/2), ceil(gw/2)).
    """
    conv = functools.partial(nn.Conv, dtype=dtype, param_dtype=param_dtype, conv_general_dilated=conv_for(ops))
    out = []
    for i, (x, channels, factor) in enumerate(zip(maps, out_channels, RESIZE_FACTORS, strict=True)):
        x = conv(channels, (1, 1), name=f"projects_{i}")(x.astype(dtype))
        if factor > 1:
            x = ConvTransposeNonOverlapping(channels, factor, dtype, param_dtype, name=f"resize_layers_{i}")(x)
        elif factor < 1:
            # Symmetric padding 1, as torch's padding=1 ('SAME' would pad (0, 1) for even sizes).
            x = conv(channels, (3, 3), strides=(2, 2), padding=((1, 1), (1, 1)), name=f"resize_layers_{i}")(x)
        out.append(x)
    return out


class DepthAnythingScratch(nn.Module):
    """``depth_head.scratch``: layer{k}_rn, refinenet4..1 and the depth output (output_conv1, output_conv2)."""

    config: DepthAnythingHeadConfig
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32
    ops: OpForms = GENERIC  # platform-dependent op forms (zoejax.ops.platform)

    @nn.compact
    def __call__(self, layers: Sequence[jnp.ndarray], out_size: tuple[int, int]) -> dict[str, jnp.ndarray]:
        """layers: the four reassembled maps (finest first); out_size: (H, W) of the depth map (14 x the grid).

        Returns (NHWC): l4_rn, r4, r3, r2, r1 (the fusion outputs, ``features`` channels, r1 at 8x the grid),
        out_conv (B, H, W, head_features) after its ReLU (what ZoeDepth's metric head reads), and depth (B, H, W):
        relative inverse depth (>= 0, unitless) or metric depth in metres (0..max_depth).
        """
        cfg = self.config
        conv = functools.partial(nn.Conv, dtype=self.dtype, param_dtype=self.param_dtype,
                                 conv_general_dilated=conv_for(self.ops))
        rn = [conv(cfg.features, (3, 3), padding=((1, 1), (1, 1)), use_bias=False, name=f"layer{k}_rn")(x)
              for k, x in zip(range(1, 5), layers, strict=True)]
        fusion = functools.partial(FeatureFusionBlock, cfg.features, dtype=self.dtype, param_dtype=self.param_dtype,
                                   ops=self.ops)
        r4 = fusion(has_skip=False, name="refinenet4")(rn[3], size=rn[2].shape[1:3])
        r3 = fusion(name="refinenet3")(r4, rn[2], size=rn[1].shape[1:3])
        r2 = fusion(name="refinenet2")(r3, rn[1], size=rn[0].shape[1:3])
        r1 = fusion(name="refinenet1")(r2, rn[0])

        x = conv(cfg.features // 2, (3, 3), padding=((1, 1), (1, 1)), name="output_conv1")(r1)
        x = resize_bilinear(x, out_size, align_corners=True, form=self.ops.resize)
        x = conv(cfg.head_features, (3, 3), padding=((1, 1), (1, 1)), name="output_conv2_0")(x)
        out_conv = nn.relu(x)
        y = conv(1, (1, 1), name="output_conv2_2")(out_conv)[..., 0].astype(jnp.float32)
        depth = (nn.relu(y) if cfg.depth_type == "relative" else nn.sigmoid(y)) * cfg.max_depth
        return {"l4_rn": rn[3], "r4": r4, "r3": r3, "r2": r2, "r1": r1, "out_conv": out_conv, "depth": depth}


class DepthAnythingHead(nn.Module):
    """``depth_head``: ``reassemble`` then ``DepthAnythingScratch``.

    Attributes:
      config: the head's widths and output type.
      patch_size: the encoder's patch size in pixels (14): the depth map is ``patch_size`` x the token grid.
    """

    config: DepthAnythingHeadConfig
    patch_size: int = 14
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32
    ops: OpForms = GENERIC  # platform-dependent op forms (zoejax.ops.platform)

    @nn.compact
    def __call__(self, maps: Sequence[jnp.ndarray]) -> dict[str, jnp.ndarray]:
        """maps: the four tapped blocks' (B, gh, gw, D) patch-token maps -> the scratch's dict (see
        ``DepthAnythingScratch``; depth (B, patch*gh, patch*gw)) plus ``reassembled``, the four maps."""
        layers = reassemble(maps, self.config.out_channels, self.dtype, self.param_dtype, self.ops)
        grid = maps[0].shape[1:3]
        out_size = (self.patch_size * grid[0], self.patch_size * grid[1])
        out = DepthAnythingScratch(self.config, self.dtype, self.param_dtype, self.ops, name="scratch")(
            layers, out_size)
        return {**out, "reassembled": layers}
