"""Relative-depth (MiDaS) training losses, after the MiDaS authors' published reference (v2/v3), in float32.

All inputs are (B, H, W) in disparity (inverse depth) space, with a (B, H, W) validity mask; the prediction must
already be at the target's resolution. Every reduction is "batch-based": sums over the whole batch divided by a
sum of mask counts, written with ``where``/sorting so that shapes stay static under ``jit``.

* ssitrim: per image ``x_hat = (x - median) / max(mean_valid |x - median|, 1e-6)`` for prediction and target alike;
  ``|p_hat - t_hat|`` over the batch's valid pixels, the lowest ``1 - trim`` fraction kept (``floor``, as the
  reference), summed and divided by ``2 * sum(mask)``. The median is chosen by ``median``:
  ``"masked_zeros"`` is the reference's (the median of ``mask * x`` over every pixel, invalid ones counting as 0),
  ``"valid"`` takes it over the valid pixels only. Both take the lower median of an even count, as torch.median.
* ssi_lsq (v1): per image scale and shift from the 2x2 normal equations (0 and 0 where singular), then
  ``sum(mask * res^2) / (2 * sum(mask))``.
* Gradient matching: ``R = mask * (p_hat - t_hat)``; ``sum |dx R| * mask_x + sum |dy R| * mask_y`` divided by
  ``sum(mask)``, at ``scales`` scales taken by strided subsampling ``[::2^k]`` (not pooling), summed over scales.
* Total: ``data + alpha * gradient`` (alpha 0.5 in the reference), on the normalised/aligned prediction.
"""

from __future__ import annotations

from typing import Literal

import jax.numpy as jnp

MedianMode = Literal["masked_zeros", "valid"]
DataLoss = Literal["ssitrim", "ssi_lsq"]


def _lower_median(values: jnp.ndarray, keep: jnp.ndarray) -> jnp.ndarray:
    """(B, N) values, (B, N) bool -> (B,) lower median of the kept values (0 where none is kept)."""
    n = jnp.sum(keep, axis=1)
    ordered = jnp.sort(jnp.where(keep, values, jnp.inf), axis=1)
    idx = jnp.maximum(n - 1, 0) // 2
    med = jnp.take_along_axis(ordered, idx[:, None], axis=1)[:, 0]
    return jnp.where(n > 0, med, 0.0)


def normalize_robust(x: jnp.ndarray, mask: jnp.ndarray, median: MedianMode = "masked_zeros") -> jnp.ndarray:
    """(B, H, W) -> (B, H, W) ``(x - m) / s`` per image (m = median, s = mean valid |x - m|, at least 1e-6).

    Images without a valid pixel keep m = 0, s = 1, as the reference does.
    """
    x = x.astype(jnp.float32)
    mask = mask.astype(jnp.float32)
    b = x.shape[0]
    flat, flat_mask = x.reshape(b, -1), mask.reshape(b, -1)
    if median == "masked_zeros":
        m = _lower_median(flat * flat_mask, jnp.ones_like(flat_mask, dtype=bool))
    elif median == "valid":
        m = _lower_median(flat, flat_mask > 0)
    else:
        raise ValueError(f"relative loss: median must be 'masked_zeros' or 'valid', got {median!r}")
    count = jnp.sum(flat_mask, axis=1)
    centred = x - m[:, None, None]
    spread = jnp.sum(mask * jnp.abs(centred), axis=(1, 2)) / jnp.maximum(count, 1.0)
    s = jnp.where(count > 0, jnp.maximum(spread, 1e-6), 1.0)
    m = jnp.where(count > 0, m, 0.0)
    return (x - m[:, None, None]) / s[:, None, None]


def trimmed_mae(pred: jnp.ndarray, target: jnp.ndarray, mask: jnp.ndarray, trim: float = 0.2) -> jnp.ndarray:
    """Sum of the lowest ``floor(n * (1 - trim))`` of the batch's n valid ``|pred - target|``, over ``2 * n``."""
    valid = mask.astype(bool).reshape(-1)
    res = jnp.abs(pred - target).astype(jnp.float32).reshape(-1)
    n = jnp.sum(valid)
    keep = jnp.floor(n.astype(jnp.float32) * (1.0 - trim)).astype(jnp.int32)
    ordered = jnp.sort(jnp.where(valid, res, jnp.inf))
    kept = jnp.where(jnp.arange(ordered.shape[0]) < keep, ordered, 0.0)
    return jnp.where(n > 0, jnp.sum(kept) / (2.0 * jnp.maximum(n, 1)), 0.0)


