"""Metric heads on top of the MiDaS decoder features: ZoeD_N/K's single head, ZoeD_NK's routed heads, and the
naive head of the paper's Table 5. All run in float32 (spec sections 5 and 6).

Inputs are the decoder taps of ``MidasCore`` (NHWC): ``out_conv`` (B,H,W,32), ``rel_depth`` (B,H,W),
``l4_rn`` (H/32), ``r4`` (H/16), ``r3`` (H/8), ``r2`` (H/4), ``r1`` (H/2), all with F=256 channels.
"""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from zoejax.models.config import BinConfig, MetricHeadConfig, RouterConfig
from zoejax.models.metric_bins import (
    AttractorLayer,
    ConditionalLogBinomial,
    Projector,
    SeedBinRegressor,
    conv1x1,
)
from zoejax.models.router import MLPClassifier, PatchTransformerEncoder, batch_vote
from zoejax.ops.platform import GENERIC, OpForms
from zoejax.ops.resize import resize_bilinear

F32 = jnp.float32
LEVELS = ("r4", "r3", "r2", "r1")


def _f32(features: dict[str, jnp.ndarray]) -> dict[str, jnp.ndarray]:
    return {k: v.astype(F32) for k, v in features.items() if not isinstance(v, list)}


def _attractor_cascade(seed_regressor, seed_projector, projectors, attractors, x0, features, bins: BinConfig,
                       normed: bool) -> dict[str, jnp.ndarray]:
    """Seed bins at H/32, refined by one attractor layer per decoder level up to H/2."""
    seed = seed_regressor(x0)  # metric centres (B, h32, w32, n_bins)
    prev_bins = (seed - bins.min_depth) / (bins.max_depth - bins.min_depth) if normed else seed
    prev_embedding = seed_projector(x0)
    out = {"seed_bin_centers": seed}
    for i, (projector, attractor) in enumerate(zip(projectors, attractors, strict=True)):
        embedding = projector(features[LEVELS[i]])
        prev_bins, centres = attractor(embedding, prev_bins, prev_embedding)
        prev_embedding = embedding  # the projector output, without the added previous embedding
        out[f"bin_centers_{i}"] = centres
    out["bin_centers"] = centres  # (B, H/2, W/2, n_bins) metres
    out["bin_embedding"] = embedding  # (B, H/2, W/2, E)
    return out


def _depth_from_bins(clb, last, cascade, size, uncertainty: bool = False, resize_form: str = "gather"
                     ) -> dict[str, jnp.ndarray]:
    """{"metric_depth", "probs"} and, with ``uncertainty``, "metric_depth_std": the standard deviation (B, H, W)
    in metres of the bin distribution around the predicted depth, sqrt(sum_k p_k (c_k - depth)^2)."""
    probs = clb(last, cascade["bin_embedding"])  # (B, H, W, n_bins); the embedding is resized to ``size`` there
    centres = resize_bilinear(cascade["bin_centers"], size, align_corners=True, form=resize_form)
    # As an einsum: XLA:CPU's fused multiply-reduce over the last axis was 50x slower at 384x512x64.
    depth = jnp.einsum("...k,...k->...", probs, centres)
    out = {"metric_depth": depth, "probs": probs}
    if uncertainty:  # only when asked: the training and TPU programs never build it
        variance = jnp.einsum("...k,...k->...", probs, jnp.square(centres - depth[..., None]))
        out["metric_depth_std"] = jnp.sqrt(jnp.maximum(variance, 0.0))
    return out


class MetricBinsHead(nn.Module):
    """ZoeD_N (softplus bins) / ZoeD_K (normed bins): one set of bins, attractors and log-binomial.

    Parameter names follow the official module: ``conv2``, ``seed_bin_regressor``, ``seed_projector``,
    ``projectors_{i}``, ``attractors_{i}``, ``conditional_log_binomial``.
    """

    head: MetricHeadConfig
    bins: BinConfig
    bottleneck_features: int = 256
    ops: OpForms = GENERIC  # platform-dependent op forms (zoejax.ops.platform): the head's resizes

    @nn.compact
    def __call__(self, features: dict[str, jnp.ndarray], uncertainty: bool = False) -> dict[str, jnp.ndarray]:
        """``uncertainty``: also return "metric_depth_std" (B, H, W) metres (see ``_depth_from_bins``)."""
        f = _f32(features)
        cfg, bins = self.head, self.bins
        normed = cfg.bin_centers_type == "normed"
        x0 = conv1x1(self.bottleneck_features, name="conv2")(f["l4_rn"])
        cascade = _attractor_cascade(
            SeedBinRegressor(bins.n_bins, cfg.seed_mlp_dim, cfg.bin_centers_type, bins.min_depth,
                             bins.max_depth, name="seed_bin_regressor"),
            Projector(cfg.bin_embedding_dim, cfg.projector_mlp_dim, name="seed_projector"),
            [Projector(cfg.bin_embedding_dim, cfg.projector_mlp_dim, name=f"projectors_{i}")
             for i in range(4)],
            [AttractorLayer(n, cfg.bin_embedding_dim, cfg.bin_centers_type, cfg.attractor_alpha,
                            cfg.attractor_gamma, cfg.attractor_kind, cfg.attractor_type, bins.min_depth,
                            bins.max_depth, self.ops, name=f"attractors_{i}") for i, n in enumerate(cfg.n_attractors)],
            x0, f, bins, normed)
        last = f["out_conv"]
        if cfg.use_rel_depth:
            last = jnp.concatenate([last, f["rel_depth"][..., None]], axis=-1)
        clb = ConditionalLogBinomial(bins.n_bins, cfg.clb_bottleneck_factor, cfg.min_temp, cfg.max_temp,
                                     self.ops, name="conditional_log_binomial")
        return {**_depth_from_bins(clb, last, cascade, last.shape[1:3], uncertainty, self.ops.resize), **cascade}


