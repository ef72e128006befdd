"""Training losses against the official formulas written with torch."""

import jax
import jax.numpy as jnp
import numpy as np
import torch
import torch.nn.functional as F

from zoejax.training.losses import domain_loss, gradient_matching_loss, silog_loss


def torch_silog(pred, gt, mask):
    """The official SILog: resize when widths differ, pooled masked selection, unbiased variance."""
    pred, gt, mask = torch.from_numpy(pred)[:, None], torch.from_numpy(gt)[:, None], torch.from_numpy(mask)[:, None]
    if pred.shape[-1] != gt.shape[-1]:
        pred = F.interpolate(pred, gt.shape[-2:], mode="bilinear", align_corners=True)
    g = torch.log(pred[mask] + 1e-7) - torch.log(gt[mask] + 1e-7)
    return float(10 * torch.sqrt(torch.var(g) + 0.15 * torch.pow(torch.mean(g), 2)))


def test_silog_matches_official(rng):
    pred = rng.uniform(0.5, 10, (3, 24, 32)).astype(np.float32)
    gt = rng.uniform(0.5, 10, (3, 48, 64)).astype(np.float32)
    mask = rng.random((3, 48, 64)) > 0.4
    loss, n = silog_loss(pred, gt, mask)
    assert int(n) == mask.sum()
    np.testing.assert_allclose(float(loss), torch_silog(pred, gt, mask), rtol=1e-5)


def test_silog_is_scale_invariant_in_variance_only(rng):
    gt = rng.uniform(1, 5, (1, 8, 8)).astype(np.float32)
    mask = np.ones_like(gt, bool)
    exact, _ = silog_loss(gt, gt, mask)
    scaled, _ = silog_loss(2 * gt, gt, mask)
    assert float(exact) < 1e-5
    np.testing.assert_allclose(float(scaled), 10 * np.sqrt(0.15) * np.log(2), rtol=1e-4)


def test_silog_empty_mask_and_finite_gradients(rng):
    pred = rng.uniform(1, 5, (2, 8, 8)).astype(np.float32)
    gt = np.zeros((2, 8, 8), np.float32)  # all invalid: log(0) must not leak into the loss or gradient
    loss, n = silog_loss(pred, gt, gt > 0)
    assert float(loss) == 0.0 and int(n) == 0
    gt[0, :4] = 3.0
    grad = jax.grad(lambda p: silog_loss(p, gt, gt > 0)[0])(jnp.asarray(pred))
    assert np.all(np.isfinite(np.asarray(grad)))
    assert np.all(np.asarray(grad)[1] == 0) and np.any(np.asarray(grad)[0] != 0)


def test_domain_loss_matches_torch(rng):
    logits = rng.normal(size=(4, 2)).astype(np.float32)
    labels = np.array([1, 1, 1, 1])
    ref = float(F.cross_entropy(torch.from_numpy(logits), torch.from_numpy(labels)))
    np.testing.assert_allclose(float(domain_loss(logits, labels)), ref, rtol=1e-6)


def test_gradient_matching_zero_for_offset_and_positive_otherwise(rng):
    gt = rng.uniform(1, 5, (1, 6, 6)).astype(np.float32)
    mask = np.ones_like(gt, bool)
    assert float(gradient_matching_loss(gt + 1.0, gt, mask)) < 1e-6  # a constant offset has equal gradients
    assert float(gradient_matching_loss(gt * 2.0, gt, mask)) > 0.1
