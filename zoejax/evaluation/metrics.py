"""Depth metrics exactly as the official ``compute_metrics`` / ``compute_errors`` (training spec section 5).

Per image: the prediction is resized to the ground truth's size (bilinear, align_corners=True) if needed,
clamped to [min_depth_eval, max_depth_eval] in the official order (the range clamp first, so -inf -> min and
+inf -> max; NaN -> min), and scored on the pixels with min < gt < max (strict) inside the crop. The δ ratios
are float32, as the official code computes them on float32 arrays (a float64 ratio moves pixels across a
threshold); the other metrics are accumulated in float64. Datasets average the per-image values
(``MetricAverager``).

Depth Anything V2's metric validation (``silog="da2"``, ``inclusive=True``, ``clamp=False``, ``min_valid=10``)
differs in four places: SILog is sqrt(mean(d^2) - 0.5 mean(d)^2) for d = log gt - log pred (its training loss,
not x100), ground truth is valid on the closed range [min, max], predictions are scored as predicted, and an image
with fewer than 10 valid pixels is skipped.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from zoejax.ops.resize import resize_bilinear


class Metric(NamedTuple):
    """One official metric: its key in results, its column title in the paper's tables, and its direction."""

    name: str
    column: str
    higher_is_better: bool


# The one table of metrics, in the paper's column order (δ1 δ2 δ3 REL RMSE log10, then the other official ones).
METRIC_TABLE: tuple[Metric, ...] = (
    Metric("a1", "d1", True), Metric("a2", "d2", True), Metric("a3", "d3", True),
    Metric("abs_rel", "REL", False), Metric("rmse", "RMSE", False), Metric("log_10", "log10", False),
    Metric("rmse_log", "RMSElog", False), Metric("silog", "SILog", False), Metric("sq_rel", "SqRel", False),
)
METRICS = tuple(m.name for m in METRIC_TABLE)


def eigen_crop_mask(shape: tuple[int, int]) -> np.ndarray:
    """The fixed NYU Eigen box rows 45..470, columns 41..600, whatever the size."""
    mask = np.zeros(shape, bool)
    mask[45:471, 41:601] = True
    return mask


def garg_crop_mask(shape: tuple[int, int]) -> np.ndarray:
    """Garg crop as fractions of the ground truth's size (KITTI-style; scales with the resolution)."""
    h, w = shape
    mask = np.zeros(shape, bool)
    mask[int(0.40810811 * h):int(0.99189189 * h), int(0.03594771 * w):int(0.96405229 * w)] = True
    return mask


SILOG_FORMS = ("zoedepth", "da2")


def _silog(err: np.ndarray, form: str) -> float:
    """ZoeDepth's 100 sqrt(var(d)) or Depth Anything V2's sqrt(mean(d^2) - 0.5 mean(d)^2), d the log error."""
    if form == "zoedepth":
        return float(100.0 * np.sqrt(max(np.mean(err**2) - np.mean(err) ** 2, 0.0)))
    if form == "da2":
        return float(np.sqrt(max(np.mean(err**2) - 0.5 * np.mean(err) ** 2, 0.0)))
    raise ValueError(f"silog must be one of {', '.join(SILOG_FORMS)}, got {form!r}")


def compute_errors(gt: np.ndarray, pred: np.ndarray, silog: str = "zoedepth") -> dict[str, float]:
    """The nine metrics over matching 1-D arrays of valid ground truth and prediction, in metres; ``silog``
    picks the SILog form (``SILOG_FORMS``)."""
    gt32, pred32 = np.asarray(gt, np.float32), np.asarray(pred, np.float32)
    thresh = np.maximum(gt32 / pred32, pred32 / gt32)  # float32 as official: it decides a pixel's side of 1.25
    gt = np.asarray(gt, np.float64)
    pred = np.asarray(pred, np.float64)
    err = np.log(pred) - np.log(gt)
    return {
        "a1": float(np.mean(thresh < 1.25)), "a2": float(np.mean(thresh < 1.25**2)),
        "a3": float(np.mean(thresh < 1.25**3)),
        "abs_rel": float(np.mean(np.abs(gt - pred) / gt)),
        "rmse": float(np.sqrt(np.mean((gt - pred) ** 2))),
        "log_10": float(np.mean(np.abs(np.log10(gt) - np.log10(pred)))),
        "rmse_log": float(np.sqrt(np.mean(err**2))),
        "silog": _silog(err, silog),
        "sq_rel": float(np.mean((gt - pred) ** 2 / gt)),
    }


def compute_metrics(gt: np.ndarray, pred: np.ndarray, min_depth: float = 1e-3, max_depth: float = 10.0,
                    crop: str | None = "eigen", valid: np.ndarray | None = None, *, silog: str = "zoedepth",
                    inclusive: bool = False, clamp: bool = True, min_valid: int = 1) -> dict[str, float] | None:
    """Metrics of one (H, W) ground truth against a prediction of any size; None when fewer than ``min_valid``
    pixels are valid.

    ``crop``: "eigen" (NYU protocol), "garg" (KITTI protocol) or None. ``valid``: the dataset's own (H, W)
    validity mask (e.g. iBims' invalid/transparent masks), intersected with the depth-range mask. ``inclusive``:
    gt valid on [min, max] instead of (min, max); ``clamp`` False scores the prediction unclamped; ``silog`` as
    ``compute_errors``.
    """
    gt = np.asarray(gt, np.float32)
    pred = np.asarray(pred, np.float32)
    if pred.shape != gt.shape:
        pred = np.asarray(resize_bilinear(pred[None, ..., None], gt.shape, align_corners=True))[0, ..., 0]
    if clamp:  # the official order: range clamp (so -inf -> min, +inf -> max), then inf -> max, then NaN -> min.
        pred = np.clip(pred, np.float32(min_depth), np.float32(max_depth))
        pred = np.where(np.isinf(pred), np.float32(max_depth), pred)
        pred = np.where(np.isnan(pred), np.float32(min_depth), pred).astype(np.float32)
    in_range = ((gt >= min_depth) & (gt <= max_depth)) if inclusive else ((gt > min_depth) & (gt < max_depth))
    valid = in_range if valid is None else in_range & np.asarray(valid, bool)
    if crop == "eigen":
        valid &= eigen_crop_mask(gt.shape)
    elif crop == "garg":
        valid &= garg_crop_mask(gt.shape)
    elif crop is not None:
        raise ValueError(f"crop must be 'eigen', 'garg' or None, got {crop!r}")
    if np.count_nonzero(valid) < max(min_valid, 1):
        return None
    return compute_errors(gt[valid], pred[valid], silog)


class MetricAverager:
    """Running arithmetic mean of per-image metrics (images without valid pixels are counted, not averaged)."""

    def __init__(self):
        self.sums = dict.fromkeys(METRICS, 0.0)
        self.count = 0
        self.skipped = 0

    def update(self, metrics: dict[str, float] | None) -> None:
        if metrics is None:
            self.skipped += 1
            return
        for k in METRICS:
            self.sums[k] += metrics[k]
        self.count += 1

    def result(self) -> dict[str, float]:
        """The mean of each metric over the images with valid pixels ({} when there were none)."""
        return {k: v / self.count for k, v in self.sums.items()} if self.count else {}
