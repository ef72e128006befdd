"""``zoejax.load(path)``: a ready-to-run model from a converted folder, a training work directory or an
official / MiDaS / HF checkpoint.

The facade: it composes storage and conversion (``zoejax.conversion.load``) with the inference layer
(``zoejax.inference``, where ``ZoeDepthModel`` and its ``forward`` / ``predict`` live). Nothing below it imports it.
"""

from __future__ import annotations

import os

from zoejax.conversion.load import load_weights
from zoejax.inference import Prediction, ZoeDepthModel

__all__ = ["Prediction", "ZoeDepthModel", "load"]


def load(path: str | os.PathLike, *, max_depth: float | None = None, variant: str | None = None,
         input_size: tuple[int, int] | None = None) -> ZoeDepthModel:
    """Load a converted zoejax folder, or convert an official / MiDaS / HF checkpoint in memory.

    Args:
      path: a training work directory (its latest checkpoint); a folder written by ``zoejax-convert``; an
        official ``ZoeD_M12_*.pt``; a MiDaS v3.1
        ``dpt_beit_*_384.pt`` (metric head freshly initialised); an HF ``model.safetensors`` or its folder.
      max_depth: ZoeD_K only: 10 (default, the released model's behaviour) or 80 (the paper's KITTI protocol).
      variant: "n" | "k" | "nk" to override detection (for MiDaS files: which head to initialise).
      input_size: the network size target, default 384x512 (384x768 for ZoeD_K); for a training work directory,
        the size it trained at.
    """
    stored = load_weights(path, max_depth=max_depth, variant=variant)
    return ZoeDepthModel(stored.config, stored.params, stored.extras, stored.provenance,
                         input_size or stored.input_size)
