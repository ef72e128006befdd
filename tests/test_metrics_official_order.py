"""The metrics against an independent numpy transcription of the official ``compute_metrics`` /
``compute_errors`` (isl-org/ZoeDepth zoedepth/utils/misc.py 159-245, as described in
shared/reference/zoedepth-training-eval.md 5.1): its in-place clamp order on float32 arrays, and its float32 δ
ratios."""

import numpy as np
import pytest

from zoejax.evaluation.metrics import compute_metrics


def official_metrics(gt: np.ndarray, pred: np.ndarray, min_depth_eval: float, max_depth_eval: float) -> dict:
    """Statement by statement what the official code does to float32 (H, W) arrays of the same size, Eigen crop."""
    pred = pred.astype(np.float32).copy()
    pred[pred < min_depth_eval] = min_depth_eval
    pred[pred > max_depth_eval] = max_depth_eval
    pred[np.isinf(pred)] = max_depth_eval
    pred[np.isnan(pred)] = min_depth_eval
    gt_depth = gt.astype(np.float32)
    valid_mask = np.logical_and(gt_depth > min_depth_eval, gt_depth < max_depth_eval)
    eval_mask = np.zeros(valid_mask.shape)
    eval_mask[45:471, 41:601] = 1
    valid_mask = np.logical_and(valid_mask, eval_mask)
    gt, pred = gt_depth[valid_mask], pred[valid_mask]
    thresh = np.maximum((gt / pred), (pred / gt))
    err = np.log(pred) - np.log(gt)
    return dict(a1=(thresh < 1.25).mean(), a2=(thresh < 1.25 ** 2).mean(), a3=(thresh < 1.25 ** 3).mean(),
                abs_rel=np.mean(np.abs(gt - pred) / gt), rmse=np.sqrt(((gt - pred) ** 2).mean()),
                log_10=(np.abs(np.log10(gt) - np.log10(pred))).mean(),
                rmse_log=np.sqrt(((np.log(gt) - np.log(pred)) ** 2).mean()),
                silog=np.sqrt(np.mean(err ** 2) - np.mean(err) ** 2) * 100,
                sq_rel=np.mean(((gt - pred) ** 2) / gt))


def _boundary_pairs(rng: np.random.Generator, n: int, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """(gt, pred) float32 pairs whose ratio sits within a few float32 ulps of ``threshold``."""
    pred = rng.uniform(0.5, 6.0, n).astype(np.float32)
    gt = (pred.astype(np.float64) * threshold).astype(np.float32)
    steps = rng.integers(-3, 4, n)
    gt = (gt + steps.astype(np.float32) * np.spacing(gt)).astype(np.float32)
    return gt, pred


def test_matches_the_official_order_of_operations_at_threshold_boundaries_and_non_finite_predictions():
    rng = np.random.default_rng(7)
    gt = rng.uniform(0.5, 9.0, (480, 640)).astype(np.float32)
    pred = (gt * rng.uniform(0.6, 1.6, gt.shape)).astype(np.float32)
    box = (slice(45, 471), slice(41, 601))
    inner_gt, inner_pred = gt[box].reshape(-1), pred[box].reshape(-1)
    offset = 0
    flips = 0
    for threshold in (1.25, 1.25 ** 2, 1.25 ** 3):
        for swap in (False, True):  # ratio gt/pred and pred/gt
            g, p = _boundary_pairs(rng, 4000, threshold)
            if swap:
                g, p = p, g
            flips += int(np.sum((np.maximum(g / p, p / g) < threshold)
                                != (np.maximum(g.astype(np.float64) / p, p.astype(np.float64) / g) < threshold)))
            inner_gt[offset:offset + g.size], inner_pred[offset:offset + g.size] = g, p
            offset += g.size
    assert flips > 20, flips  # the case exists: a float64 ratio puts these pixels on the other side
    inner_pred[offset:offset + 5] = -np.inf  # official: clamped to min_depth first
    inner_pred[offset + 5:offset + 10] = np.inf
    inner_pred[offset + 10:offset + 15] = np.nan
    inner_pred[offset + 15:offset + 20] = -1.0
    inner_pred[offset + 20:offset + 25] = 50.0
    gt[box], pred[box] = inner_gt.reshape(426, 560), inner_pred.reshape(426, 560)
    gt[60, 60] = 0.0  # invalid ground truth
    ours = compute_metrics(gt, pred, 1e-3, 10.0, "eigen")
    official = official_metrics(gt, pred, 1e-3, 10.0)
    for key in ("a1", "a2", "a3"):
        assert ours[key] == float(official[key]), key  # the same pixel count, exactly
    for key, value in official.items():
        assert ours[key] == pytest.approx(float(value), rel=2e-5), key


def test_minus_infinity_is_clamped_to_the_minimum_depth():
    gt = np.full((480, 640), 2.0, np.float32)
    pred = np.full((480, 640), 2.0, np.float32)
    pred[100, 100] = -np.inf
    n = (426 * 560)
    m = compute_metrics(gt, pred, 1e-3, 10.0, "eigen")
    assert m["abs_rel"] == pytest.approx((2.0 - 1e-3) / 2.0 / n)  # max_depth would give 4 / n
    assert m == pytest.approx({k: float(v) for k, v in official_metrics(gt, pred, 1e-3, 10.0).items()}, rel=1e-5)
