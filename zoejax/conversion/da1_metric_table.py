"""Depth Anything V1 metric checkpoints (``depth_anything_metric_depth_{indoor,outdoor}.pt``): ZoeDepth on the Depth
Anything core. The file is ZoeDepth's ``{"model": state_dict, ...}`` with the core under ``core.core.``:
``core.core.pretrained.*`` (DINOv2, ``dinov2_table.encoder_official``; its unused ``mask_token`` kept as an extra)
and ``core.core.depth_head.*`` (``depth_anything_head_table``; refinenet4's never-called first residual unit kept as
an extra); the metric head's keys and buffers (``k_idx``, ``K_minus_1``) are ZoeDepth's (``official_table``).

Which model a file holds: the head's kind from the weights (ZoeD_NK's routed heads; normed bins emit two channels per
attractor, softplus bins one); whether a softplus head is the indoor (nyu, 10 m) or the outdoor (kitti, 80 m) one
only from the release file name or the caller's ``variant`` (the weights have the same shapes).
"""

from __future__ import annotations

from collections.abc import Set

from zoejax.conversion.depth_anything_head_table import official_head_entries
from zoejax.conversion.dinov2_table import encoder_official
from zoejax.conversion.table import Table
from zoejax.models import presets
from zoejax.models.config import ZoeDepthConfig
from zoejax.models.depth_anything_core import head_config

PREFIX = "core.core."
_MARKER = f"{PREFIX}depth_head.scratch.layer1_rn.weight"


def holds_da1_metric(keys: Set[str]) -> bool:
    """Whether official ZoeDepth keys have the Depth Anything core (its DPT head under ``core.core.depth_head``;
    a ZoeDepth on DINOv2's MiDaS core has ``core.core.scratch`` instead)."""
    return _MARKER in keys


def core_entries(t: Table, config: ZoeDepthConfig) -> None:
    """The Depth Anything core's entries (Flax ``core/pretrained``, ``core/depth_head``) under ``core.core.``."""
    encoder_official(t, config.backbone, "core/pretrained", f"{PREFIX}pretrained")
    official_head_entries(t, head_config(config), "core/depth_head", f"{PREFIX}depth_head.")


def da1_metric_config(backbone: str, head: str, variant: str | None, source: str,
                      max_depth: float | None) -> tuple[str, ZoeDepthConfig]:
    """(variant, config) of a DA1 metric file whose head the weights show as ``head`` ("n": softplus, "k": normed,
    "nk": routed). ``variant`` (n | k | nk) names a softplus head's domain; by default the file name's ("outdoor":
    k) or indoor. ValueError when ``variant`` contradicts the weights."""
    if variant is not None and variant != head and not (head == "n" and variant == "k"):
        raise ValueError(f"--variant {variant} given, but the Depth Anything V1 metric checkpoint holds a "
                         f"{'normed (outdoor, kitti)' if head == 'k' else 'ZoeD_' + head.upper()} head")
    if head == "nk":
        chosen = "nk"
    elif head == "k":
        chosen = "k"
    else:
        chosen = variant or ("k" if "outdoor" in source.rsplit("/", 1)[-1] else "n")
    if max_depth is not None and chosen != "k":
        raise ValueError("max_depth applies to the outdoor (kitti) Depth Anything V1 metric model only")
    if chosen == "k":
        bins = "normed" if head == "k" else "softplus"
        return chosen, presets.da1_metric_k(backbone, bins, 80.0 if max_depth is None else max_depth)
    return chosen, presets.DA1_METRIC_VARIANTS[f"da1_metric_{chosen}"](backbone)
