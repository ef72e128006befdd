"""The training objectives: ONE table from an objective name to how a model family is run on a batch and scored.

An objective is chosen by ``LossConfig.objective`` ("" = the model config's default, ``default_objective``). Each
entry says which model config it trains (``family``), how the model is applied to a batch (``forward``, the
family's call signature: ZoeDepth takes the NK domain labels and dropout, Depth Anything neither) and builds the
loss (``make_loss(model_config, loss_cfg) -> loss(outputs, batch) -> (total, metrics)``; ``metrics`` holds
``loss`` = ``total`` and ``valid_pixels``). Everything here is pure and jit-able; the train step
(``zoejax.training.step``) adds the optimizer. A new family or loss is one entry here, nothing else.

Batch: see ``data_pipelines/batch.py`` (``image`` (B, H, W, 3) in [0, 1], ``depth`` (B, h, w) metres, ``valid``
(B, h, w) bool, ``domain`` (B,) int32, optional ``disparity`` (B,) bool: ``depth`` holds disparity).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from zoejax.models.config import ZoeDepthConfig
from zoejax.models.depth_anything_config import DepthAnythingConfig
from zoejax.models.relative_depth import RelativeDepthConfig
from zoejax.ops.resize import resize_bilinear
from zoejax.training.losses import domain_loss, gradient_matching_loss, shifted_silog_loss, silog_loss
from zoejax.training.relative_losses import relative_depth_loss

LossFn = Callable[[dict, dict], tuple[jax.Array, dict]]

# Depth Anything V2's metric training scores pixels with min_depth <= gt <= max_depth (its train.py).
DA2_MIN_DEPTH = 0.001


@dataclasses.dataclass(frozen=True)
class LossConfig:
    """The objective and its weights (official ZoeDepth: w_si 1, w_grad 0; NK: w_domain 100).

    ``objective``: a key of ``OBJECTIVES``; "" takes the model's default (``default_objective``).
    ``route_by_label=False`` is the official ZoeDepth behaviour: the depth loss goes through the head the router
    votes for; True routes each example to its labelled head (the paper's "labeled router").
    ``da2_lambda``: the variance weight of the DA2 metric loss (official 0.5).
    The relative objective (MiDaS, ``relative_losses``): ``relative_data`` "ssitrim" (v3, trimmed MAE of the
    median/MAD-normalised disparities, the lowest ``1 - relative_trim`` kept) or "ssi_lsq" (v1, least-squares
    aligned MSE); ``relative_median`` "masked_zeros" (the reference: the median of mask * x, invalid pixels as 0)
    or "valid" (over the valid pixels only); ``w_relative_grad`` the gradient-matching weight (reference 0.5) over
    ``relative_scales`` scales.
    """

    w_si: float = 1.0
    w_grad: float = 0.0
    w_domain: float = 100.0
    route_by_label: bool = False
    objective: str = ""
    da2_lambda: float = 0.5
    relative_data: str = "ssitrim"
    relative_median: str = "masked_zeros"
    relative_trim: float = 0.2
    w_relative_grad: float = 0.5
    relative_scales: int = 4

    def __post_init__(self):
        for name, value, choices in (("relative_data", self.relative_data, ("ssitrim", "ssi_lsq")),
                                     ("relative_median", self.relative_median, ("masked_zeros", "valid"))):
            if value not in choices:
                raise ValueError(f"loss.{name}={value!r} is not one of {list(choices)}")
        if not 0.0 <= self.relative_trim < 1.0:
            raise ValueError(f"loss.relative_trim must be in [0, 1), got {self.relative_trim}")
        if self.relative_scales < 1 or self.w_relative_grad < 0:
            raise ValueError("loss.relative_scales must be >= 1 and loss.w_relative_grad >= 0")


@dataclasses.dataclass(frozen=True)
class Objective:
    """One row of the table: the model config class it trains, its forward on a batch, its loss builder."""

    family: type
    forward: Callable[[Any, Any, dict, jax.Array, bool, LossConfig], dict]
    make_loss: Callable[[Any, LossConfig], LossFn]
    description: str


def _zoedepth_forward(model, params, batch: dict, rng: jax.Array, train: bool, loss_cfg: LossConfig) -> dict:
    domain = batch["domain"] if (model.config.is_multi_head and loss_cfg.route_by_label) else None
    return model.apply({"params": params}, batch["image"], domain, train=train, rngs={"dropout": rng})


def _zoedepth_loss(model_config: ZoeDepthConfig, loss_cfg: LossConfig) -> LossFn:
    multi_head = model_config.is_multi_head

    def loss(out: dict, batch: dict) -> tuple[jax.Array, dict]:
        si, n_valid = silog_loss(out["metric_depth"], batch["depth"], batch["valid"])
        total = loss_cfg.w_si * si
        metrics = {"silog": si, "valid_pixels": n_valid}
        if loss_cfg.w_grad:
            grad_term = gradient_matching_loss(out["metric_depth"], batch["depth"], batch["valid"])
            total = total + loss_cfg.w_grad * grad_term
            metrics["grad_loss"] = grad_term
        if multi_head:
            ce = domain_loss(out["domain_logits"], batch["domain"])
            total = total + loss_cfg.w_domain * ce
            metrics["domain_loss"] = ce
            metrics["domain_accuracy"] = jnp.mean(out["domain"] == batch["domain"])
        metrics["loss"] = total
        return total, metrics

    return loss


def _depth_anything_forward(model, params, batch: dict, rng: jax.Array, train: bool, loss_cfg: LossConfig) -> dict:
    del rng, train, loss_cfg  # no dropout, no routing
    return model.apply({"params": params}, batch["image"])


def _da2_metric_loss(model_config: DepthAnythingConfig, loss_cfg: LossConfig) -> LossFn:
    if model_config.head.depth_type != "metric":
        raise ValueError("loss.objective='da2_metric' needs a metric Depth Anything model "
                         f"(model.head.depth_type='metric'), got {model_config.head.depth_type!r}")
    max_depth = float(model_config.head.max_depth)

    def loss(out: dict, batch: dict) -> tuple[jax.Array, dict]:
        depth = batch["depth"]
        mask = batch["valid"].astype(bool) & (depth >= DA2_MIN_DEPTH) & (depth <= max_depth)
        si, n_valid = shifted_silog_loss(out["metric_depth"], depth, mask, loss_cfg.da2_lambda)
        total = loss_cfg.w_si * si
        return total, {"silog": si, "valid_pixels": n_valid, "loss": total}

    return loss


def _relative_forward(model, params, batch: dict, rng: jax.Array, train: bool, loss_cfg: LossConfig) -> dict:
    del rng, train, loss_cfg  # no dropout in MiDaS's DPT
    return model.apply({"params": params}, batch["image"])


def target_disparity(batch: dict) -> tuple[jax.Array, jax.Array]:
    """(B, h, w) target disparity and mask: ``1 / depth`` of metric examples, ``depth`` itself where the batch
    says it holds disparity (custom rows of kind disparity); 0 and False where not valid or not positive."""
    depth = batch["depth"].astype(jnp.float32)
    mask = batch["valid"].astype(bool) & (depth > 0)
    is_disparity = batch.get("disparity")
    inverse = 1.0 / jnp.where(mask, depth, 1.0)
    if is_disparity is not None:
        inverse = jnp.where(is_disparity.astype(bool)[:, None, None], depth, inverse)
    return jnp.where(mask, inverse, 0.0), mask


def _relative_loss(model_config: RelativeDepthConfig, loss_cfg: LossConfig) -> LossFn:
    del model_config
    return _disparity_loss(loss_cfg)


def _da_relative_loss(model_config: DepthAnythingConfig, loss_cfg: LossConfig) -> LossFn:
    if model_config.head.depth_type != "relative":
        raise ValueError("loss.objective='da_relative' needs a relative Depth Anything model "
                         f"(model.head.depth_type='relative'), got {model_config.head.depth_type!r}")
    return _disparity_loss(loss_cfg)


def _disparity_loss(loss_cfg: LossConfig) -> LossFn:
    """The scale-and-shift invariant loss of a ``relative_depth`` output (relative inverse depth) against the
    batch's disparity, whichever family produced it."""

    def loss(out: dict, batch: dict) -> tuple[jax.Array, dict]:
        target, mask = target_disparity(batch)
        pred = out["relative_depth"].astype(jnp.float32)
        if pred.shape[1:] != target.shape[1:]:  # scored at the ground truth's size, as the metric losses
            pred = resize_bilinear(pred[..., None], target.shape[1:], align_corners=True)[..., 0]
        total, parts = relative_depth_loss(pred, target, mask, data_loss=loss_cfg.relative_data,
                                           median=loss_cfg.relative_median, trim=loss_cfg.relative_trim,
                                           alpha=loss_cfg.w_relative_grad, scales=loss_cfg.relative_scales)
        return total, {"data_loss": parts["data"], "grad_loss": parts["gradient"], "loss": total,
                       "valid_pixels": jnp.sum(mask)}

    return loss


OBJECTIVES: dict[str, Objective] = {
    "zoedepth": Objective(ZoeDepthConfig, _zoedepth_forward, _zoedepth_loss,
                          "ZoeDepth: 10*SILog (beta 0.15) [+ w_grad gradient matching] [+ w_domain NK router CE]"),
    "da2_metric": Objective(DepthAnythingConfig, _depth_anything_forward, _da2_metric_loss,
                            "Depth Anything V2 metric: sqrt(mean(d^2) - 0.5 mean(d)^2), d = ln gt - ln pred, "
                            "on 0.001 <= gt <= max_depth"),
    "relative": Objective(RelativeDepthConfig, _relative_forward, _relative_loss,
                          "MiDaS relative depth, in disparity: ssitrim (v3) or ssi_lsq (v1) data term + "
                          "w_relative_grad (0.5) x multi-scale gradient matching"),
    "da_relative": Objective(DepthAnythingConfig, _depth_anything_forward, _da_relative_loss,
                             "Depth Anything relative depth: the relative objective's loss (in disparity) on the "
                             "DINOv2 + Depth Anything DPT model's ReLU output"),
}


def default_objective(model_config: Any) -> str:
    """The objective a model config trains with when ``LossConfig.objective`` is ""."""
    if isinstance(model_config, ZoeDepthConfig):
        return "zoedepth"
    if isinstance(model_config, RelativeDepthConfig):
        return "relative"
    if isinstance(model_config, DepthAnythingConfig):
        return "da2_metric" if model_config.head.depth_type == "metric" else "da_relative"
    raise ValueError(f"no default training objective for {type(model_config).__name__} "
                     f"({getattr(getattr(model_config, 'head', None), 'depth_type', '?')} output): set "
                     f"loss.objective to one of {sorted(OBJECTIVES)}")


def objective_for(model_config: Any, loss_cfg: LossConfig) -> Objective:
    """The table row of ``loss_cfg.objective`` (or the model's default), checked against the model config's
    class; ValueError naming the objectives otherwise."""
    name = loss_cfg.objective or default_objective(model_config)
    if name not in OBJECTIVES:
        raise ValueError(f"loss.objective={name!r} is not one of {sorted(OBJECTIVES)}")
    objective = OBJECTIVES[name]
    if not isinstance(model_config, objective.family):
        raise ValueError(f"loss.objective={name!r} trains {objective.family.__name__} models, but the model is a "
                         f"{type(model_config).__name__}: use one of "
                         f"{sorted(k for k, o in OBJECTIVES.items() if isinstance(model_config, o.family))}")
    return objective
