"""The family-neutral "depth model with its weights" and the table that picks its class from the config type.

Every family's model (``ZoeDepthModel``, ``DepthAnythingModel``, ``RelativeDepthModel``) has the ``DepthModel``
interface, so that ``zoejax.load``, ``zoejax-predict``, the exports and serving take any of them without asking
which it is. A new family is one class with this interface and one entry in ``MODEL_CLASSES``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import jax
import numpy as np

from zoejax.inference import ExportProgram, Prediction, PredictionFunction, ZoeDepthModel
from zoejax.inference_depth_anything import DepthAnythingModel
from zoejax.inference_relative import RelativeDepthModel
from zoejax.models.config import ZoeDepthConfig
from zoejax.models.depth_anything_config import DepthAnythingConfig
from zoejax.models.relative_depth import RelativeDepthConfig

OUTPUTS = ("metric_depth", "relative_depth")


@runtime_checkable
class DepthModel(Protocol):
    """A depth model with its weights.

    Attributes:
      config: the family's typed model config; every one names its ``input_multiple`` (network input sides are
        multiples of it) and ``output_key`` (``zoejax.models.family``).
      params: the Flax parameter tree.
      extras: tensors the forward pass never uses, kept for lossless export.
      provenance: where the weights came from (``source``: the path read).
      input_size: the network size target of the family's preprocessing.
      output: "metric_depth" (``depth`` in metres) or "relative_depth" (relative inverse depth, unitless).
      units: ``output`` in words ("metres", ...).
      default_pad_input, default_flip_tta: what ``pad_input`` / ``flip_tta`` None means (the family's official
        inference).
    """

    config: Any
    params: Any
    extras: dict[str, np.ndarray]
    provenance: dict[str, Any]
    input_size: Any
    output: str
    units: str
    default_pad_input: bool
    default_flip_tta: bool

    def network_size(self, height: int, width: int) -> tuple[int, int]: ...

    def forward(self, images: Any) -> dict[str, jax.Array]: ...

    def predict(self, image: Any, pad_input: bool | None = None, flip_tta: bool | None = None) -> np.ndarray: ...

    def predict_batch(self, images: Any, pad_input: bool | None = None, flip_tta: bool | None = None
                      ) -> Prediction: ...

    def prediction_function(self, height: int, width: int, pad_input: bool | None = None,
                            flip_tta: bool | None = None, platforms: Sequence[str] | None = None
                            ) -> PredictionFunction: ...

    def export_program(self, program: str, height: int, width: int, pad_input: bool | None = None,
                       flip_tta: bool | None = None, platforms: Sequence[str] | None = None) -> ExportProgram: ...


# config class -> the class of its model with weights.
MODEL_CLASSES: dict[type, type] = {ZoeDepthConfig: ZoeDepthModel, DepthAnythingConfig: DepthAnythingModel,
                                   RelativeDepthConfig: RelativeDepthModel}


def model_with_weights(config: Any, params: Any, extras: dict[str, np.ndarray] | None = None,
                       provenance: dict[str, Any] | None = None, input_size: Any = None) -> DepthModel:
    """The ``DepthModel`` of ``config``'s family (``MODEL_CLASSES``); TypeError naming the known configs."""
    cls = MODEL_CLASSES.get(type(config))
    if cls is None:
        raise TypeError(f"no inference model for a {type(config).__name__}; known: "
                        f"{sorted(c.__name__ for c in MODEL_CLASSES)}")
    return cls(config, params, dict(extras or {}), dict(provenance or {}), input_size)
