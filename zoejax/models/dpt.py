"""DPT decoder as MiDaS v3.1 builds it for BEiT: readout projection, reassemble, ``scratch`` fusion and head.

Layout is NHWC. Names mirror the torch paths: ``act_postprocess{j}`` (readout ``project``, then the
Sequential's layers 3 and 4 as ``layer3``/``layer4``), ``scratch/layer{k}_rn``, ``scratch/refinenet{k}``
with ``resConfUnit{1,2}/conv{1,2}`` and ``out_conv``, and ``scratch/output_conv_{0,2,4}``.
All resizes are bilinear with align_corners=True (architecture spec section 4). Convolutions go through
``zoejax.ops.conv.conv_general_dilated`` (XLA's own, with a faster kernel gradient on CPU).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from zoejax.models.pointwise import PointwiseConv
from zoejax.ops.conv import conv_for
from zoejax.ops.gelu import gelu_exact
from zoejax.ops.platform import GENERIC, OpForms
from zoejax.ops.resize import resize_bilinear

Dtype = Any


@dataclasses.dataclass(frozen=True)
class DPTConfig:
    """DPT (MiDaS) decoder: reassemble channels per hooked stage, fusion width, head width."""

    reassemble_features: tuple[int, int, int, int] = (256, 512, 1024, 1024)
    features: int = 256
    num_relative_features: int = 32


class ConvTransposeNonOverlapping(nn.Module):
    """ConvTranspose2d with kernel == stride (depth-to-space): out[k*i+a, k*j+c] = x[i, j] @ W[a, c] + b.

    The kernel is stored as (k, k, C_in, C_out), i.e. torch's (C_in, C_out, k, k) transposed (2, 3, 0, 1).
    Written as an einsum: exact, and cheaper than a dilated convolution.
    """

    features: int
    factor: int
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        """(B, H, W, C_in) -> (B, H*k, W*k, C_out)."""
        b, h, w, c = x.shape
        k = self.factor
        kernel = self.param("kernel", nn.initializers.lecun_normal(), (k, k, c, self.features),
                            self.param_dtype)
        bias = self.param("bias", nn.initializers.zeros, (self.features,), self.param_dtype)
        y = jnp.einsum("bhwi,acio->bhawco", x.astype(self.dtype), kernel.astype(self.dtype))
        return y.reshape(b, h * k, w * k, self.features) + bias.astype(self.dtype)


class ReadoutProject(nn.Module):
    """MiDaS' "project" readout, Linear(2D -> D) over each patch token concatenated with the cls token.

    The kernel is nn.Dense's, (2D, D) with the patch rows first, but the product is split as
    ``patches @ W[:D] + cls @ W[D:]``: the cls half is computed once per image instead of once per patch, and the
    (B, N, 2D) concatenation is never built.
    """

    features: int
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, patches: jnp.ndarray, cls: jnp.ndarray) -> jnp.ndarray:
        """patches (B, N, D), cls (B, 1, D) -> (B, N, features)."""
        d = patches.shape[-1]
        kernel = self.param("kernel", nn.with_logical_partitioning(nn.initializers.lecun_normal(), (None, "embed")),
                            (2 * d, self.features), self.param_dtype).astype(self.dtype)
        bias = self.param("bias", nn.initializers.zeros, (self.features,), self.param_dtype).astype(self.dtype)
        patches, cls = patches.astype(self.dtype), cls.astype(self.dtype)
        return jnp.dot(patches, kernel[:d]) + (jnp.dot(cls, kernel[d:]) + bias)


class ReassembleStage(nn.Module):
    """Readout 'project' + tokens-to-grid + resample for one hooked block (``act_postprocess{j}``).

    Attributes:
      features: output channels of this stage.
      resample: "up4" | "up2" | "none" | "down2" (stages 1..4).
    """

    features: int
    resample: str
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32
    ops: OpForms = GENERIC  # platform-dependent op forms (zoejax.ops.platform)

    @nn.compact
    def __call__(self, tokens: jnp.ndarray, grid: tuple[int, int]) -> jnp.ndarray:
        """tokens: (B, 1+N, D) cls first -> (B, h, w, features) at the stage's resolution."""
        b, n, d = tokens.shape
        conv = functools.partial(nn.Conv, dtype=self.dtype, param_dtype=self.param_dtype,
                                 conv_general_dilated=conv_for(self.ops))
        x = ReadoutProject(d, self.dtype, self.param_dtype, name="project")(tokens[:, 1:], tokens[:, :1])
        x = gelu_exact(x)
        x = x.reshape(b, grid[0], grid[1], d)
        x = conv(self.features, (1, 1), name="layer3")(x)
        if self.resample == "up4":
            x = ConvTransposeNonOverlapping(self.features, 4, self.dtype, self.param_dtype, name="layer4")(x)
        elif self.resample == "up2":
            x = ConvTransposeNonOverlapping(self.features, 2, self.dtype, self.param_dtype, name="layer4")(x)
        elif self.resample == "down2":
            # Symmetric padding 1: 'SAME' would pad (0, 1) for even sizes and shift the grid.
            x = conv(self.features, (3, 3), strides=(2, 2), padding=((1, 1), (1, 1)), name="layer4")(x)
        elif self.resample != "none":
            raise ValueError(f"unknown resample {self.resample!r}")
        return x


