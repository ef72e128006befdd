"""The batch format: the contract between the input pipelines and the model/training code.

Every pipeline yields dicts of numpy arrays with a leading per-host batch dimension B:

=========  ===============  ======================================================================
key        dtype, shape     meaning
=========  ===============  ======================================================================
image      float32 (B,H,W,3) RGB in [0, 1], resized to the model input (H, W) (e.g. 384x512) with
                             bilinear align_corners=True; NOT normalised (the model does x -> 2x - 1).
depth      float32 (B,h,w)   ground truth in metres at the dataset's native (cropped) size; 0 where
                             not valid.
valid      bool (B,h,w)      min_depth < depth < max_depth (strict), measured, and not padded/filled
                             (rotation corners, crop padding).
domain     int32 (B,)        0 = indoor / NYU head, 1 = outdoor / KITTI head.
focal      float32 (B,)      focal length in pixels at native resolution, 0 if unknown.
disparity  bool (B,)         ``depth`` holds disparity (inverse depth up to scale and shift, no unit)
                             instead of metres: custom rows of kind disparity; False everywhere else.
=========  ===============  ======================================================================

Shapes are fixed per source, so a train step compiles once per source (twice for the NK mix: NYU batches
are 480x640, KITTI batches 352x1216, and every batch comes from a single source). An example whose
``valid`` mask is all False carries no ground truth (evaluation padding, KITTI rows without depth):
evaluators must skip it, as the official evaluation skips ``has_valid_depth=False`` rows.

The pipelines' tests check every batch they build against this contract (``tests/data/batch_contract.py``).
"""

from __future__ import annotations

from typing import TypedDict

import numpy as np

BATCH_KEYS = ("image", "depth", "valid", "domain", "focal", "disparity")


class Batch(TypedDict):
    image: np.ndarray  # float32 (B, H, W, 3), [0, 1]
    depth: np.ndarray  # float32 (B, h, w), metres
    valid: np.ndarray  # bool (B, h, w)
    domain: np.ndarray  # int32 (B,)
    focal: np.ndarray  # float32 (B,), pixels
    disparity: np.ndarray  # bool (B,)
