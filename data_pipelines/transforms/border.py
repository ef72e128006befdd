"""NYU white-border removal (official ``avoid_boundary``; off in the released models, so off by default).

NYU training images carry a white frame. The detector scans inward from 5 px inside each edge while more than
10 % of the row/column is within 5 grey levels of white, stopping once more than 20 px in; the image is
cropped to the inner box and reflect-padded back to its size, the depth zero-padded (so the frame becomes
invalid).
"""

from __future__ import annotations

import dataclasses

import grain
import numpy as np

from data_pipelines.sources.base import Example


def white_border_box(image: np.ndarray, tolerance: float = 0.1, cut_off: int = 20, level_diff: float = 5.0,
                     start: int = 5) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) of the inner box of a uint8 (H, W, 3) image; bottom/right exclusive."""
    white = image.mean(axis=2) >= 255.0 - level_diff
    h, w = white.shape

    def inset(line_fraction) -> int:
        i = start
        while i <= cut_off and line_fraction(i) > tolerance:
            i += 1
        return i

    top = inset(lambda i: white[i].mean())
    bottom = h - inset(lambda i: white[h - 1 - i].mean())
    left = inset(lambda i: white[:, i].mean())
    right = w - inset(lambda i: white[:, w - 1 - i].mean())
    return top, bottom, left, right


@dataclasses.dataclass(frozen=True)
class RemoveWhiteBorder(grain.transforms.Map):
    """Crops the detected white frame; image reflect-padded back, depth/mask zero-padded (invalid)."""

    def map(self, element: Example) -> Example:
        image = element["image"]
        h, w = image.shape[:2]
        top, bottom, left, right = white_border_box(image)
        pad = ((top, h - bottom), (left, w - right))
        out = dict(element)
        out["image"] = np.pad(image[top:bottom, left:right], pad + ((0, 0),), mode="reflect")
        out["depth"] = np.pad(element["depth"][top:bottom, left:right], pad)
        out["valid"] = np.pad(element["valid"][top:bottom, left:right], pad)
        return out
