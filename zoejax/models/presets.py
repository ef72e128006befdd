"""The model presets: backbones and the three released ZoeDepth variants with their effective settings.

Config files (``configs/*.py``) start from these; tests and the converter use them directly.
Values follow the architecture spec section 7.2 (what the official code actually runs with).
"""

from __future__ import annotations

import dataclasses

from zoejax.models.config import (
    BeitConfig,
    BinConfig,
    DPTConfig,
    MetricHeadConfig,
    RouterConfig,
    SwinConfig,
    ZoeDepthConfig,
)


def _swin(version: int, embed_dim: int, depths, num_heads, window: int, img: int, pretrained=(0, 0, 0, 0),
          hooks=None, features: int = 256, out: int = 32) -> tuple[SwinConfig, DPTConfig]:
    """A Swin backbone and its DPT decoder: identity reassemble, so the decoder's input widths are the stage widths."""
    enc = SwinConfig(version=version, embed_dim=embed_dim, depths=tuple(depths), num_heads=tuple(num_heads),
                     window_size=window, pretrained_window_sizes=tuple(pretrained), img_size=(img, img),
                     hooks=tuple(hooks or (d - 1 for d in depths)))
    return enc, DPTConfig(reassemble_features=enc.stage_dims, features=features, num_relative_features=out)


BACKBONES: dict[str, tuple[BeitConfig | SwinConfig, DPTConfig]] = {
    # timm beit_large_patch16_384 as MiDaS DPT_BEiT_L_384 uses it.
    "beit_l384": (BeitConfig(embed_dim=1024, depth=24, num_heads=16, init_values=1e-5, hooks=(5, 11, 17, 23)),
                  DPTConfig(reassemble_features=(256, 512, 1024, 1024))),
    # timm beit_base_patch16_384 (MiDaS DPT_BEiT_B_384).
    "beit_b384": (BeitConfig(embed_dim=768, depth=12, num_heads=12, init_values=0.1, hooks=(2, 5, 8, 11)),
                  DPTConfig(reassemble_features=(96, 192, 384, 768))),
    # A small BEiT (ViT-S width) that trains in minutes on a CPU: the demo's model.
    "small": (BeitConfig(embed_dim=192, depth=6, num_heads=3, pretrain_window=(8, 8), init_values=0.1,
                         hooks=(1, 2, 4, 5)),
              DPTConfig(reassemble_features=(48, 96, 192, 192), features=64, num_relative_features=32)),
    # MiDaS v3.1 Swin family (timm 0.6.12 models; MiDaS hooks the last block of every stage).
    # swinv2_large_window12to24_192to384 (DPT_SwinV2_L_384).
    "swin2_l384": _swin(2, 192, (2, 2, 18, 2), (6, 12, 24, 48), 24, 384, (12, 12, 12, 6)),
    # swinv2_base_window12to24_192to384 (DPT_SwinV2_B_384).
    "swin2_b384": _swin(2, 128, (2, 2, 18, 2), (4, 8, 16, 32), 24, 384, (12, 12, 12, 6)),
    # swinv2_tiny_window16_256 (DPT_SwinV2_T_256).
    "swin2_t256": _swin(2, 96, (2, 2, 6, 2), (3, 6, 12, 24), 16, 256),
    # swin_large_patch4_window12_384 (DPT_Swin_L_384).
    "swin_l384": _swin(1, 192, (2, 2, 18, 2), (6, 12, 24, 48), 12, 384),
    # Test fixtures only: a SwinV2 and a Swin of width 16 built for 64 px (stage grids 16, 8, 4, 2; window 4 with
    # shifts in stages 1-2, the grid as window in stages 3-4), with the small decoder of "tiny".
    "swin2_tiny": _swin(2, 16, (2, 2, 2, 2), (2, 2, 4, 4), 4, 64, (3, 3, 2, 2), features=16, out=8),
    "swin_tiny": _swin(1, 16, (2, 2, 2, 2), (2, 2, 4, 4), 4, 64, features=16, out=8),
    # Test fixture only: 4 blocks of width 32 on a 4x4 pretraining grid (64 px).
    "tiny": (BeitConfig(embed_dim=32, depth=4, num_heads=2, pretrain_window=(4, 4), init_values=0.1,
                        hooks=(0, 1, 2, 3)),
             DPTConfig(reassemble_features=(8, 16, 32, 32), features=16, num_relative_features=8)),
}

# The tiny fixture shrinks the head too, keeping the widths the transformers reference hard-codes
# (single head: seed MLP 256, projector MLP 128; NK: router width 128).
_TINY_HEAD = dict(bin_embedding_dim=16, n_attractors=(4, 2, 2, 1))
_TINY_BINS = 16
TINY_FIXTURES = ("tiny", "swin2_tiny", "swin_tiny")


def _backbone(name: str) -> tuple[BeitConfig, DPTConfig]:
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; available: {sorted(BACKBONES)}")
    return BACKBONES[name]


def zoed_n(backbone: str = "beit_l384") -> ZoeDepthConfig:
    """ZoeD_N: softplus bins, attractors 16/8/4/1, bins on [1e-3, 10] m (unused by softplus)."""
    enc, dec = _backbone(backbone)
    head = MetricHeadConfig(bin_centers_type="softplus")
    n_bins = 64
    if backbone in TINY_FIXTURES:
        head, n_bins = dataclasses.replace(head, **_TINY_HEAD), _TINY_BINS
    return ZoeDepthConfig(backbone=enc, decoder=dec, head=head,
                          bins=(BinConfig("nyu", n_bins, 1e-3, 10.0),))


def zoed_k(backbone: str = "beit_l384", max_depth: float = 10.0) -> ZoeDepthConfig:
    """ZoeD_K: normed bins on [1e-3, max_depth] m.

    ``max_depth`` = 10 reproduces the released hub/HF model (its outputs are clipped at 10 m); 80 is the
    paper's KITTI protocol (``evaluate.py -d kitti``). See architecture spec 7.3.
    """
    cfg = zoed_n(backbone)
    head = dataclasses.replace(cfg.head, bin_centers_type="normed")
    return dataclasses.replace(cfg, head=head,
                               bins=(BinConfig("kitti", cfg.bins[0].n_bins, 1e-3, float(max_depth)),))


def zoed_nk(backbone: str = "beit_l384") -> ZoeDepthConfig:
    """ZoeD_NK: two softplus heads (nyu <= 10 m, kitti <= 80 m) with 16 attractors at every level, a router,
    narrower seed/projector MLPs (64), no relative-depth channel in the log-binomial (bottleneck 4)."""
    cfg = zoed_n(backbone)
    emb = cfg.head.bin_embedding_dim
    head = dataclasses.replace(cfg.head, n_attractors=(16, 16, 16, 16), seed_mlp_dim=emb // 2,
                               projector_mlp_dim=emb // 2, clb_bottleneck_factor=4, use_rel_depth=False)
    n_bins = cfg.bins[0].n_bins
    return dataclasses.replace(cfg, head=head, router=RouterConfig(),
                               bins=(BinConfig("nyu", n_bins, 1e-3, 10.0), BinConfig("kitti", n_bins, 1e-3, 80.0)))


VARIANTS = {"zoed_n": zoed_n, "zoed_k": zoed_k, "zoed_nk": zoed_nk}
