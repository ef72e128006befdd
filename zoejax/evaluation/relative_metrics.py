"""The relative-depth evaluation protocol (MiDaS zero-shot): a relative model predicts disparity up to an unknown
scale and shift, so each image's prediction is first aligned to the ground truth by least squares in disparity
space, then turned into depth and scored with AbsRel and delta1 like a metric prediction.

Per image: ``s, t = argmin sum_valid (s p + t - 1/gt)^2`` (the training loss's ``scale_and_shift``), the aligned
disparity clamped below at ``1 / max_depth`` (so no aligned depth is negative or beyond the range), depth
``1 / aligned``; then over the valid pixels ``AbsRel = mean |d - gt| / gt`` and
``delta1 = mean(max(d / gt, gt / d) < 1.25)``.
"""

from __future__ import annotations

import jax.numpy as jnp

from zoejax.training.relative_losses import scale_and_shift


def align_disparity(pred: jnp.ndarray, gt_depth: jnp.ndarray, mask: jnp.ndarray,
                    max_depth: float) -> jnp.ndarray:
    """(B, H, W) relative disparity, depth in metres, bool mask -> (B, H, W) aligned depth in metres."""
    mask = mask.astype(bool)
    target = jnp.where(mask, 1.0 / jnp.where(mask, gt_depth.astype(jnp.float32), 1.0), 0.0)
    scale, shift = scale_and_shift(pred, target, mask)
    aligned = scale[:, None, None] * pred.astype(jnp.float32) + shift[:, None, None]
    return 1.0 / jnp.maximum(aligned, 1.0 / max_depth)


def relative_metrics(pred: jnp.ndarray, gt_depth: jnp.ndarray, mask: jnp.ndarray,
                     max_depth: float) -> dict[str, jnp.ndarray]:
    """Aligned ``abs_rel`` and ``delta1`` over the batch's valid pixels, plus ``n_valid`` (float32 scalars)."""
    mask = mask.astype(bool)
    depth = align_disparity(pred, gt_depth, mask, max_depth)
    gt = jnp.where(mask, gt_depth.astype(jnp.float32), 1.0)
    n = jnp.maximum(jnp.sum(mask), 1).astype(jnp.float32)
    abs_rel = jnp.sum(jnp.where(mask, jnp.abs(depth - gt) / gt, 0.0)) / n
    ratio = jnp.maximum(depth / gt, gt / depth)
    delta1 = jnp.sum(jnp.where(mask, ratio < 1.25, False)) / n
    return {"abs_rel": abs_rel, "delta1": delta1, "n_valid": jnp.sum(mask).astype(jnp.float32)}
