"""Training losses of the official recipe (training spec section 3), in float32 whatever the compute dtype.

* SILog: the prediction is resized to the ground truth's size (bilinear, align_corners=True) when widths
  differ; valid pixels are pooled over the whole batch; g = ln(p + 1e-7) - ln(y + 1e-7);
  L = 10 * sqrt(Var_unbiased(g) + 0.15 * mean(g)^2).
* NK domain loss: mean cross-entropy between the router logits and the (batch) domain label, weight 100.
Masked reductions are written with ``where`` so shapes stay static under ``jit``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from zoejax.ops.resize import resize_bilinear


def resize_prediction(pred: jnp.ndarray, size: tuple[int, int]) -> jnp.ndarray:
    """(B, h, w) prediction -> (B, H, W) ground-truth size; the official code resizes only when widths differ."""
    if pred.shape[-1] == size[-1]:
        return pred
    return resize_bilinear(pred[..., None], size, align_corners=True)[..., 0]


def silog_loss(pred: jnp.ndarray, target: jnp.ndarray, mask: jnp.ndarray, beta: float = 0.15,
               eps: float = 1e-7) -> tuple[jnp.ndarray, jnp.ndarray]:
    """Scale-invariant log loss over the batch's valid pixels.

    Args:
      pred: (B, h, w) predicted depth in metres (any resolution; resized to the target's).
      target: (B, H, W) ground-truth depth in metres.
      mask: (B, H, W) bool, valid pixels (min_depth < target < max_depth).
    Returns:
      (loss, n_valid): scalar float32 loss (0 when fewer than two pixels are valid) and the valid count.
    """
    pred = resize_prediction(pred.astype(jnp.float32), target.shape[-2:])
    mask = mask.astype(bool)
    n = jnp.sum(mask).astype(jnp.float32)
    # Invalid pixels get harmless values so that the log (and its gradient) stays finite there.
    safe_pred = jnp.where(mask, pred, 1.0)
    safe_target = jnp.where(mask, target.astype(jnp.float32), 1.0)
    g = jnp.where(mask, jnp.log(safe_pred + eps) - jnp.log(safe_target + eps), 0.0)
    mean = jnp.sum(g) / jnp.maximum(n, 1.0)
    var = jnp.sum(jnp.where(mask, (g - mean) ** 2, 0.0)) / jnp.maximum(n - 1.0, 1.0)  # unbiased, as torch.var
    loss = 10.0 * jnp.sqrt(var + beta * mean**2)
    return jnp.where(n > 1, loss, 0.0), n


def domain_loss(logits: jnp.ndarray, labels: jnp.ndarray) -> jnp.ndarray:
    """Mean cross-entropy of (B, D) router logits against (B,) int domain labels."""
    return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits.astype(jnp.float32), labels))


def gradient_matching_loss(pred: jnp.ndarray, target: jnp.ndarray, mask: jnp.ndarray) -> jnp.ndarray:
    """Optional term (off in the official recipe): L1 between forward differences of prediction and target
    along x and y where both neighbours are valid, averaged over those pixel pairs."""
    pred = resize_prediction(pred.astype(jnp.float32), target.shape[-2:])
    target = target.astype(jnp.float32)
    total, count = 0.0, 0.0
    for axis in (-1, -2):
        dp, dt = jnp.diff(pred, axis=axis), jnp.diff(target, axis=axis)
        both = jnp.logical_and(jax.lax.slice_in_dim(mask, 1, None, axis=axis),
                               jax.lax.slice_in_dim(mask, 0, -1, axis=axis))
        total = total + jnp.sum(jnp.where(both, jnp.abs(dp - dt), 0.0))
        count = count + jnp.sum(both)
    return total / jnp.maximum(count, 1.0)


def shifted_silog_loss(pred: jnp.ndarray, target: jnp.ndarray, mask: jnp.ndarray,
                       lambd: float = 0.5) -> tuple[jnp.ndarray, jnp.ndarray]:
    """Depth Anything V2's metric loss over the batch's valid pixels: d = ln(target) - ln(pred),
    L = sqrt(mean(d^2) - lambd * mean(d)^2) (biased moments, no x10, no epsilon, as the official ``SiLogLoss``).

    Args:
      pred: (B, h, w) predicted depth in metres, > 0 (resized to the target's size when widths differ).
      target: (B, H, W) ground-truth depth in metres.
      mask: (B, H, W) bool, pixels to score (the caller has applied the recipe's depth range).
    Returns:
      (loss, n_valid): scalar float32 loss (0 when no pixel is valid) and the valid count.
    """
    pred = resize_prediction(pred.astype(jnp.float32), target.shape[-2:])
    mask = mask.astype(bool)
    n = jnp.sum(mask).astype(jnp.float32)
    d = jnp.where(mask, jnp.log(jnp.where(mask, target.astype(jnp.float32), 1.0))
                  - jnp.log(jnp.where(mask, pred, 1.0)), 0.0)
    mean = jnp.sum(d) / jnp.maximum(n, 1.0)
    mean_sq = jnp.sum(d * d) / jnp.maximum(n, 1.0)
    # mean(d^2) >= mean(d)^2 > lambd * mean(d)^2 for lambd < 1, so the root's argument is >= 0 up to rounding.
    loss = jnp.sqrt(jnp.maximum(mean_sq - lambd * mean**2, 0.0))
    return jnp.where(n > 0, loss, 0.0), n
