"""Relative-depth (MiDaS) losses: hand-computed small cases, a*p+b invariance, the 80% trim, the 4-scale gradient."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from zoejax.training.relative_losses import (
    masked_mse,
    normalize_robust,
    relative_depth_loss,
    scale_and_shift,
    trimmed_mae,
)
from zoejax.training.relative_losses import multiscale_gradient_loss as _gradient_loss

# compiled once per variant: op-by-op dispatch of the sorts and strided slices is what made these tests slow
multiscale_gradient_loss = jax.jit(_gradient_loss, static_argnames=("scales",))
_loss = jax.jit(relative_depth_loss, static_argnames=("data_loss", "median"))


def _row(values):
    return jnp.asarray(values, jnp.float32)[None, None, :]


def test_normalize_robust_all_valid_hand_case():
    # lower median of [1, 2, 3, 10] is 2 (torch.median); s = (1 + 0 + 1 + 8) / 4 = 2.5
    out = normalize_robust(_row([1, 2, 3, 10]), _row([1, 1, 1, 1]))
    np.testing.assert_allclose(np.asarray(out).ravel(), [-0.4, 0.0, 0.4, 3.2], rtol=1e-6)


def test_normalize_robust_median_variants_differ_as_specified():
    x, mask = _row([1, 2, 3, 10]), _row([1, 1, 1, 0])
    # reference: median of mask*x = [1, 2, 3, 0] -> sorted [0, 1, 2, 3], lower median 1; s = (0 + 1 + 2) / 3 = 1
    ref = normalize_robust(x, mask, "masked_zeros")
    np.testing.assert_allclose(np.asarray(ref).ravel(), [0.0, 1.0, 2.0, 9.0], rtol=1e-6)
    # valid-only: median of [1, 2, 3] = 2; s = (1 + 0 + 1) / 3 = 2/3
    val = normalize_robust(x, mask, "valid")
    np.testing.assert_allclose(np.asarray(val).ravel(), [-1.5, 0.0, 1.5, 12.0], rtol=1e-6)
    with pytest.raises(ValueError, match="median must be"):
        normalize_robust(x, mask, "mean")


def test_trim_keeps_exactly_the_lowest_80_percent():
    target = jnp.zeros((1, 2, 6), jnp.float32)
    residuals = np.array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 500, 900], np.float32)
    mask = np.ones(12, np.float32)
    mask[10:] = 0  # two invalid pixels with huge residuals never count
    pred, mask = jnp.asarray(residuals.reshape(1, 2, 6)), jnp.asarray(mask.reshape(1, 2, 6))
    # 10 valid -> keep floor(8) lowest: 1 + ... + 8 = 36, over 2 * 10
    assert float(trimmed_mae(pred, target, mask)) == pytest.approx(1.8, rel=1e-6)
    # the two largest valid residuals (9, 10) are dropped: raising them changes nothing ...
    bigger = residuals.copy()
    bigger[8:10] = [90, 100]
    assert float(trimmed_mae(jnp.asarray(bigger.reshape(1, 2, 6)), target, mask)) == pytest.approx(1.8, rel=1e-6)
    # ... while the 8th smallest is kept: raising it to 8.5 (still below 9) adds 0.5 / 20
    kept = residuals.copy()
    kept[7] = 8.5
    assert float(trimmed_mae(jnp.asarray(kept.reshape(1, 2, 6)), target, mask)) == pytest.approx(1.825, rel=1e-6)
    assert float(trimmed_mae(pred, target, jnp.zeros_like(mask))) == 0.0


def test_least_squares_scale_shift_hand_case():
    pred, target, mask = _row([0, 1, 2]), _row([0, 2, 1]), _row([1, 1, 1])
    # normal equations: a00=5 a01=3 a11=3 b0=4 b1=3, det=6 -> s=0.5, t=0.5
    scale, shift = scale_and_shift(pred, target, mask)
    assert float(scale[0]) == pytest.approx(0.5) and float(shift[0]) == pytest.approx(0.5)
    # aligned [0.5, 1, 1.5], residual [0.5, -1, 0.5], sum of squares 1.5 over 2 * 3
    total, parts = relative_depth_loss(pred, target, mask, data_loss="ssi_lsq", alpha=0.0)
    assert float(parts["data"]) == pytest.approx(0.25, rel=1e-6) and float(total) == pytest.approx(0.25, rel=1e-6)
    assert float(masked_mse(pred, target, mask)) == pytest.approx(1.0 / 3.0, rel=1e-6)


def test_gradient_term_at_four_strided_scales_hand_case():
    # residual = column index on 16x16: at step s = 2^k the grid is n = 16 / s wide, every x-step is s, no y-step;
    # term_k = s * n * (n - 1) / n^2 -> 15/16 + 1.75 + 3 + 4 = 9.6875 (strided, not pooled)
    pred = jnp.tile(jnp.arange(16, dtype=jnp.float32), (1, 16, 1))
    target, mask = jnp.zeros_like(pred), jnp.ones_like(pred)
    assert float(multiscale_gradient_loss(pred, target, mask, scales=4)) == pytest.approx(9.6875, rel=1e-6)
    assert float(multiscale_gradient_loss(pred, target, mask, scales=1)) == pytest.approx(0.9375, rel=1e-6)
    assert float(multiscale_gradient_loss(pred, target, mask, scales=3)) == pytest.approx(5.6875, rel=1e-6)
    # a masked pixel breaks both its x pairs and its own count, and R is masked before differencing
    holed = mask.at[0, 0, 1].set(0.0)
    one = float(multiscale_gradient_loss(pred, target, holed, scales=1))
    assert one == pytest.approx((15 * 16 - 2) / 255.0, rel=1e-6)


def _random_case(seed: int, with_holes: bool):
    rng = np.random.default_rng(seed)
    target = rng.uniform(0.1, 2.0, (3, 16, 20)).astype(np.float32)
    pred = (target + rng.normal(0, 0.3, target.shape)).astype(np.float32)
    mask = rng.uniform(size=target.shape) > (0.3 if with_holes else -1.0)
    return jnp.asarray(pred), jnp.asarray(target), jnp.asarray(mask)


@pytest.mark.parametrize("data_loss,median,holes", [
    ("ssitrim", "valid", True), ("ssitrim", "masked_zeros", False), ("ssi_lsq", "valid", True)])
def test_invariant_to_positive_scale_and_shift(data_loss, median, holes):
    pred, target, mask = _random_case(0, holes)
    base, _ = _loss(pred, target, mask, data_loss=data_loss, median=median)
    assert float(base) > 0.05
    for a, b in ((3.0, -1.5), (0.2, 7.0)):
        moved, _ = _loss(a * pred + b, target, mask, data_loss=data_loss, median=median)
        assert float(moved) == pytest.approx(float(base), rel=2e-4, abs=1e-5)


def test_reference_median_is_not_shift_invariant_with_invalid_pixels():
    # why the "valid" variant exists: the reference's masked zeros take part in the median but do not shift, so
    # once half an image is invalid its median is 0 whatever the shift
    pred, target, _ = _random_case(1, True)
    mask = jnp.asarray(np.random.default_rng(3).uniform(size=pred.shape) > 0.6)
    base, _ = _loss(pred, target, mask, median="masked_zeros")
    moved, _ = _loss(pred + 5.0, target, mask, median="masked_zeros")
    assert abs(float(moved) - float(base)) > 1e-3


def test_total_is_data_plus_half_gradient_and_jits_with_finite_gradients():
    pred, target, mask = _random_case(2, True)
    total, parts = _loss(pred, target, mask)
    assert float(total) == pytest.approx(float(parts["data"]) + 0.5 * float(parts["gradient"]), rel=1e-6)
    grads = jax.jit(jax.grad(lambda p: relative_depth_loss(p, target, mask)[0]))(pred)
    assert bool(jnp.all(jnp.isfinite(grads))) and float(jnp.abs(grads).sum()) > 0
    with pytest.raises(ValueError, match="data_loss must be"):
        relative_depth_loss(pred, target, mask, data_loss="l1")
