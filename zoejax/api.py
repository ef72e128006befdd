"""``zoejax.load(path)``: a ready-to-run model from a converted folder, a training work directory or an
official / MiDaS / HF checkpoint.

The facade: it composes storage and conversion (``zoejax.conversion.load``) with the inference layer
(``zoejax.inference``, where ``ZoeDepthModel`` and its ``forward`` / ``predict`` live). Nothing below it imports it.
"""

from __future__ import annotations

import os

from zoejax.conversion.load import load_weights
from zoejax.inference import Prediction, ZoeDepthModel
from zoejax.inference_depth_anything import DepthAnythingModel
from zoejax.inference_models import DepthModel, model_with_weights
from zoejax.inference_relative import RelativeDepthModel

__all__ = ["DepthAnythingModel", "DepthModel", "Prediction", "RelativeDepthModel", "ZoeDepthModel", "load"]


def load(path: str | os.PathLike, *, max_depth: float | None = None, variant: str | None = None,
         input_size: tuple[int, int] | int | None = None, preset: str | None = None) -> DepthModel:
    """Load a converted zoejax folder, or convert an official / MiDaS / HF / Depth Anything checkpoint in memory.

    Returns a ``ZoeDepthModel``, a ``DepthAnythingModel`` or a ``RelativeDepthModel``
    (``zoejax.inference_models.MODEL_CLASSES``, by the config's type); all have the ``DepthModel`` interface.

    Args:
      path: a training work directory (its latest checkpoint); a folder written by ``zoejax-convert``; an
        official ``ZoeD_M12_*.pt``; a MiDaS v3.1
        ``dpt_beit_*_384.pt`` (metric head freshly initialised); an HF ``model.safetensors`` or its folder; a
        Depth Anything ``.pth`` (V1 / V2 relative, V2 metric) or transformers ``DepthAnythingForDepthEstimation``
        folder.
      max_depth: ZoeD_K only: 10 (default, the released model's behaviour) or 80 (the paper's KITTI protocol).
      variant: "n" | "k" | "nk" to override detection (for MiDaS files: which head to initialise); "relative":
        a MiDaS v3.1 file as the relative model it is (``RelativeDepthModel``), or a stored ZoeDepth's core.
      input_size: the network size target, default 384x512 (384x768 for ZoeD_K); for a training work directory,
        the size it trained at. Depth Anything: the lower side (default 518, a multiple of 14).
      preset: a Depth Anything ``.pth`` whose file name is not the release's: its model, e.g.
        "da2_relative_vitl" (``zoejax.models.depth_anything_config.PRESETS``).
    """
    stored = load_weights(path, max_depth=max_depth, variant=variant, preset=preset)
    return model_with_weights(stored.config, stored.params, stored.extras, stored.provenance,
                              input_size or stored.input_size)
