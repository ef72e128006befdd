"""The evaluator of relative-depth models (MiDaS, ``zoejax.models.relative_depth``, and Depth Anything V1 / V2
relative, ``zoejax.models.depth_anything``): the sharded evaluator's
batches, prediction and host reduction, scored by the relative protocol (``relative_metrics``).

Per image: the relative disparity, resized to the ground truth's size (bilinear, align_corners=True, as the
metric evaluator), is aligned to the ground truth by least-squares scale and shift in disparity space over the
protocol's valid pixels (its depth range, crop and the dataset's mask), clamped at ``1 / max_depth``, turned into
depth, then scored with the official per-image metrics (``compute_errors``: ``abs_rel``, ``a1`` = delta1, ...).
Images are averaged with equal weight, as the metric protocol and MiDaS's zero-shot evaluation do.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from zoejax.evaluation.evaluator import Evaluator
from zoejax.evaluation.metrics import compute_errors, eigen_crop_mask, garg_crop_mask
from zoejax.evaluation.protocols import EvalProtocol
from zoejax.evaluation.relative_metrics import align_disparity
from zoejax.models.depth_anything import DepthAnything
from zoejax.models.relative_depth import RelativeDepth
from zoejax.ops.resize import resize_bilinear
from zoejax.training.sharding import batch_sharding, traced_under


def predict_relative(model, params: Any, images: jax.Array, out_size: tuple[int, int], flip_tta: bool) -> jax.Array:
    """images (B, H, W, 3) in [0, 1] at the network size -> relative disparity (B, *out_size), unitless."""
    n = images.shape[0]
    if flip_tta:
        images = jnp.concatenate([images, images[:, :, ::-1]], axis=0)
    rel = model.apply({"params": params}, images)["relative_depth"]
    if flip_tta:
        rel = 0.5 * (rel[:n] + rel[n:, :, ::-1])
    if rel.shape[1:] != tuple(out_size):
        rel = resize_bilinear(rel[..., None], out_size, align_corners=True)[..., 0]
    return rel


def protocol_mask(gt: np.ndarray, protocol: EvalProtocol, valid: np.ndarray | None) -> np.ndarray:
    """The pixels a protocol scores: inside its depth range (open, or closed with ``inclusive_range``), its crop
    and the dataset's mask."""
    lo, hi = protocol.min_depth, protocol.max_depth
    mask = ((gt >= lo) & (gt <= hi)) if protocol.inclusive_range else ((gt > lo) & (gt < hi))
    if valid is not None:
        mask &= np.asarray(valid, bool)
    if protocol.crop == "eigen":
        mask &= eigen_crop_mask(gt.shape)
    elif protocol.crop == "garg":
        mask &= garg_crop_mask(gt.shape)
    return mask


class RelativeEvaluator(Evaluator):
    """``Evaluator`` for a relative module (``RelativeDepth``, or a relative ``DepthAnything``): same arguments
    (``route_by_label`` has no meaning)."""

    def __init__(self, model, mesh, param_shardings: Any = None):
        super().__init__(model, mesh, param_shardings)
        self._align = jax.jit(align_disparity, static_argnums=3)

    def check_model(self, model) -> None:
        if not _is_relative(model):
            raise TypeError(f"the relative evaluator scores relative models (RelativeDepth, a relative "
                            f"DepthAnything), not this {type(model).__name__}")

    def _predict_fn(self, out_size: tuple[int, int], flip_tta: bool):
        key = (out_size, flip_tta)
        if key not in self._compiled:
            batch = batch_sharding(self.mesh)
            fn = lambda params, images, domain: predict_relative(  # noqa: E731
                self.model, params, images, out_size, flip_tta)
            self._compiled[key] = jax.jit(traced_under(self.mesh, fn), out_shardings=batch,
                                          in_shardings=(self.param_shardings, batch, batch))
        return self._compiled[key]

    def score(self, gt: np.ndarray, pred: np.ndarray, protocol: EvalProtocol, valid: np.ndarray
              ) -> dict[str, float] | None:
        gt = np.asarray(gt, np.float32)
        mask = protocol_mask(gt, protocol, valid)
        if np.count_nonzero(mask) < max(protocol.min_valid_pixels, 1):
            return None
        depth = np.asarray(self._align(pred[None], gt[None], mask[None], float(protocol.max_depth)))[0][mask]
        if protocol.clamp_predictions:
            depth = np.clip(depth, protocol.min_depth, protocol.max_depth)
        return compute_errors(gt[mask], depth, protocol.silog)


def evaluator_for(model, mesh, param_shardings: Any = None, route_by_label: bool = False) -> Evaluator:
    """The evaluator of a Flax module by what it predicts: a ``RelativeEvaluator`` for relative depth (MiDaS, or
    Depth Anything V1 / V2 relative), the metric ``Evaluator`` otherwise (ZoeDepth, Depth Anything V2 metric)."""
    if _is_relative(model):
        return RelativeEvaluator(model, mesh, param_shardings)
    return Evaluator(model, mesh, param_shardings, route_by_label=route_by_label)


def _is_relative(model) -> bool:
    return isinstance(model, RelativeDepth) or (isinstance(model, DepthAnything)
                                                and model.config.output_key == "relative_depth")
