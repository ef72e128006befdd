"""Depth metrics against hand-computed values."""

import numpy as np
import pytest

from zoejax.evaluation.metrics import MetricAverager, compute_errors, compute_metrics, eigen_crop_mask, garg_crop_mask


def test_errors_hand_computed():
    gt = np.array([1.0, 2.0, 4.0])
    pred = np.array([1.0, 2.5, 2.0])
    m = compute_errors(gt, pred)
    # ratios max(g/p, p/g): 1, 1.25, 2 -> strictly below 1.25: one of three; below 1.5625: two; below 1.953: two
    assert m["a1"] == pytest.approx(1 / 3) and m["a2"] == pytest.approx(2 / 3) and m["a3"] == pytest.approx(2 / 3)
    assert m["abs_rel"] == pytest.approx((0 + 0.25 + 0.5) / 3)
    assert m["sq_rel"] == pytest.approx((0 + 0.25 / 2 + 4 / 4) / 3)
    assert m["rmse"] == pytest.approx(np.sqrt((0 + 0.25 + 4) / 3))
    e = np.log([1.0, 1.25, 0.5])
    assert m["rmse_log"] == pytest.approx(np.sqrt(np.mean(e**2)))
    assert m["silog"] == pytest.approx(100 * np.std(e))  # population moments
    assert m["log_10"] == pytest.approx(np.mean(np.abs(np.log10([1, 1.25, 0.5]))))


def test_clamp_mask_and_crops():
    gt = np.full((480, 640), 2.0, np.float32)
    gt[0, 0] = 0.0  # invalid
    pred = np.full((480, 640), 2.0, np.float32)
    pred[100, 100] = np.inf  # -> max_depth 10
    m = compute_metrics(gt, pred, max_depth=10.0, crop="eigen")
    n = eigen_crop_mask(gt.shape).sum()
    assert m["abs_rel"] == pytest.approx(4.0 / n)
    assert garg_crop_mask((352, 1216))[143:349, 43:1172].all() and garg_crop_mask((352, 1216)).sum() == 206 * 1129
    assert compute_metrics(np.zeros((480, 640)), pred) is None  # empty mask


def test_prediction_resized_to_ground_truth():
    gt = np.full((8, 8), 3.0, np.float32)
    m = compute_metrics(gt, np.full((4, 4), 3.0, np.float32), crop=None)
    assert m["abs_rel"] == pytest.approx(0.0, abs=1e-7)


def test_averager_means_per_image():
    avg = MetricAverager()
    avg.update(compute_errors(np.array([1.0]), np.array([2.0])))
    avg.update(compute_errors(np.array([1.0, 1.0, 1.0]), np.array([1.0, 1.0, 1.0])))
    avg.update(None)
    assert avg.result()["abs_rel"] == pytest.approx(0.5) and avg.skipped == 1


def test_garg_crop_scales_with_resolution_and_dataset_masks_intersect():
    # At half the KITTI size the crop keeps the same fractions: rows int(0.408 h)..int(0.992 h).
    mask = garg_crop_mask((176, 608))
    rows, cols = np.nonzero(mask)
    assert (rows.min(), rows.max() + 1, cols.min(), cols.max() + 1) == (71, 174, 21, 586)
    gt = np.full((176, 608), 5.0, np.float32)
    pred = np.full((176, 608), 4.5, np.float32)
    pred[100, 300] = np.nan  # NaN -> min_depth: a huge error on one pixel
    own_valid = np.ones_like(gt, bool)
    own_valid[100, 300] = False  # the dataset's own mask removes it again
    m = compute_metrics(gt, pred, 1e-3, 80.0, "garg", valid=own_valid)
    assert m["abs_rel"] == pytest.approx(0.1) and m["a1"] == 1.0
    m = compute_metrics(gt, pred, 1e-3, 80.0, "garg")
    n = mask.sum()
    assert m["abs_rel"] == pytest.approx(((n - 1) * 0.1 + (5 - 1e-3) / 5) / n)