class ResidualConvUnit(nn.Module):
    """y = conv2(relu(conv1(relu(x)))) + x, 3x3 convs with bias (MiDaS ``ResidualConvUnit_custom``)."""

    features: int
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32
    ops: OpForms = GENERIC  # platform-dependent op forms (zoejax.ops.platform)

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        conv = functools.partial(nn.Conv, self.features, (3, 3), padding=((1, 1), (1, 1)), dtype=self.dtype,
                                 param_dtype=self.param_dtype, conv_general_dilated=conv_for(self.ops))
        y = conv(name="conv1")(nn.relu(x))
        y = conv(name="conv2")(nn.relu(y))
        return y + x


class FeatureFusionBlock(nn.Module):
    """out = out_conv(resize(RCU2(x0 + RCU1(skip)))): resize to ``size`` or x2 (align_corners=True), 1x1 conv.

    Computed as resize(out_conv(...)): bilinear weights sum to one, so an affine 1x1 conv commutes with the
    resize exactly in real arithmetic (float32: ~2e-7 relative), and the conv runs on a quarter of the pixels
    (the three resized blocks of BEiT-L at 384x512: 99 -> 42 ms per forward on CPU-2).

    ``has_skip=False`` is refinenet4, whose resConfUnit1 exists in the official checkpoint but is never
    used; it is not created here (the converter lists it as ignored).
    """

    features: int
    has_skip: bool = True
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32
    ops: OpForms = GENERIC  # platform-dependent op forms (zoejax.ops.platform)

    @nn.compact
    def __call__(self, x: jnp.ndarray, skip: jnp.ndarray | None = None,
                 size: tuple[int, int] | None = None) -> jnp.ndarray:
        if self.has_skip:
            x = x + ResidualConvUnit(self.features, self.dtype, self.param_dtype, self.ops, name="resConfUnit1")(skip)
        x = ResidualConvUnit(self.features, self.dtype, self.param_dtype, self.ops, name="resConfUnit2")(x)
        if size is None:
            size = (2 * x.shape[1], 2 * x.shape[2])
        x = PointwiseConv(self.features, dtype=self.dtype, param_dtype=self.param_dtype, name="out_conv")(x)
        return resize_bilinear(x, size, align_corners=True, form=self.ops.resize)


class Scratch(nn.Module):
    """MiDaS ``scratch``: layer{k}_rn, refinenet4..1 and the relative-depth ``output_conv`` head."""

    features: int = 256
    num_relative_features: int = 32
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32
    ops: OpForms = GENERIC  # platform-dependent op forms (zoejax.ops.platform)

    @nn.compact
    def __call__(self, layers: list[jnp.ndarray]) -> dict[str, jnp.ndarray]:
        """layers: the four reassembled maps at H/4, H/8, H/16, H/32.

        Returns a dict of the decoder features ZoeDepth taps (all NHWC):
          l4_rn (B,H/32,W/32,F), r4 (H/16), r3 (H/8), r2 (H/4), r1 (H/2), out_conv (B,H,W,32) and
          rel_depth (B,H,W), the non-negative relative inverse depth.
        """
        conv = functools.partial(nn.Conv, dtype=self.dtype, param_dtype=self.param_dtype,
                                 conv_general_dilated=conv_for(self.ops))
        rn = [conv(self.features, (3, 3), padding=((1, 1), (1, 1)), use_bias=False, name=f"layer{k}_rn")(x)
              for k, x in zip(range(1, 5), layers, strict=True)]
        fusion = functools.partial(FeatureFusionBlock, self.features, dtype=self.dtype,
                                   param_dtype=self.param_dtype, ops=self.ops)
        r4 = fusion(has_skip=False, name="refinenet4")(rn[3], size=rn[2].shape[1:3])
        r3 = fusion(name="refinenet3")(r4, rn[2], size=rn[1].shape[1:3])
        r2 = fusion(name="refinenet2")(r3, rn[1], size=rn[0].shape[1:3])
        r1 = fusion(name="refinenet1")(r2, rn[0])

        x = conv(self.features // 2, (3, 3), padding=((1, 1), (1, 1)), name="output_conv_0")(r1)
        x = resize_bilinear(x, (2 * x.shape[1], 2 * x.shape[2]), align_corners=True, form=self.ops.resize)
        x = conv(self.num_relative_features, (3, 3), padding=((1, 1), (1, 1)), name="output_conv_2")(x)
        out_conv = nn.relu(x)
        rel = nn.relu(PointwiseConv(1, dtype=self.dtype, param_dtype=self.param_dtype,
                                    name="output_conv_4")(out_conv))[..., 0]
        return {"l4_rn": rn[3], "r4": r4, "r3": r3, "r2": r2, "r1": r1, "out_conv": out_conv,
                "rel_depth": rel}


# Resampling of the four stages: H/16 tokens -> H/4, H/8, H/16, H/32 maps.
RESAMPLE = ("up4", "up2", "none", "down2")
