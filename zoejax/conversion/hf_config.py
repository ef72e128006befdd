"""zoejax model config <-> ``transformers.ZoeDepthConfig`` keyword arguments (no torch import here).

The HF port hard-codes a few widths that the official code also fixes (single head: seed MLP 256 and
projector MLP 128; NK: seed/projector MLP = embedding/2, router width 128, four router layers, 16
attractors per level); a zoejax config that differs cannot be expressed in that format and is rejected.
"""

from __future__ import annotations

from typing import Any

from zoejax.conversion.backbone_weights import weights_of
from zoejax.models.config import ZoeDepthConfig


def hf_config_kwargs(cfg: ZoeDepthConfig) -> dict[str, Any]:
    """Keyword arguments for ``transformers.ZoeDepthConfig`` describing ``cfg`` exactly.

    ``backbone_config`` is a dict of keyword arguments for the transformers config class the backbone family
    names (``hf_backbone_config_class``; for BEiT ``transformers.BeitConfig``, see ``beit_table.py``).
    """
    head = hf_head_kwargs(cfg)  # first: its ValueError says why a head cannot be expressed
    _, backbone = weights_of(cfg).hf_backbone_config(cfg)
    return {"backbone_config": backbone, **head}


def hf_head_kwargs(cfg: ZoeDepthConfig) -> dict[str, Any]:
    """``hf_config_kwargs`` without ``backbone_config``: the decoder's widths and the metric head, which is all
    ``ZoeDepthMetricDepthEstimationHead`` reads, so that a core with no transformers ZoeDepth form (Depth Anything V1
    metric's) can still get transformers' head. ValueError if the head cannot be expressed there."""
    _check_representable(cfg)
    d, h = cfg.decoder, cfg.head
    kwargs: dict[str, Any] = dict(
        neck_hidden_sizes=list(d.reassemble_features), fusion_hidden_size=d.features,
        bottleneck_features=d.features, num_relative_features=d.num_relative_features,
        bin_embedding_dim=h.bin_embedding_dim, num_attractors=list(h.n_attractors),
        attractor_alpha=int(h.attractor_alpha), attractor_gamma=int(h.attractor_gamma), attractor_kind=h.attractor_kind,
        min_temp=h.min_temp, max_temp=h.max_temp, bin_centers_type=h.bin_centers_type,
        bin_configurations=[dict(name=c.name, n_bins=c.n_bins, min_depth=c.min_depth, max_depth=c.max_depth)
                            for c in cfg.bins],
    )
    if cfg.is_multi_head:
        r = cfg.router
        kwargs.update(num_patch_transformer_layers=r.num_layers, patch_transformer_hidden_size=r.hidden_size,
                      patch_transformer_intermediate_size=r.intermediate_size,
                      patch_transformer_num_attention_heads=r.num_heads)
    return kwargs


def hf_backbone_config_class(cfg: ZoeDepthConfig) -> str:
    """Name of the ``transformers`` config class of ``backbone_config`` (e.g. "BeitConfig")."""
    return weights_of(cfg).hf_backbone_config(cfg)[0]


def _check_representable(cfg: ZoeDepthConfig) -> None:
    h = cfg.head
    problems = []
    if h.head_type != "metric_bins":
        problems.append("only the metric-bins head exists in transformers")
    if h.attractor_type != "inv" or h.attractor_alpha != 300.0:
        problems.append("transformers always uses the inverse attractor with alpha 300")
    if cfg.is_multi_head:
        emb = h.bin_embedding_dim
        if (h.seed_mlp_dim, h.projector_mlp_dim, h.clb_bottleneck_factor) != (emb // 2, emb // 2, 4):
            problems.append("NK needs seed/projector MLP = bin_embedding_dim/2 and CLB bottleneck factor 4")
        if h.use_rel_depth or set(h.n_attractors) != {16} or cfg.router.hidden_size != 128 \
                or cfg.router.num_layers != 4:
            problems.append("NK needs 16 attractors per level, no rel-depth channel, a 4-layer 128-wide router")
    else:
        if (h.seed_mlp_dim, h.projector_mlp_dim, h.clb_bottleneck_factor) != (256, 128, 2) \
                or not h.use_rel_depth:
            problems.append("single head needs seed MLP 256, projector MLP 128, CLB factor 2, rel-depth channel")
    if problems:
        raise ValueError("config cannot be expressed as a transformers ZoeDepthConfig: " + "; ".join(problems))
