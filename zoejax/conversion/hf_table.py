"""The table between zoejax params and ``transformers``' ``ZoeDepthForDepthEstimation``.

The backbone and its reassemble stage come from the family's weight tables (``beit_table.py``, through
``backbone_weights.py``), in one of two namings: ``"file"``, the keys stored in Hugging Face ``model.safetensors``
files (transformers 4.x module names), or ``"module"``, the ``state_dict()`` of a transformers 5.x model. The
decoder's fusion stage and the heads, identical in both, are here.
"""

from __future__ import annotations

from zoejax.conversion.backbone_weights import weights_of
from zoejax.conversion.table import Table
from zoejax.conversion.transforms import QKV, QKV_BIAS
from zoejax.models.config import ZoeDepthConfig


def hf_table(config: ZoeDepthConfig, naming: str = "module") -> Table:
    """Table for ``ZoeDepthForDepthEstimation`` state dicts; ``naming`` is "module" (5.x) or "file"."""
    if naming not in ("module", "file"):
        raise ValueError(f"naming must be 'module' or 'file', got {naming!r}")
    t = Table()
    weights_of(config).hf_entries(t, config, naming)
    _hf_dpt(t)
    _hf_heads(t, config)
    return t


def hf_metric_head_table(config: ZoeDepthConfig) -> Table:
    """Table of the metric head alone (Flax ``metric_head/...`` <- ``metric_head.*``), for a model whose core has no
    transformers ZoeDepth form: Depth Anything V1 metric's PyTorch reference is transformers' Depth Anything with
    this head (``benchmarks/depth_anything_torch.py``)."""
    t = Table()
    _hf_heads(t, config)
    return t


def _hf_heads(t: Table, config: ZoeDepthConfig) -> None:
    if config.is_multi_head:
        _hf_routed_head(t, config)
    else:
        _hf_single_head(t, config)


def _hf_dpt(t: Table) -> None:
    for k in range(1, 5):
        t.conv(f"core/scratch/layer{k}_rn", f"neck.convs.{k - 1}", bias=False)
        fusion = f"neck.fusion_stage.layers.{4 - k}"  # HF orders the fusion layers coarse to fine
        units = (2,) if k == 4 else (1, 2)
        for u in units:
            for c in (1, 2):
                t.conv(f"core/scratch/refinenet{k}/resConfUnit{u}/conv{c}",
                       f"{fusion}.residual_layer{u}.convolution{c}")
        t.conv(f"core/scratch/refinenet{k}/out_conv", f"{fusion}.projection")
    t.unused_residual_unit("neck.fusion_stage.layers.0.residual_layer1", ("convolution1", "convolution2"))
    for flax, hf in (("output_conv_0", "conv1"), ("output_conv_2", "conv2"), ("output_conv_4", "conv3")):
        t.conv(f"core/scratch/{flax}", f"relative_head.{hf}")


def _mlp2(t: Table, flax: str, hf: str) -> None:
    t.conv(f"{flax}/_net_0", f"{hf}.conv1")
    t.conv(f"{flax}/_net_2", f"{hf}.conv2")


def _hf_single_head(t: Table, config: ZoeDepthConfig) -> None:
    m = "metric_head"
    t.conv(f"{m}/conv2", f"{m}.conv2")
    _mlp2(t, f"{m}/seed_bin_regressor", f"{m}.seed_bin_regressor")
    _mlp2(t, f"{m}/seed_projector", f"{m}.seed_projector")
    for i in range(len(config.head.n_attractors)):
        _mlp2(t, f"{m}/projectors_{i}", f"{m}.projectors.{i}")
        _mlp2(t, f"{m}/attractors_{i}", f"{m}.attractors.{i}")
    t.conv(f"{m}/conditional_log_binomial/mlp_0", f"{m}.conditional_log_binomial.mlp.0")
    t.conv(f"{m}/conditional_log_binomial/mlp_2", f"{m}.conditional_log_binomial.mlp.2")


def _hf_routed_head(t: Table, config: ZoeDepthConfig) -> None:
    m = "metric_head"
    t.conv(f"{m}/conv2", f"{m}.conv2")
    t.conv(f"{m}/patch_transformer/embedding_convPxP", f"{m}.patch_transformer.embedding_convPxP")
    for i in range(config.router.num_layers):
        f, h = f"{m}/patch_transformer/layers_{i}", f"{m}.patch_transformer.transformer_encoder.{i}"
        t.add(f"{f}/self_attn/in_proj/kernel",
              tuple(f"{h}.self_attn.{p}.weight" for p in ("query", "key", "value")), QKV)
        t.add(f"{f}/self_attn/in_proj/bias",
              tuple(f"{h}.self_attn.{p}.bias" for p in ("query", "key", "value")),
              QKV_BIAS)
        t.dense(f"{f}/self_attn/out_proj", f"{h}.self_attn.out_proj")
        t.dense(f"{f}/linear1", f"{h}.linear1")
        t.dense(f"{f}/linear2", f"{h}.linear2")
        t.norm(f"{f}/norm1", f"{h}.norm1")
        t.norm(f"{f}/norm2", f"{h}.norm2")
    t.dense(f"{m}/mlp_classifier/linear_0", f"{m}.mlp_classifier.linear1")
    t.dense(f"{m}/mlp_classifier/linear_2", f"{m}.mlp_classifier.linear2")
    _mlp2(t, f"{m}/seed_projector", f"{m}.seed_projector")
    for i in range(len(config.head.n_attractors)):
        _mlp2(t, f"{m}/projectors_{i}", f"{m}.projectors.{i}")
    for bins in config.bins:
        n = bins.name
        _mlp2(t, f"{m}/seed_bin_regressors_{n}", f"{m}.seed_bin_regressors.{n}")
        for i in range(len(config.head.n_attractors)):
            _mlp2(t, f"{m}/attractors_{n}_{i}", f"{m}.attractors.{n}.{i}")
        t.conv(f"{m}/conditional_log_binomial_{n}/mlp_0", f"{m}.conditional_log_binomial.{n}.mlp.0")
        t.conv(f"{m}/conditional_log_binomial_{n}/mlp_2", f"{m}.conditional_log_binomial.{n}.mlp.2")
