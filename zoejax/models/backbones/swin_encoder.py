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

import dataclasses
import functools
import math
from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from zoejax.models.backbones.swin import PatchMerging, SwinBlock
from zoejax.models.dpt import DPTConfig
from zoejax.models.layers import REMAT_POLICIES, RematPolicy
from zoejax.ops.conv import conv_for
from zoejax.ops.grad_barrier import gradient_barrier
from zoejax.ops.platform import GENERIC, OpForms

Dtype = Any


@dataclasses.dataclass(frozen=True)
class SwinConfig:
    """Swin (v1) / SwinV2 encoder as MiDaS v3.1 uses it (timm 0.6.12 ``swin_large_patch4_window12_384``,
    ``swinv2_{tiny_window16_256, base_window12to24_192to384, large_window12to24_192to384}``).

    Attributes:
      kind: "swin", its key in the backbone registry (``zoejax/models/backbones/registry.py``).
      version: 1 (Swin: dot-product attention, learned bias table, pre-norm) or 2 (SwinV2: scaled cosine
        attention, log-spaced continuous position bias MLP, post-norm residuals).
      embed_dim: width of stage 1; stage i has ``embed_dim * 2**i`` channels.
      depths: blocks per stage (4 stages).
      num_heads: attention heads per stage.
      window_size: target window side in patches (timm ``window_size``).
      pretrained_window_sizes: SwinV2 per-stage window the position MLP was trained for (0: the stage's window);
        ignored for version 1.
      img_size: the (H, W) timm builds the model for. It fixes each stage's window and shift the way timm does:
        a stage whose grid is no larger than the window uses the grid as window and no shift. Other inputs
        keep these windows and pad each stage's grid at the bottom/right to window multiples (timm >= 0.9).
      patch_size: patch embedding stride in pixels.
      mlp_ratio: MLP hidden width / stage width.
      hooks: per stage, the 0-based block whose output the DPT decoder reads (MiDaS: the last block).
      layer_norm_eps: 1e-5 (torch ``nn.LayerNorm`` default, as timm's Swin uses).
      cpb_hidden: SwinV2 position-bias MLP hidden width.
    """

    kind: str = "swin"
    version: int = 2
    embed_dim: int = 192
    depths: tuple[int, ...] = (2, 2, 18, 2)
    num_heads: tuple[int, ...] = (6, 12, 24, 48)
    window_size: int = 24
    pretrained_window_sizes: tuple[int, ...] = (12, 12, 12, 6)
    img_size: tuple[int, int] = (384, 384)
    patch_size: int = 4
    mlp_ratio: float = 4.0
    hooks: tuple[int, ...] = (1, 1, 17, 1)
    layer_norm_eps: float = 1e-5
    cpb_hidden: int = 512

    @property
    def stage_dims(self) -> tuple[int, ...]:
        return tuple(self.embed_dim * 2**i for i in range(len(self.depths)))

    @property
    def num_features(self) -> int:
        return self.stage_dims[-1]

    def stage_windows(self) -> tuple[tuple[tuple[int, int], tuple[int, int]], ...]:
        """Per stage ((window_h, window_w), (shift_h, shift_w)), as timm derives them from ``img_size``."""
        out = []
        for i in range(len(self.depths)):
            grid = (self.img_size[0] // self.patch_size // 2**i, self.img_size[1] // self.patch_size // 2**i)
            window = tuple(r if r <= self.window_size else self.window_size for r in grid)
            shift = tuple(0 if r <= w else w // 2 for r, w in zip(grid, window, strict=True))
            out.append((window, shift))
        return tuple(out)

    def validate(self, reassemble_features: tuple[int, ...]) -> None:
        """ValueError naming the field when the stages cannot be built or hooked, or when the decoder's input
        widths are not the stage widths (Swin has no reassemble convs)."""
        n = len(self.depths)
        if n != 4 or len(self.num_heads) != n or len(self.hooks) != n:
            raise ValueError("a Swin backbone needs 4 stages: depths, num_heads and hooks of length 4")
        if self.version not in (1, 2):
            raise ValueError(f"backbone.version must be 1 or 2, got {self.version}")
        if self.version == 2 and len(self.pretrained_window_sizes) != n:
            raise ValueError("backbone.pretrained_window_sizes needs one entry per stage")
        for i, (hook, depth) in enumerate(zip(self.hooks, self.depths, strict=True)):
            if not 0 <= hook < depth:
                raise ValueError(f"backbone.hooks[{i}]={hook} out of range for a stage of {depth} blocks")
        for dim, heads in zip(self.stage_dims, self.num_heads, strict=True):
            if dim % heads:
                raise ValueError(f"Swin stage width {dim} is not divisible by {heads} heads")
        if tuple(reassemble_features) != self.stage_dims:
            raise ValueError(f"a Swin backbone has no reassemble convs: decoder.reassemble_features must be its "
                             f"stage widths {self.stage_dims}, got {tuple(reassemble_features)}")

    def describe(self) -> str:
        """One phrase, e.g. 'SwinV2 192x(2, 2, 18, 2) ((6, 12, 24, 48) heads, window 24, built for 384x384)'."""
        name = "SwinV2" if self.version == 2 else "Swin"
        return (f"{name} {self.embed_dim}x{tuple(self.depths)} ({tuple(self.num_heads)} heads, window "
                f"{self.window_size}, built for {self.img_size[0]}x{self.img_size[1]})")


class SwinPatchEmbed(nn.Module):
    """p x p strided conv ``proj`` then LayerNorm ``norm`` (timm's ``patch_norm=True``)."""

    embed_dim: int
    patch_size: int
    layer_norm_eps: float = 1e-5
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32
    ops: OpForms = GENERIC  # platform-dependent op forms (zoejax.ops.platform)

    @nn.compact
    def __call__(self, images: jnp.ndarray) -> jnp.ndarray:
        """(B, H, W, 3) -> (B, H/p, W/p, D)."""
        x = nn.Conv(self.embed_dim, (self.patch_size,) * 2, strides=(self.patch_size,) * 2, padding="VALID",
                    dtype=self.dtype, param_dtype=self.param_dtype, name="proj",
                    conv_general_dilated=conv_for(self.ops),
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
    ops: OpForms = GENERIC  # platform-dependent op forms (zoejax.ops.platform)

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
                                  param_dtype=self.param_dtype, ops=self.ops)
        tap = None
        for j in range(c.depths[s]):
            x = gradient_barrier(x, self.ops.barrier)  # as in BEiT: no fusion of the residual gradient across blocks
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
      ops: the platform-dependent op forms (``zoejax.ops.platform``), passed to every block.
    """

    config: SwinConfig
    remat: RematPolicy = RematPolicy.NONE
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32
    ops: OpForms = GENERIC

    @nn.compact
    def __call__(self, images: jnp.ndarray) -> list[jnp.ndarray]:
        """images: (B, H, W, 3) normalised to [-1, 1], H and W multiples of 32 (8 * patch size).

        Returns:
          four maps (B, H/4 / 2**s, W/4 / 2**s, embed_dim * 2**s), s = 0..3: the output of block ``hooks[s]``
          of stage s, before that stage's patch merging.
        """
        c = self.config
        x = SwinPatchEmbed(c.embed_dim, c.patch_size, c.layer_norm_eps, self.dtype, self.param_dtype, self.ops,
                           name="patch_embed")(images)
        taps = []
        for s in range(len(c.depths)):
            tap, x = SwinStage(c, s, self.remat, self.dtype, self.param_dtype, self.ops, name=f"layers_{s}")(x)
            taps.append(tap)
        return taps


def reassemble(config: SwinConfig, reassemble_features: tuple[int, ...], taps: list[jnp.ndarray],
               image_hw: tuple[int, int], dtype: Dtype, param_dtype: Dtype,
               ops: OpForms = GENERIC) -> list[jnp.ndarray]:
    """The features Swin hands the decoder: the four stage maps themselves (MiDaS' ``act_postprocess`` only
    transposes and unflattens them), so there are no ``act_postprocess`` parameters."""
    return list(taps)


def encoder_flops(config: SwinConfig, reassemble_features: tuple[int, ...], batch: int, height: int,
                  width: int) -> dict[str, int]:
    """Matmul/conv FLOPs (2 per multiply-add) of the encoder for one forward; the reassemble has none.

    Keys: patch_embed; attention (qkv, q k^T and weights x v per window, output projection, all on the grid padded
    to window multiples; SwinV2's position-bias MLP, computed once per block whatever the batch); mlp (on the
    unpadded grid); patch_merging (the ``reduction`` of stages 1-3).
    """
    b, p = batch, config.patch_size

    def mm(rows: int, k: int, cols: int) -> int:  # (rows x k) @ (k x cols)
        return 2 * rows * k * cols

    h, w = height // p, width // p
    out = {"patch_embed": b * mm(h * w, p * p * 3, config.embed_dim), "attention": 0, "mlp": 0, "patch_merging": 0}
    for s, ((window, _), dim) in enumerate(zip(config.stage_windows(), config.stage_dims, strict=True)):
        tokens = math.ceil(h / window[0]) * window[0] * math.ceil(w / window[1]) * window[1]  # padded grid
        per_window = window[0] * window[1]
        attention = b * (mm(tokens, dim, 3 * dim) + 2 * mm(tokens, dim, per_window) + mm(tokens, dim, dim))
        if config.version == 2:
            rows = (2 * window[0] - 1) * (2 * window[1] - 1)
            attention += mm(rows, 2, config.cpb_hidden) + mm(rows, config.cpb_hidden, config.num_heads[s])
        out["attention"] += config.depths[s] * attention
        out["mlp"] += config.depths[s] * b * 2 * mm(h * w, dim, int(dim * config.mlp_ratio))
        if s < len(config.depths) - 1:
            h, w = math.ceil(h / 2), math.ceil(w / 2)
            out["patch_merging"] += b * mm(h * w, 4 * dim, 2 * dim)
    return out


def _preset(version: int, embed_dim: int, depths, num_heads, window: int, img: int, pretrained=(0, 0, 0, 0),
            hooks=None, features: int = 256, out: int = 32) -> tuple[SwinConfig, DPTConfig]:
    """A Swin backbone and its DPT decoder: identity reassemble, so the decoder's input widths are the stage widths."""
    enc = SwinConfig(version=version, embed_dim=embed_dim, depths=tuple(depths), num_heads=tuple(num_heads),
                     window_size=window, pretrained_window_sizes=tuple(pretrained), img_size=(img, img),
                     hooks=tuple(hooks or (d - 1 for d in depths)))
    return enc, DPTConfig(reassemble_features=enc.stage_dims, features=features, num_relative_features=out)


# MiDaS v3.1 Swin family (timm 0.6.12 models; MiDaS hooks the last block of every stage).
PRESETS: dict[str, tuple[SwinConfig, DPTConfig]] = {
    # swinv2_large_window12to24_192to384 (DPT_SwinV2_L_384).
    "swin2_l384": _preset(2, 192, (2, 2, 18, 2), (6, 12, 24, 48), 24, 384, (12, 12, 12, 6)),
    # swinv2_base_window12to24_192to384 (DPT_SwinV2_B_384).
    "swin2_b384": _preset(2, 128, (2, 2, 18, 2), (4, 8, 16, 32), 24, 384, (12, 12, 12, 6)),
    # swinv2_tiny_window16_256 (DPT_SwinV2_T_256).
    "swin2_t256": _preset(2, 96, (2, 2, 6, 2), (3, 6, 12, 24), 16, 256),
    # swin_large_patch4_window12_384 (DPT_Swin_L_384).
    "swin_l384": _preset(1, 192, (2, 2, 18, 2), (6, 12, 24, 48), 12, 384),
    # Test fixtures only: a SwinV2 and a Swin of width 16 built for 64 px (stage grids 16, 8, 4, 2; window 4 with
    # shifts in stages 1-2, the grid as window in stages 3-4), with the small decoder of "tiny".
    "swin2_tiny": _preset(2, 16, (2, 2, 2, 2), (2, 2, 4, 4), 4, 64, (3, 3, 2, 2), features=16, out=8),
    "swin_tiny": _preset(1, 16, (2, 2, 2, 2), (2, 2, 4, 4), 4, 64, features=16, out=8),
}
FIXTURES = ("swin2_tiny", "swin_tiny")