def scale_and_shift(pred: jnp.ndarray, target: jnp.ndarray, mask: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
    """(B, H, W) x3 -> (B,) scale and (B,) shift minimising ``sum mask (s p + t - y)^2`` (0, 0 where singular)."""
    pred, target = pred.astype(jnp.float32), target.astype(jnp.float32)
    mask = mask.astype(jnp.float32)
    # Solved on the prediction centred on its valid mean (the same solution): the raw normal equations lose
    # float32 precision when the prediction is a small spread around a large offset.
    centre = jnp.sum(mask * pred, axis=(1, 2)) / jnp.maximum(jnp.sum(mask, axis=(1, 2)), 1.0)
    pred = pred - centre[:, None, None]
    a00 = jnp.sum(mask * pred * pred, axis=(1, 2))
    a01 = jnp.sum(mask * pred, axis=(1, 2))
    a11 = jnp.sum(mask, axis=(1, 2))
    b0 = jnp.sum(mask * pred * target, axis=(1, 2))
    b1 = jnp.sum(mask * target, axis=(1, 2))
    det = a00 * a11 - a01 * a01
    ok = det > 0
    safe = jnp.where(ok, det, 1.0)
    scale = jnp.where(ok, (a11 * b0 - a01 * b1) / safe, 0.0)
    shift = jnp.where(ok, (-a01 * b0 + a00 * b1) / safe - scale * centre, 0.0)
    return scale, shift


def masked_mse(pred: jnp.ndarray, target: jnp.ndarray, mask: jnp.ndarray) -> jnp.ndarray:
    """``sum(mask * (pred - target)^2) / (2 * sum(mask))`` over the batch (0 when nothing is valid)."""
    mask = mask.astype(jnp.float32)
    n = jnp.sum(mask)
    return jnp.where(n > 0, jnp.sum(mask * (pred - target) ** 2) / (2.0 * jnp.maximum(n, 1.0)), 0.0)


def _gradient_one_scale(pred: jnp.ndarray, target: jnp.ndarray, mask: jnp.ndarray) -> jnp.ndarray:
    residual = mask * (pred - target)
    grad_x = jnp.abs(residual[:, :, 1:] - residual[:, :, :-1]) * (mask[:, :, 1:] * mask[:, :, :-1])
    grad_y = jnp.abs(residual[:, 1:, :] - residual[:, :-1, :]) * (mask[:, 1:, :] * mask[:, :-1, :])
    n = jnp.sum(mask)
    return jnp.where(n > 0, (jnp.sum(grad_x) + jnp.sum(grad_y)) / jnp.maximum(n, 1.0), 0.0)


def multiscale_gradient_loss(pred: jnp.ndarray, target: jnp.ndarray, mask: jnp.ndarray,
                             scales: int = 4) -> jnp.ndarray:
    """Gradient matching summed over ``scales`` scales ``[:, ::2^k, ::2^k]``, each divided by its own mask sum."""
    pred, target = pred.astype(jnp.float32), target.astype(jnp.float32)
    mask = mask.astype(jnp.float32)
    total = jnp.float32(0.0)
    for k in range(scales):
        step = 2**k
        total = total + _gradient_one_scale(pred[:, ::step, ::step], target[:, ::step, ::step],
                                            mask[:, ::step, ::step])
    return total


def relative_depth_loss(pred: jnp.ndarray, target: jnp.ndarray, mask: jnp.ndarray, *,
                        data_loss: DataLoss = "ssitrim", median: MedianMode = "masked_zeros",
                        trim: float = 0.2, alpha: float = 0.5,
                        scales: int = 4) -> tuple[jnp.ndarray, dict[str, jnp.ndarray]]:
    """Scale-and-shift invariant loss of a (B, H, W) predicted disparity against a (B, H, W) target disparity.

    Returns (total, {"data": ..., "gradient": ...}) as float32 scalars; ``alpha`` weighs the gradient term.
    """
    if data_loss == "ssitrim":
        p = normalize_robust(pred, mask, median)
        t = normalize_robust(target, mask, median)
        data = trimmed_mae(p, t, mask, trim)
    elif data_loss == "ssi_lsq":
        scale, shift = scale_and_shift(pred, target, mask)
        p = scale[:, None, None] * pred.astype(jnp.float32) + shift[:, None, None]
        t = target.astype(jnp.float32)
        data = masked_mse(p, t, mask)
    else:
        raise ValueError(f"relative loss: data_loss must be 'ssitrim' or 'ssi_lsq', got {data_loss!r}")
    gradient = multiscale_gradient_loss(p, t, mask, scales) if alpha > 0 else jnp.float32(0.0)
    return data + alpha * gradient, {"data": data, "gradient": gradient}
