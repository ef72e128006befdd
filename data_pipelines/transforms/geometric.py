"""Geometric transforms applied jointly to ``image`` (H, W, 3), ``depth`` (H, W) metres and ``valid`` (H, W).

All are grain transforms on raw-example dicts (see sources/base.py); random ones draw from the generator
grain passes in, which is seeded by (pipeline seed, element index), so results do not depend on worker
count or on resuming. Pixels a transform invents (rotation corners, padding) are marked invalid.
"""

from __future__ import annotations

import dataclasses

import grain
import numpy as np
from PIL import Image

from data_pipelines.errors import BadDepthError
from data_pipelines.sources.base import Example

KB_CROP_SIZE = (352, 1216)


def _with(example: Example, image: np.ndarray, depth: np.ndarray, valid: np.ndarray) -> Example:
    out = dict(example)
    out.update(image=image, depth=depth, valid=valid)
    return out


def kb_crop_box(height: int, width: int) -> tuple[int, int]:
    """(top, left) of the KITTI benchmark crop: the bottom 352 rows, 1216 centred columns (truncated)."""
    return height - KB_CROP_SIZE[0], int((width - KB_CROP_SIZE[1]) / 2)


@dataclasses.dataclass(frozen=True)
class KBCrop(grain.transforms.Map):
    """KITTI benchmark crop to 352 x 1216 (training and evaluation, before any augmentation)."""

    def map(self, element: Example) -> Example:
        h, w = element["image"].shape[:2]
        if h < KB_CROP_SIZE[0] or w < KB_CROP_SIZE[1]:
            raise BadDepthError(f"image of {h}x{w} is smaller than the KB crop {KB_CROP_SIZE}")
        top, left = kb_crop_box(h, w)
        rows, cols = slice(top, top + KB_CROP_SIZE[0]), slice(left, left + KB_CROP_SIZE[1])
        return _with(element, element["image"][rows, cols], element["depth"][rows, cols],
                     element["valid"][rows, cols])


@dataclasses.dataclass(frozen=True)
class CenterCropOrPad(grain.transforms.Map):
    """Centre-crops or zero-pads every example to ``size`` = (H, W); padding is invalid.

    Gives datasets with frames of varying size (SUN RGB-D, custom data) one shape, so batches stack and
    the train step compiles once.
    """

    size: tuple[int, int]

    def map(self, element: Example) -> Example:
        out_h, out_w = self.size
        h, w = element["image"].shape[:2]
        src_r, src_c = max((h - out_h) // 2, 0), max((w - out_w) // 2, 0)
        dst_r, dst_c = max((out_h - h) // 2, 0), max((out_w - w) // 2, 0)
        ch, cw = min(h, out_h), min(w, out_w)
        image = np.zeros((out_h, out_w, 3), element["image"].dtype)
        depth = np.zeros((out_h, out_w), np.float32)
        valid = np.zeros((out_h, out_w), bool)
        src = (slice(src_r, src_r + ch), slice(src_c, src_c + cw))
        dst = (slice(dst_r, dst_r + ch), slice(dst_c, dst_c + cw))
        image[dst] = element["image"][src]
        depth[dst] = element["depth"][src]
        valid[dst] = element["valid"][src]
        return _with(element, image, depth, valid)


@dataclasses.dataclass(frozen=True)
class RandomRotate(grain.transforms.RandomMap):
    """Rotation by U(-degrees, degrees) about the image centre on the same canvas (official: +-1 degree,
    every sample). Image bilinear, depth and mask nearest; the corners are filled with 0 / invalid."""

    degrees: float = 1.0

    def random_map(self, element: Example, rng: np.random.Generator) -> Example:
        angle = (rng.random() - 0.5) * 2.0 * self.degrees
        if self.degrees == 0 or angle == 0:
            return element
        image = Image.fromarray(element["image"]).rotate(angle, resample=Image.Resampling.BILINEAR)
        depth = Image.fromarray(np.ascontiguousarray(element["depth"], dtype=np.float32))  # mode F
        depth = np.asarray(depth.rotate(angle, resample=Image.Resampling.NEAREST))
        valid = element["valid"]
        if np.array_equal(valid, element["depth"] > 0):
            # The usual case (sources zero invalid depth): nearest sampling moves the 0s with the mask, and
            # the 0-filled corners are invalid, so one rotation serves both.
            valid = depth > 0
        else:
            mask = Image.fromarray(valid.astype(np.uint8) * np.uint8(255))
            valid = np.asarray(mask.rotate(angle, resample=Image.Resampling.NEAREST)) > 0
        return _with(element, np.asarray(image), depth, valid)


@dataclasses.dataclass(frozen=True)
class RandomCrop(grain.transforms.RandomMap):
    """A random ``size`` = (h, w) window of image, depth and mask (off in the released recipe)."""

    size: tuple[int, int]

    def random_map(self, element: Example, rng: np.random.Generator) -> Example:
        h, w = element["image"].shape[:2]
        ch, cw = self.size
        if ch > h or cw > w:
            raise BadDepthError(f"random crop {ch}x{cw} is larger than the {h}x{w} example")
        top, left = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
        rows, cols = slice(top, top + ch), slice(left, left + cw)
        return _with(element, element["image"][rows, cols], element["depth"][rows, cols],
                     element["valid"][rows, cols])


@dataclasses.dataclass(frozen=True)
class RandomHorizontalFlip(grain.transforms.RandomMap):
    """Mirrors image, depth and mask left-right with probability ``prob`` (official 0.5)."""

    prob: float = 0.5

    def random_map(self, element: Example, rng: np.random.Generator) -> Example:
        if not rng.random() < self.prob:
            return element
        return _with(element, element["image"][:, ::-1], element["depth"][:, ::-1], element["valid"][:, ::-1])
