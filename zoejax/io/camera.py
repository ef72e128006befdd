"""The training camera of a metric model, and rescaling its depth to another camera's focal length.

A metric depth network learns the focal length of its training camera: an object's apparent size in the image
tells its distance only through that focal length. An image from a camera whose focal length, measured in image
widths, is ``k`` times the training camera's shows everything ``k`` times larger, so the model sees it ``k`` times
nearer: its depth times ``k`` is the depth for the real camera (the pinhole relation, as in Metric3D's canonical
camera). Both cameras' focal lengths are compared per image width because the network resizes every image to its
own input width (aspect kept), which scales a focal length in pixels with it.

Limits: exact only for a pinhole camera with square pixels and the principal point near the centre; lens
distortion, a very different aspect ratio (the network then resizes by the height) or a crop after capture (change
the focal length in image widths: pass the focal length of the image as given) break it. It corrects the scale,
not the model's errors; far outside the training camera's field of view the model is out of its training range.
"""

from __future__ import annotations

import dataclasses
import math


@dataclasses.dataclass(frozen=True)
class TrainingCamera:
    """The camera of a training set: ``focal_px`` at its native image ``width`` in pixels."""

    focal_px: float
    width: int

    @property
    def focal_per_width(self) -> float:
        return self.focal_px / self.width


# The datasets' own calibrations (data_pipelines/sources/bts.py's NYU_FOCAL; KITTI's 2011_09_26 P_rect_02), keyed
# by the metric head's domain name (``ZoeDepthConfig.domain_names``).
TRAINING_CAMERAS = {
    "nyu": TrainingCamera(518.8579, 640),
    "kitti": TrainingCamera(721.5377, 1242),
}


def focal_from_fov(width: int, fov_degrees: float) -> float:
    """The focal length in pixels of an image ``width`` pixels wide spanning ``fov_degrees`` horizontally."""
    if not 0 < fov_degrees < 180:
        raise ValueError(f"field of view must be in (0, 180) degrees, got {fov_degrees}")
    return (width / 2) / math.tan(math.radians(fov_degrees) / 2)


def focal_rescale(domain: str, focal_px: float, width: int) -> float:
    """The factor for the depth of an image ``width`` pixels wide taken with ``focal_px``, predicted by a head
    trained on ``domain``'s camera: (focal_px / width) / (training focal / training width)."""
    if domain not in TRAINING_CAMERAS:
        raise ValueError(f"no training camera is recorded for domain {domain!r} (known: "
                         f"{', '.join(TRAINING_CAMERAS)}); --focal-px / --fov cannot rescale this model's depth")
    if not focal_px > 0:
        raise ValueError(f"focal length must be > 0 pixels, got {focal_px}")
    return (focal_px / width) / TRAINING_CAMERAS[domain].focal_per_width
