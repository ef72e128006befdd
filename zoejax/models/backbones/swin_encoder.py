"""Swin / SwinV2 encoder in the MiDaS v3.1 flavour: the four hooked stage outputs as NHWC maps.

MiDaS (``midas/backbones/swin_common.py``) hooks ``layers[s].blocks[hooks[s]]`` of a timm 0.6.12 model, i.e. a
block output *before* the stage's patch merging (timm 0.6.12 merges at the end of a stage), and its
``act_postprocess{j}`` is only a transpose + unflatten to the (H/4, H/8, H/16, H/32) grids: no readout token, no
projection or resample convs, so the decoder's ``scratch/layer{k}_rn`` convs take the stage widths directly.

Parameter tree (timm 0.6.12 / MiDaS release paths): ``patch_embed/{proj,norm}``,
``layers_{s}/blocks_{j}/...`` and ``layers_{s}/downsample/{reduction,norm}`` for s < 3. The classifier ``head``
and the final ``norm`` are not built (the converter keeps them as extras).
"""

from __future__ import annotations

import functools
from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from zoejax.models.backbones.swin import PatchMerging, SwinBlock
from zoejax.models.config import SwinConfig
from zoejax.models.layers import REMAT_POLICIES, RematPolicy
from zoejax.ops.conv import conv_general_dilated
from zoejax.ops.grad_barrier import gradient_barrier

Dtype = Any


class SwinPatchEmbed(nn.Module):
    """p x p strided conv ``proj`` then LayerNorm ``norm`` (timm's ``patch_norm=True``)."""

    embed_dim: int
    patch_size: int
    layer_norm_eps: float = 1e-5
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, images: jnp.ndarray) -> jnp.ndarray:
        """(B, H, W, 3) -> (B, H/p, W/p, D)."""
        x = nn.Conv(self.embed_dim, (self.patch_size,) * 2, strides=(self.patch_size,) * 2, padding="VALID",
                    dtype=self.dtype, param_dtype=self.param_dtype, name="proj",
                    conv_general_dilated=conv_general_dilated,
                    kernel_init=nn.with_logical_partitioning(nn.initializers.lecun_normal(),
                                                             (None, None, None, "embed")))(images.astype(self.dtype))
        return nn.LayerNorm(epsilon=self.layer_norm_eps, use_fast_variance=False, dtype=self.dtype,
                            param_dtype=self.param_dtype, name="norm")(x)


class SwinStage(nn.Module):
    """One stage (timm 0.6.12 ``BasicLayer``): ``blocks_{j}`` with shifts on odd blocks, then ``downsample``."""

    config: SwinConfig
    stage: int
    remat: RematPolicy = RematPolicy.NONE
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
        """(B, h, w, C_s) -> (hooked block's output (B, h, w, C_s), stage output (B, h/2, w/2, 2C_s) or the last
        block's output for the last stage)."""
        c, s = self.config, self.stage
        window, shift = c.stage_windows()[s]
        pretrained = c.pretrained_window_sizes[s] if c.version == 2 else 0
        block_cls = SwinBlock
        if self.remat is not RematPolicy.NONE:
            block_cls = nn.remat(SwinBlock, policy=REMAT_POLICIES[self.remat])
        block = functools.partial(block_cls, c.stage_dims[s], c.num_heads[s], window, version=c.version,
                                  mlp_ratio=c.mlp_ratio, pretrained_window=(pretrained, pretrained),
                                  cpb_hidden=c.cpb_hidden, layer_norm_eps=c.layer_norm_eps, dtype=self.dtype,
                                  param_dtype=self.param_dtype)
        tap = None
        for j in range(c.depths[s]):
            x = gradient_barrier(x)  # as in BEiT: no fusion of the residual gradient across blocks
            x = block(shift=shift if j % 2 else (0, 0), name=f"blocks_{j}")(x)
            if j == c.hooks[s]:
                tap = x
        if s < len(c.depths) - 1:
            x = PatchMerging(c.stage_dims[s], c.version, c.layer_norm_eps, self.dtype, self.param_dtype,
                             name="downsample")(x)
        return tap, x


class SwinEncoder(nn.Module):
    """Patch embedding and four stages of (shifted-)window blocks with patch merging between them.

    Attributes:
      config: the backbone's ``SwinConfig`` (a frozen dataclass of plain fields).
      remat: per-block rematerialisation policy.
    """

    config: SwinConfig
    remat: RematPolicy = RematPolicy.NONE
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, images: jnp.ndarray) -> list[jnp.ndarray]:
        """images: (B, H, W, 3) normalised to [-1, 1], H and W multiples of 32 (8 * patch size).

        Returns:
          four maps (B, H/4 / 2**s, W/4 / 2**s, embed_dim * 2**s), s = 0..3: the output of block ``hooks[s]``
          of stage s, before that stage's patch merging.
        """
        c = self.config
        x = SwinPatchEmbed(c.embed_dim, c.patch_size, c.layer_norm_eps, self.dtype, self.param_dtype,
                           name="patch_embed")(images)
        taps = []
        for s in range(len(c.depths)):
            tap, x = SwinStage(c, s, self.remat, self.dtype, self.param_dtype, name=f"layers_{s}")(x)
            taps.append(tap)
        return taps
