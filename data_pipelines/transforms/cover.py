"""Depth Anything V2's training geometry: resize the frame, keeping its aspect, to cover the network input with
sides at multiples of the patch size, then take a random window of the input size from it.

The official metric training (DepthAnything/Depth-Anything-V2@a561b84, metric_depth/dataset/transform.py ``Resize``
with ``keep_aspect_ratio=True, ensure_multiple_of=14, resize_method="lower_bound"`` and ``Crop``) resizes image,
depth and mask together (image bicubic, depth and mask nearest) and crops all three, so unlike the ZoeDepth recipe
the ground truth reaches the loss at the network size. A 768x1024 Hypersim frame becomes 518x686 and a 375x1242
Virtual KITTI 2 frame 518x1722 before the 518x518 crop. Only the cropped window is computed.
"""

from __future__ import annotations

import dataclasses

import grain
import numpy as np

from data_pipelines.resize import resize_bicubic, resize_nearest
from data_pipelines.sources.base import Example


def _to_multiple(x: float, multiple: int, at_least: int) -> int:
    """``x`` rounded to a multiple (numpy's round: halves to even), or rounded up when that falls below
    ``at_least`` (the official ``constrain_to_multiple_of`` with ``min_val``)."""
    y = int(np.round(x / multiple) * multiple)
    if y < at_least:
        y = int(np.ceil(x / multiple) * multiple)
    while y < at_least:  # only when ``at_least`` itself is not a multiple and x is a rounding error below it
        y += multiple
    return y


def cover_size(height: int, width: int, target: tuple[int, int], multiple: int) -> tuple[int, int]:
    """(h, w) of a ``height`` x ``width`` frame resized by one factor so that both sides are at least ``target``
    = (H, W), each side then taken to a multiple of ``multiple`` (so the aspect is kept up to that rounding)."""
    scale = max(target[0] / height, target[1] / width)
    return (_to_multiple(scale * height, multiple, target[0]), _to_multiple(scale * width, multiple, target[1]))


@dataclasses.dataclass(frozen=True)
class CoverResizeCrop(grain.transforms.RandomMap):
    """Keep-aspect resize covering ``size`` = (H, W) (image bicubic, depth and mask nearest; sides multiples of
    ``multiple``), then a uniformly placed (H, W) window of all three.

    Output: image float32 (H, W, 3) in [0, 1] up to the bicubic kernel's overshoot (not clipped, as the official
    float image is not), depth float32 (H, W) metres, valid bool (H, W).
    """

    size: tuple[int, int]
    multiple: int = 14

    def random_map(self, element: Example, rng: np.random.Generator) -> Example:
        image = element["image"]
        h, w = image.shape[:2]
        full = cover_size(h, w, self.size, self.multiple)
        top = int(rng.integers(0, full[0] - self.size[0] + 1))
        left = int(rng.integers(0, full[1] - self.size[1] + 1))
        window = {"rows": (top, self.size[0]), "cols": (left, self.size[1])}
        out = dict(element)
        scale = 1.0 / 255.0 if image.dtype == np.uint8 else 1.0
        out["image"] = resize_bicubic(image, full, scale=scale, **window)
        out["depth"] = resize_nearest(np.asarray(element["depth"], np.float32), full, **window)
        out["valid"] = resize_nearest(np.asarray(element["valid"], bool), full, **window)
        return out
