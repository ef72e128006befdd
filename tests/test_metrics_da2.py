"""Depth Anything V2's metric validation rules (``protocols.SCORING["da2"]``), by hand: its SILog form, the closed
depth range, unclamped predictions and the 10-pixel skip, against ZoeDepth's rules on the same arrays."""

import numpy as np
import pytest

from zoejax.evaluation.evaluator import Evaluator
from zoejax.evaluation.metrics import compute_errors, compute_metrics
from zoejax.evaluation.protocols import PROTOCOLS, describe
from zoejax.models.depth_anything import DepthAnything
from zoejax.models.depth_anything_config import PRESETS

DA2 = {"silog": "da2", "inclusive": True, "clamp": False, "min_valid": 10}


def test_silog_forms_by_hand():
    # d = log gt - log pred = (0, L, L), L = log 2: mean(d^2) = 2L^2/3, mean(d) = 2L/3.
    gt, pred, lg = np.array([1.0, 2.0, 4.0]), np.array([1.0, 1.0, 2.0]), np.log(2.0)
    assert compute_errors(gt, pred, "da2")["silog"] == pytest.approx(2 * lg / 3, rel=1e-12)  # sqrt(2/3 - 2/9) L
    assert compute_errors(gt, pred)["silog"] == pytest.approx(100 * np.sqrt(2) * lg / 3, rel=1e-12)  # 100 sqrt(var)
    with pytest.raises(ValueError, match="silog must be one of zoedepth, da2"):
        compute_errors(gt, pred, "x10")


def _frame():
    """2x5 gt of 4 m with one pixel at exactly max_depth (20 m) predicted 30 m; the rest predicted exactly."""
    gt = np.full((2, 5), 4.0, np.float32)
    pred = gt.copy()
    gt[0, 0], pred[0, 0] = 20.0, 30.0
    return gt, pred


def test_closed_range_and_unclamped_prediction():
    gt, pred = _frame()
    da2 = compute_metrics(gt, pred, 1e-3, 20.0, None, **DA2)
    assert da2["abs_rel"] == pytest.approx(0.5 / 10)  # |20 - 30| / 20 on one pixel of ten
    assert da2["a1"] == pytest.approx(0.9)  # 30 / 20 = 1.5 > 1.25
    clamped = compute_metrics(gt, pred, 1e-3, 20.0, None, **{**DA2, "clamp": True})
    assert clamped["abs_rel"] == 0.0 and clamped["a1"] == 1.0  # 30 clamped to 20
    zoe = compute_metrics(gt, pred, 1e-3, 20.0, None)  # 20 m is outside (0.001, 20): nine exact pixels
    assert zoe["abs_rel"] == 0.0 and zoe["rmse"] == 0.0


def test_images_with_fewer_than_ten_valid_pixels_are_skipped():
    gt, pred = _frame()
    gt[1, 4] = 0.0  # invalid: nine valid pixels left
    assert compute_metrics(gt, pred, 1e-3, 20.0, None, **DA2) is None
    assert compute_metrics(gt, pred, 1e-3, 20.0, None) is not None  # ZoeDepth scores any valid pixel


def test_hypersim_da2_protocol_scores_by_the_da2_rules():
    p = PROTOCOLS["hypersim_da2"]
    assert (p.crop, p.min_depth, p.max_depth, p.flip_tta) == (None, 1e-3, 20.0, False)
    assert (p.silog, p.inclusive_range, p.clamp_predictions, p.min_valid_pixels) == ("da2", True, False, 10)
    assert dict(p.layout)["list_file"] == "hypersim/val.txt"
    assert PROTOCOLS["hypersim"].silog == "zoedepth" and PROTOCOLS["hypersim"].clamp_predictions
    gt, pred = _frame()
    evaluator = Evaluator(DepthAnything(PRESETS["da_tiny_metric"]), mesh=None)  # score() needs no device
    assert evaluator.score(gt, pred, p, np.ones_like(gt, bool)) == compute_metrics(gt, pred, 1e-3, 20.0, None, **DA2)
    assert "hypersim_da2" in describe() and " da2 " in describe()
