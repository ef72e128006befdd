"""The relative evaluation protocol: least-squares scale and shift in disparity space, then AbsRel and delta1."""

import jax.numpy as jnp
import numpy as np
import pytest

from zoejax.evaluation.relative_metrics import align_disparity, relative_metrics


def _scene(seed: int = 0):
    rng = np.random.default_rng(seed)
    depth = rng.uniform(1.0, 8.0, (2, 8, 12)).astype(np.float32)
    mask = rng.uniform(size=depth.shape) > 0.2
    return jnp.asarray(depth), jnp.asarray(mask)


def test_any_positive_affine_disparity_scores_perfectly():
    depth, mask = _scene()
    for a, b in ((3.0, 0.5), (0.01, 2.0)):
        out = relative_metrics(a / depth + b, depth, mask, max_depth=10.0)
        assert float(out["abs_rel"]) < 1e-4 and float(out["delta1"]) == 1.0
    # invalid pixels take no part: garbage there changes nothing
    noisy = jnp.where(mask, 2.0 / depth, 1e4)
    assert float(relative_metrics(noisy, depth, mask, 10.0)["abs_rel"]) < 1e-4


def test_hand_case_and_depth_space_is_not_enough():
    # gt depth [1, 2, 4] -> disparity [1, .5, .25]; a prediction affine in *depth* (p = depth) is not affine in
    # disparity: the fit of [1, 2, 4] to [1, .5, .25] is s = -13/56, t = 9/8 -> [50/56, 37/56, 11/56]
    gt = jnp.asarray([[[1.0, 2.0, 4.0]]])
    mask = jnp.ones_like(gt, dtype=bool)
    got = np.asarray(align_disparity(gt, gt, mask, max_depth=10.0)).ravel()
    np.testing.assert_allclose(got, np.array([56 / 50, 56 / 37, 56 / 11]), rtol=1e-5)
    out = relative_metrics(gt, gt, mask, max_depth=10.0)
    want = np.mean(np.abs(got - [1, 2, 4]) / [1, 2, 4])
    assert float(out["abs_rel"]) == pytest.approx(want, rel=1e-5)
    assert float(out["delta1"]) == pytest.approx(1 / 3)  # ratios 1.12, 1.32, 1.27: only the first is < 1.25


def test_aligned_disparity_is_clamped_to_the_range():
    gt = jnp.asarray([[[1.0, 2.0, 4.0, 8.0]]])
    mask = jnp.ones_like(gt, dtype=bool)
    pred = jnp.asarray([[[1.0, 0.5, 0.0, -1.0]]])  # the fit goes negative at the far end
    depth = np.asarray(align_disparity(pred, gt, mask, max_depth=10.0))
    assert np.all(depth > 0) and np.all(depth <= 10.0 + 1e-5)
