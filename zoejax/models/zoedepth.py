"""ZoeDepth: MiDaS v3.1 (BEiT or Swin + DPT) core and a metric head; ZoeD_N, ZoeD_K and the routed ZoeD_NK.

Parameter tree (names mirror the official torch paths, one ``core.`` level dropped):
  core/pretrained/model/...          the registry's encoder (official core.core.pretrained.model.*)
  core/pretrained/act_postprocess{j} reassemble          (official core.core.pretrained.act_postprocess{j}.*;
                                                         BEiT only: Swin's reassemble has no parameters)
  core/scratch/...                   DPT fusion + head   (official core.core.scratch.*)
  metric_head/conv2, ...             metric head         (official top-level conv2, seed_bin_regressor, ...)
"""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from zoejax.models.backbones.registry import backbone_of
from zoejax.models.config import ZoeDepthConfig, parse_dtype
from zoejax.models.depth_anything import IMAGENET_MEAN, IMAGENET_STD
from zoejax.models.depth_anything_core import DepthAnythingCore
from zoejax.models.dpt import Scratch
from zoejax.models.heads import MetricBinsHead, NaiveHead, RoutedMetricBinsHead
from zoejax.models.validation import check_image_shape
from zoejax.ops.platform import GENERIC, OpForms, forms_for


class MidasPretrained(nn.Module):
    """MiDaS ``pretrained``: the encoder ``model`` and the features it hands the decoder, both from the backbone
    registry (``zoejax/models/backbones/registry.py``). BEiT's reassemble stages are ``act_postprocess{j}``; a Swin
    backbone's reassemble is the identity (MiDaS only transposes and unflattens the hooked stage outputs), so it
    holds no parameters and the taps are the maps."""

    config: ZoeDepthConfig
    ops: OpForms = GENERIC  # platform-dependent op forms (zoejax.ops.platform)

    @nn.compact
    def __call__(self, images: jnp.ndarray) -> tuple[list[jnp.ndarray], list[jnp.ndarray]]:
        """images (B,H,W,3) in [-1,1] -> (hooked taps, reassembled maps at H/4, H/8, H/16, H/32)."""
        bc, dtype, pdtype = self.config.backbone, parse_dtype(self.config.dtype), parse_dtype(
            self.config.param_dtype)
        family = backbone_of(bc)
        taps = family.encoder(bc, self.config.remat, dtype, pdtype, ops=self.ops, name="model")(images)
        maps = family.reassemble(bc, tuple(self.config.decoder.reassemble_features), taps, images.shape[1:3],
                                 dtype, pdtype, self.ops)
        return taps, maps


class MidasCore(nn.Module):
    """The relative-depth model (MiDaS DPT_BEiT): encoder, reassemble, scratch decoder and head."""

    config: ZoeDepthConfig
    ops: OpForms = GENERIC  # platform-dependent op forms (zoejax.ops.platform)

    @nn.compact
    def __call__(self, images: jnp.ndarray) -> dict[str, jnp.ndarray]:
        """images (B,H,W,3) in [-1,1] -> decoder taps (see ``Scratch``) plus ``encoder_taps`` and
        ``reassembled`` lists."""
        dc = self.config.decoder
        taps, layers = MidasPretrained(self.config, self.ops, name="pretrained")(images)
        out = Scratch(dc.features, dc.num_relative_features, parse_dtype(self.config.dtype),
                      parse_dtype(self.config.param_dtype), self.ops, name="scratch")(layers)
        return {**out, "encoder_taps": taps, "reassembled": layers}


# config.core -> (core module, normalisation mean, std): MiDaS normalises to [-1, 1] (``PrepForMidas``), the Depth
# Anything core with the ImageNet statistics (Depth Anything V1 metric's ``PrepForMidas``).
CORES = {
    "midas": (MidasCore, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
    "depth_anything": (DepthAnythingCore, IMAGENET_MEAN, IMAGENET_STD),
}


class ZoeDepth(nn.Module):
    """A ZoeDepth model (N, K or NK, decided by ``config``).

    Call with ``images`` (B, H, W, 3) float in [0, 1], H and W multiples of ``config.input_multiple`` (32 for the
    MiDaS core, 14 for the Depth Anything core), already at the network resolution (see ``zoejax.preprocess``);
    the model normalises as the official ``PrepForMidas`` does (mean = std = 0.5 for MiDaS, ImageNet statistics
    for Depth Anything; ``CORES``). ZoeD_NK also takes optional ``domain`` labels (B,) int (0 = first bin config,
    e.g. nyu; 1 = kitti); without them the router decides for the whole batch, or per example with
    ``vote_per_example=True`` (equal to running each image alone, as the official ``infer`` does).

    Returns a dict with ``metric_depth`` (B, H, W) float32 metres and ``rel_depth`` (B, H, W); for NK also
    ``domain_logits`` (B, D) and the chosen ``domain`` (B,). With ``return_intermediates=True`` also the
    encoder taps, decoder features, seed / per-level / final bin centres and the bin probabilities. With
    ``return_uncertainty=True`` also ``metric_depth_std`` (B, H, W) metres, the standard deviation of the
    log-binomial's distribution over the bin centres (bins heads only; the naive head has no distribution).

    ``ops`` is the form of the platform-dependent ops (attention, convolutions, gradient barrier;
    ``zoejax.ops.platform``) for the platform the program runs on; None takes this machine's backend's
    (``forms_for(None)``). A program built for another platform (a TPU AOT compile, an export) passes that
    platform's forms; the choice changes the arithmetic's form, never the parameters or the function computed.
    """

    config: ZoeDepthConfig
    ops: OpForms | None = None

    @nn.compact
    def __call__(self, images: jnp.ndarray, domain: jnp.ndarray | None = None, *, train: bool = False,
                 return_intermediates: bool = False, vote_per_example: bool = False,
                 return_uncertainty: bool = False) -> dict[str, jnp.ndarray]:
        cfg = self.config
        check_image_shape(images.shape, multiple=cfg.input_multiple)
        core, mean, std = CORES[cfg.core]
        x = (images.astype(jnp.float32) - jnp.asarray(mean, jnp.float32)) / jnp.asarray(std, jnp.float32)
        ops = forms_for(None) if self.ops is None else self.ops
        features = core(cfg, ops, name="core")(x)
        bottleneck = cfg.decoder.features
        if cfg.head.head_type == "naive":
            head_out = NaiveHead(name="metric_head")(features)
        elif cfg.is_multi_head:
            head_out = RoutedMetricBinsHead(cfg.head, tuple(cfg.bins), cfg.router, bottleneck, ops,
                                            name="metric_head")(features, domain, train, vote_per_example,
                                                                return_uncertainty)
        else:
            head_out = MetricBinsHead(cfg.head, cfg.bins[0], bottleneck, ops, name="metric_head")(
                features, return_uncertainty)
        out = {"metric_depth": head_out["metric_depth"].astype(jnp.float32),
               "rel_depth": features["rel_depth"].astype(jnp.float32)}
        for key in ("domain_logits", "domain", "metric_depth_std"):
            if key in head_out:
                out[key] = head_out[key]
        if return_intermediates:
            out.update({k: v for k, v in head_out.items() if k not in out})
            out.update({k: v for k, v in features.items() if k not in out})
        return out
