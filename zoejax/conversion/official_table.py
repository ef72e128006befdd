"""The tables for the official release layouts: ZoeDepth ``ZoeD_M12_{N,K,NK}.pt`` (``model`` dict) and the MiDaS
v3.1 relative-depth checkpoints ``dpt_beit_{large,base}_384.pt`` and ``dpt_swin*.pt`` (a bare state dict of the
MiDaS model). The encoder's (and its reassemble's) entries come from the backbone family's weight tables
(``beit_table.py``, ``swin_table.py``, through ``backbone_weights.py``); the decoder and heads are here.

Key sets follow the released files (``tests/fixtures/official_checkpoint_keys.json``): the MiDaS model
lives under ``core.core.`` in ZoeDepth files and at the top level in MiDaS files; ZoeDepth's metric head is
at the top level. A MiDaS table has no metric-head entries: the head is initialised fresh.
"""

from __future__ import annotations

import numpy as np

from zoejax.conversion.backbone_weights import weights_of
from zoejax.conversion.da1_metric_table import core_entries
from zoejax.conversion.table import Table
from zoejax.conversion.transforms import IDENTITY, LINEAR
from zoejax.models.config import ZoeDepthConfig


def official_table(config: ZoeDepthConfig) -> Table:
    """Table for an official ZoeDepth checkpoint's ``model`` state dict (N, K or NK per ``config``), on the MiDaS
    core or, for Depth Anything V1 metric, the Depth Anything core (``da1_metric_table``)."""
    t = Table()
    if config.core == "depth_anything":
        core_entries(t, config)
    else:
        _midas(t, config, prefix="core.core.")
    if config.is_multi_head:
        _routed_head(t, config)
    else:
        _single_head(t, config)
    return t


def midas_table(config: ZoeDepthConfig) -> Table:
    """Table for a MiDaS v3.1 DPT_BEiT / DPT_Swin(V2) checkpoint: encoder and decoder only (no ``core.core.``
    prefix)."""
    if config.core != "midas":
        raise ValueError("a MiDaS v3.1 checkpoint holds a MiDaS core; this model has the Depth Anything core "
                         "(initialise it from a Depth Anything V1 .pth instead)")
    t = Table()
    _midas(t, config, prefix="")
    return t


def _midas(t: Table, config: ZoeDepthConfig, prefix: str) -> None:
    weights_of(config).official_entries(t, config, prefix)
    _scratch(t, prefix)


def _scratch(t: Table, prefix: str) -> None:
    scratch = f"{prefix}scratch"
    for k in range(1, 5):
        t.conv(f"core/scratch/layer{k}_rn", f"{scratch}.layer{k}_rn", bias=False)
        for u in ((2,) if k == 4 else (1, 2)):
            for c in (1, 2):
                t.conv(f"core/scratch/refinenet{k}/resConfUnit{u}/conv{c}",
                       f"{scratch}.refinenet{k}.resConfUnit{u}.conv{c}")
        t.conv(f"core/scratch/refinenet{k}/out_conv", f"{scratch}.refinenet{k}.out_conv")
    t.unused_residual_unit(f"{scratch}.refinenet4.resConfUnit1", ("conv1", "conv2"))
    for i in (0, 2, 4):
        t.conv(f"core/scratch/output_conv_{i}", f"{scratch}.output_conv.{i}")


def _mlp2(t: Table, flax: str, torch: str) -> None:
    t.conv(f"{flax}/_net_0", f"{torch}._net.0")
    t.conv(f"{flax}/_net_2", f"{torch}._net.2")


def _clb(t: Table, flax: str, torch: str, n_bins: int) -> None:
    t.conv(f"{flax}/mlp_0", f"{torch}.mlp.0")
    t.conv(f"{flax}/mlp_2", f"{torch}.mlp.2")
    t.buffers[f"{torch}.log_binomial_transform.k_idx"] = np.arange(n_bins, dtype=np.int64).reshape(1, -1, 1, 1)
    t.buffers[f"{torch}.log_binomial_transform.K_minus_1"] = np.full((1, 1, 1, 1), n_bins - 1, np.float32)


def _single_head(t: Table, config: ZoeDepthConfig) -> None:
    m = "metric_head"
    t.conv(f"{m}/conv2", "conv2")
    _mlp2(t, f"{m}/seed_bin_regressor", "seed_bin_regressor")
    _mlp2(t, f"{m}/seed_projector", "seed_projector")
    for i in range(len(config.head.n_attractors)):
        _mlp2(t, f"{m}/projectors_{i}", f"projectors.{i}")
        _mlp2(t, f"{m}/attractors_{i}", f"attractors.{i}")
    _clb(t, f"{m}/conditional_log_binomial", "conditional_log_binomial", config.bins[0].n_bins)


def _routed_head(t: Table, config: ZoeDepthConfig) -> None:
    m = "metric_head"
    t.conv(f"{m}/conv2", "conv2")
    t.conv(f"{m}/patch_transformer/embedding_convPxP", "patch_transformer.embedding_convPxP")
    for i in range(config.router.num_layers):
        f, k = f"{m}/patch_transformer/layers_{i}", f"patch_transformer.transformer_encoder.layers.{i}"
        t.add(f"{f}/self_attn/in_proj/kernel", f"{k}.self_attn.in_proj_weight", LINEAR)
        t.add(f"{f}/self_attn/in_proj/bias", f"{k}.self_attn.in_proj_bias", IDENTITY)
        t.dense(f"{f}/self_attn/out_proj", f"{k}.self_attn.out_proj")
        t.dense(f"{f}/linear1", f"{k}.linear1")
        t.dense(f"{f}/linear2", f"{k}.linear2")
        t.norm(f"{f}/norm1", f"{k}.norm1")
        t.norm(f"{f}/norm2", f"{k}.norm2")
    t.dense(f"{m}/mlp_classifier/linear_0", "mlp_classifier.0")
    t.dense(f"{m}/mlp_classifier/linear_2", "mlp_classifier.2")
    _mlp2(t, f"{m}/seed_projector", "seed_projector")
    for i in range(len(config.head.n_attractors)):
        _mlp2(t, f"{m}/projectors_{i}", f"projectors.{i}")
    for bins in config.bins:
        n = bins.name
        _mlp2(t, f"{m}/seed_bin_regressors_{n}", f"seed_bin_regressors.{n}")
        for i in range(len(config.head.n_attractors)):
            _mlp2(t, f"{m}/attractors_{n}_{i}", f"attractors.{n}.{i}")
        _clb(t, f"{m}/conditional_log_binomial_{n}", f"conditional_log_binomial.{n}", bins.n_bins)