class RoutedMetricBinsHead(nn.Module):
    """ZoeD_NK: shared projectors, per-domain seed regressor / attractors / log-binomial, and a router.

    Routing: with ``domain`` (B,) int labels each example uses its labelled head (the official training
    batches are single-domain, so this equals the official labelled routing); without labels the whole
    batch goes to the router's vote, exactly as the official forward. Both heads are computed and one is
    selected per example, which keeps the function jit-compatible at ~2% of the encoder's cost.
    Per-domain parameters are ``{seed_bin_regressors,attractors_{i},conditional_log_binomial}_{name}``.
    """

    head: MetricHeadConfig
    bins: tuple[BinConfig, ...]
    router: RouterConfig
    bottleneck_features: int = 256
    ops: OpForms = GENERIC  # platform-dependent op forms (zoejax.ops.platform): the head's resizes

    @nn.compact
    def __call__(self, features: dict[str, jnp.ndarray], domain: jnp.ndarray | None = None,
                 train: bool = False, vote_per_example: bool = False, uncertainty: bool = False
                 ) -> dict[str, jnp.ndarray]:
        f = _f32(features)
        cfg, rc = self.head, self.router
        normed = cfg.bin_centers_type == "normed"
        x0 = conv1x1(self.bottleneck_features, name="conv2")(f["l4_rn"])
        embedding = PatchTransformerEncoder(rc.hidden_size, rc.num_layers, rc.num_heads, rc.intermediate_size,
                                            rc.layer_norm_eps, rc.dropout, name="patch_transformer")(x0, train)
        logits = MLPClassifier(len(self.bins), name="mlp_classifier")(embedding)
        batch = x0.shape[0]
        if domain is None and vote_per_example:
            # What the official code gives when each image is run as its own batch of one.
            chosen = jnp.argmax(logits, axis=-1).astype(jnp.int32)
        elif domain is None:
            chosen = jnp.broadcast_to(batch_vote(logits), (batch,))
        else:
            chosen = jnp.asarray(domain, jnp.int32).reshape(batch)

        seed_projector = Projector(cfg.bin_embedding_dim, cfg.projector_mlp_dim, name="seed_projector")
        projectors = [Projector(cfg.bin_embedding_dim, cfg.projector_mlp_dim, name=f"projectors_{i}")
                      for i in range(4)]
        last = f["out_conv"]
        if cfg.use_rel_depth:
            last = jnp.concatenate([last, f["rel_depth"][..., None]], axis=-1)
        per_domain = []
        for bins in self.bins:
            # The official NK passes n_attractors[i] into the n_bins slot: every level keeps 16 attractors.
            cascade = _attractor_cascade(
                SeedBinRegressor(bins.n_bins, cfg.seed_mlp_dim, cfg.bin_centers_type, bins.min_depth,
                                 bins.max_depth, name=f"seed_bin_regressors_{bins.name}"),
                seed_projector, projectors,
                [AttractorLayer(n, cfg.bin_embedding_dim, cfg.bin_centers_type, cfg.attractor_alpha,
                                cfg.attractor_gamma, cfg.attractor_kind, cfg.attractor_type, bins.min_depth,
                                bins.max_depth, self.ops, name=f"attractors_{bins.name}_{i}")
                 for i, n in enumerate(cfg.n_attractors)],
                x0, f, bins, normed)
            clb = ConditionalLogBinomial(bins.n_bins, cfg.clb_bottleneck_factor, cfg.min_temp, cfg.max_temp,
                                         self.ops, name=f"conditional_log_binomial_{bins.name}")
            per_domain.append({**_depth_from_bins(clb, last, cascade, last.shape[1:3], uncertainty,
                                                  self.ops.resize), **cascade})

        def select(*values):
            stacked = jnp.stack(values)  # (D, B, ...)
            onehot = chosen[None, :] == jnp.arange(len(values))[:, None]  # (D, B)
            mask = onehot.reshape(onehot.shape + (1,) * (stacked.ndim - 2))
            return jnp.sum(jnp.where(mask, stacked, 0), axis=0)

        out = {k: select(*(d[k] for d in per_domain)) for k in per_domain[0]}
        return {**out, "domain_logits": logits, "domain": chosen}


class NaiveHead(nn.Module):
    """The paper's Table 5 baseline: metric depth regressed per pixel from the relative-depth head's features
    (``out_conv`` and the relative depth): 1x1 conv -> ReLU -> 1x1 conv -> softplus, in metres."""

    hidden: int = 32

    @nn.compact
    def __call__(self, features: dict[str, jnp.ndarray]) -> dict[str, jnp.ndarray]:
        f = _f32(features)
        x = jnp.concatenate([f["out_conv"], f["rel_depth"][..., None]], axis=-1)
        x = nn.relu(conv1x1(self.hidden, name="conv_0")(x))
        return {"metric_depth": nn.softplus(conv1x1(1, name="conv_2")(x))[..., 0]}
