"""The model presets: backbones (each family's, from the registry) and the three released ZoeDepth variants with
their effective settings.

Config files (``configs/*.py``) start from these; tests and the converter use them directly.
Values follow the architecture spec section 7.2 (what the official code actually runs with).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from zoejax.models.backbones.dinov2 import last_four
from zoejax.models.backbones.registry import all_fixtures, all_presets
from zoejax.models.config import BinConfig, DPTConfig, MetricHeadConfig, RouterConfig, ZoeDepthConfig

# Every registered family's presets (``zoejax/models/backbones/registry.py``): name -> (backbone config, decoder).
BACKBONES: dict[str, tuple[Any, DPTConfig]] = all_presets()

# The tiny fixture shrinks the head too, keeping the widths the transformers reference hard-codes
# (single head: seed MLP 256, projector MLP 128; NK: router width 128).
_TINY_HEAD = dict(bin_embedding_dim=16, n_attractors=(4, 2, 2, 1))
_TINY_BINS = 16
TINY_FIXTURES = all_fixtures()


def _backbone(name: str) -> tuple[Any, DPTConfig]:
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


def _depth_anything_core(cfg: ZoeDepthConfig) -> ZoeDepthConfig:
    """``cfg`` on the Depth Anything core with V1's taps (the last four blocks). The head keeps ZoeDepth's effective
    settings: Depth Anything's metric code stores ``attractor_alpha: 1000`` in its config and passes it to the
    attractor layers, but, as in ZoeDepth's release, their forward calls ``inv_attractor`` without it, so the
    default 300 applies (LiheYoung/Depth-Anything@1d03336 metric_depth/zoedepth/models/layers/attractor.py:45, 194)."""
    return dataclasses.replace(cfg, backbone=last_four(cfg.backbone), core="depth_anything")


def da1_metric_n(backbone: str = "dinov2_vitl14") -> ZoeDepthConfig:
    """Depth Anything V1 metric, indoor (``depth_anything_metric_depth_indoor.pt``): ZoeD_N's head (softplus bins,
    attractors 16/8/4/1, nyu [1e-3, 10] m) on DINOv2-L/14 + the Depth Anything DPT head."""
    return _depth_anything_core(zoed_n(backbone))


def da1_metric_k(backbone: str = "dinov2_vitl14", bin_centers_type: str = "softplus",
                 max_depth: float = 80.0) -> ZoeDepthConfig:
    """Depth Anything V1 metric, outdoor (``depth_anything_metric_depth_outdoor.pt``), kitti bins on [1e-3, 80] m.

    Which head trained the released file is not written down, so the choice is explicit: by default the one the
    official README's commands build (``train_mono.py -m zoedepth -d kitti`` and ``evaluate.py ... -d kitti`` pass
    no ``config_version``, so ``config_zoedepth.json``'s softplus bins apply, with kitti's depth range);
    ``bin_centers_type="normed"`` is ``config_version=kitti`` (``config_zoedepth_kitti.json``: normed bins, as
    ZoeD_K). The two differ in the attractors' output width, so conversion reads the choice off the weights."""
    cfg = zoed_n(backbone) if bin_centers_type == "softplus" else zoed_k(backbone, max_depth)
    head = dataclasses.replace(cfg.head, bin_centers_type=bin_centers_type)
    bins = (BinConfig("kitti", cfg.bins[0].n_bins, 1e-3, float(max_depth)),)
    return _depth_anything_core(dataclasses.replace(cfg, head=head, bins=bins))


def da1_metric_nk(backbone: str = "dinov2_vitl14") -> ZoeDepthConfig:
    """ZoeD_NK's routed heads (nyu <= 10 m, kitti <= 80 m) on the Depth Anything core: the model of the NK fine-tune
    recipe (``config_zoedepth_nk.json``; no released checkpoint)."""
    return _depth_anything_core(zoed_nk(backbone))


DA1_METRIC_VARIANTS = {"da1_metric_n": da1_metric_n, "da1_metric_k": da1_metric_k, "da1_metric_nk": da1_metric_nk}
# The test fixture's backbone: the registry's tiny DINOv2 (real patch size 14); its ZoeDepth head is shrunk too.
DA1_METRIC_TINY = "dinov2_tiny"
