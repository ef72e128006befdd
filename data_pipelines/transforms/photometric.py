"""Photometric augmentation of the image only (official ``augment_image``, data_mono.py 482-507).

With probability ``prob``: image <- clip((image ** gamma) * brightness * colour_k, 0, 1), with gamma,
brightness and three per-channel colour factors drawn uniformly; all three are applied together when the coin
succeeds.
"""

from __future__ import annotations

import dataclasses

import grain
import numpy as np

from data_pipelines.sources.base import Example

_LEVELS = np.arange(256, dtype=np.float32) / np.float32(255.0)


def jitter_lut(gamma: float, brightness: float, colour: np.ndarray) -> np.ndarray:
    """float32 (3, 256): the jittered [0, 1] value of each uint8 level, per channel."""
    lut = (_LEVELS ** np.float32(gamma)) * np.float32(brightness)
    return np.clip(lut[None, :] * np.asarray(colour, np.float32)[:, None], 0.0, 1.0).astype(np.float32)


def apply_lut(image: np.ndarray, lut: np.ndarray) -> np.ndarray:
    """uint8 (H, W, 3) through a per-channel (3, 256) table -> float32 (H, W, 3).

    A table lookup on the uint8 levels is exact and several times cheaper than pow() on 921,600 floats.
    """
    out = np.empty(image.shape, np.float32)
    for c in range(3):
        np.take(lut[c], image[..., c], out=out[..., c])
    return out


@dataclasses.dataclass(frozen=True)
class PhotometricJitter(grain.transforms.RandomMap):
    """Joint gamma / brightness / colour jitter (official ranges: gamma U(0.9, 1.1); brightness U(0.75,
    1.25) for NYU, U(0.9, 1.1) otherwise; colour U(0.9, 1.1) per channel; probability 0.5).

    Input image uint8 (H, W, 3); output float32 [0, 1] when applied, unchanged uint8 otherwise (the resize
    converts).
    """

    prob: float = 0.5
    gamma: tuple[float, float] = (0.9, 1.1)
    brightness: tuple[float, float] = (0.9, 1.1)
    colour: tuple[float, float] = (0.9, 1.1)

    def random_map(self, element: Example, rng: np.random.Generator) -> Example:
        if not rng.random() < self.prob:
            return element
        g = rng.uniform(*self.gamma)
        b = rng.uniform(*self.brightness)
        c = rng.uniform(self.colour[0], self.colour[1], 3)
        image = element["image"]
        if image.dtype != np.uint8:
            raise TypeError("PhotometricJitter expects the uint8 image straight from the source")
        out = dict(element)
        out["image"] = apply_lut(image, jitter_lut(g, b, c))
        return out
