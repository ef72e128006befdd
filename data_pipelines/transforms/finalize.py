"""The last two steps of every pipeline: resize the image to the model input, then build the batch fields."""

from __future__ import annotations

import dataclasses

import grain
import numpy as np

from data_pipelines.resize import resize_bilinear
from data_pipelines.sources.base import Example


def to_unit_float(image: np.ndarray) -> np.ndarray:
    """uint8 0..255 -> float32 [0, 1]; float input is assumed to be in [0, 1] already."""
    if image.dtype == np.uint8:
        return image.astype(np.float32) * np.float32(1.0 / 255.0)
    return image.astype(np.float32, copy=False)


@dataclasses.dataclass(frozen=True)
class ResizeImage(grain.transforms.Map):
    """Bilinear resize of the image only to ``size`` = (H, W); output float32 [0, 1].

    ``align_corners=True`` reproduces the model-side resize of the official PrepForMidas; False reproduces
    the torchvision pre-resize of some evaluation loaders. Depth and mask keep their native size.
    """

    size: tuple[int, int]
    align_corners: bool = True

    def map(self, element: Example) -> Example:
        image = element["image"]
        out = dict(element)
        scale = 1.0 / 255.0 if image.dtype == np.uint8 else 1.0
        if tuple(image.shape[:2]) == tuple(self.size):
            out["image"] = to_unit_float(image)
        else:
            out["image"] = resize_bilinear(image, self.size, align_corners=self.align_corners, scale=scale)
        return out


@dataclasses.dataclass(frozen=True)
class Finalize(grain.transforms.Map):
    """Raw example -> the batch-format fields (data_pipelines/batch.py) of one example.

    valid = dataset validity & min_depth < depth < max_depth (strict); depth is 0 wherever not valid. An example
    whose ``depth`` holds disparity (``disparity`` True: a custom row of kind disparity) keeps the dataset's
    validity only: a range in metres does not apply to it.
    """

    min_depth: float
    max_depth: float

    def map(self, element: Example) -> dict[str, np.ndarray]:
        depth = np.asarray(element["depth"], np.float32)
        disparity = bool(element.get("disparity", False))
        valid = np.asarray(element["valid"], bool)
        if not disparity:
            valid = valid & (depth > self.min_depth) & (depth < self.max_depth)
        return {
            "image": np.ascontiguousarray(to_unit_float(element["image"])),
            "depth": np.where(valid, depth, np.float32(0.0)),
            "valid": np.ascontiguousarray(valid),
            "domain": np.int32(element["domain"]),
            "focal": np.float32(element["focal"]),
            "disparity": np.bool_(disparity),
        }
