"""A MiDaS relative-depth model with its weights (``zoejax.models.relative_depth.RelativeDepth``), with the
``zoejax.inference_models.DepthModel`` interface: ``depth`` is a relative inverse depth (unitless, larger is
nearer), at the input size.

Preprocessing: MiDaS's ``Resize`` "minimal" sizing (``zoejax.preprocess.network_size``: aspect ratio kept, sides
multiples of 32) towards the 384 x 384 target of MiDaS v3.1's 384 models, through ZoeDepth's input resize
(``zoejax.preprocess.to_network_input``); the map goes back to the input size bicubically, as MiDaS's ``run.py``.
MiDaS's own inference neither pads nor mirrors, so both are off by default.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from zoejax.inference import (
    MIN_IMAGE_SIDE,
    ExportProgram,
    Prediction,
    PredictionFunction,
    flip_average,
    forward_program,
    predict_program,
    unknown_program,
)
from zoejax.models.relative_depth import RelativeDepth, RelativeDepthConfig
from zoejax.models.validation import check_images
from zoejax.ops.platform import forms_for
from zoejax.ops.resize import resize_bicubic
from zoejax.preprocess import as_float_image, infer_padding, network_size, reflect_pad, to_network_input

MIDAS_INPUT_SIZE = (384, 384)


@dataclasses.dataclass
class RelativeDepthModel:
    """A relative-depth model with its weights: ``params`` is ``{"core": ...}`` (``relative_from_midas``, or a
    relative training run)."""

    config: RelativeDepthConfig
    params: Any
    extras: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)
    provenance: dict[str, Any] = dataclasses.field(default_factory=dict)
    input_size: tuple[int, int] | None = None
    output = "relative_depth"
    units = "relative inverse depth (unitless, larger is nearer)"
    default_pad_input = False
    default_flip_tta = False

    def __post_init__(self):
        self.input_size = tuple(self.input_size or MIDAS_INPUT_SIZE)
        self.params = jax.tree.map(jnp.asarray, self.params)
        self._module = RelativeDepth(self.config)

    def network_size(self, height: int, width: int) -> tuple[int, int]:
        """The network input (h, w) for an image of ``height`` x ``width`` pixels (multiples of 32)."""
        return network_size(height, width, self.input_size, True)

    def forward(self, images: Any) -> dict[str, jax.Array]:
        """images (B, H, W, 3) float in [0, 1], any size -> ``relative_depth`` (B, h, w) at the network size."""
        images = check_images(images, multiple=1)
        size = self.network_size(*images.shape[1:3])
        return _forward(self._module, size, self.params, jnp.asarray(images))

    def predict(self, image: Any, pad_input: bool | None = None, flip_tta: bool | None = None) -> np.ndarray:
        """One (H, W, 3) image (uint8, or float in [0, 1]) -> (H, W) float32 relative inverse depth."""
        return self.predict_batch(as_float_image(image)[None], pad_input, flip_tta).depth[0]

    def predict_batch(self, images: Any, pad_input: bool | None = None, flip_tta: bool | None = None
                      ) -> Prediction:
        """(B, H, W, 3) images of one size -> ``Prediction`` of (B, H, W) relative inverse depth at the input
        size, each image as ``predict`` alone, in one compiled call."""
        images = np.asarray(images)
        if images.ndim != 4 or images.shape[0] == 0:
            raise ValueError(f"expected a non-empty (B, H, W, 3) batch, got shape {images.shape}")
        images = np.stack([as_float_image(x) for x in images])
        program = self.prediction_function(*images.shape[1:3], pad_input, flip_tta)
        out = program.fn(self.params, jnp.asarray(images))
        return Prediction(np.asarray(out["depth"]), output=self.output)

    def prediction_function(self, height: int, width: int, pad_input: bool | None = None,
                            flip_tta: bool | None = None, platforms: Sequence[str] | None = None
                            ) -> PredictionFunction:
        """``predict_batch`` for images of ``height`` x ``width`` as a traceable function of (params, images) ->
        {"depth": (B, H, W)}, for export; ``platforms`` as ``ZoeDepthModel.prediction_function``."""
        pad_input = self.default_pad_input if pad_input is None else pad_input
        flip_tta = self.default_flip_tta if flip_tta is None else flip_tta
        pad = infer_padding(height, width) if pad_input else (0, 0)
        if min(height, width) < MIN_IMAGE_SIDE or pad[0] >= height or pad[1] >= width:
            raise ValueError(f"image of {height}x{width} pixels is too small: a relative MiDaS model needs at "
                             f"least {MIN_IMAGE_SIDE}x{MIN_IMAGE_SIDE}")
        size = self.network_size(height + 2 * pad[0], width + 2 * pad[1])
        module = self._module if platforms is None else RelativeDepth(self.config, ops=forms_for(platforms))
        fn = functools.partial(_predict, module, size, pad, flip_tta)
        return PredictionFunction(fn, size, pad, flip_tta)

    def export_program(self, program: str, height: int, width: int, pad_input: bool | None = None,
                       flip_tta: bool | None = None, platforms: Sequence[str] | None = None) -> ExportProgram:
        """The ``ExportProgram`` for images of ``height`` x ``width`` pixels, with ``platforms``' op forms:
        "predict" is ``prediction_function`` (``depth`` (B, H, W) at the input size), "forward" the bare model
        at the network size as ``forward`` (``relative_depth`` (B, h, w)); relative inverse depth."""
        if program == "predict":
            prediction = self.prediction_function(height, width, pad_input, flip_tta, platforms)
            return predict_program(prediction, {"depth": f"(B, H, W) float32 {self.units} at the input size"})
        if program != "forward":
            raise unknown_program(program)
        return forward_program(RelativeDepth(self.config, ops=forms_for(platforms)), to_network_input,
                               self.network_size(height, width),
                               {"relative_depth": f"(B, h, w) float32 {self.units} at the network size"})


@functools.partial(jax.jit, static_argnums=(0, 1))
def _forward(model, size, params, images):
    return model.apply({"params": params}, to_network_input(images, size))


@functools.partial(jax.jit, static_argnums=(0, 1, 2, 3))
def _predict(model, size, pad, flip_tta, params, images):
    """images (B, H, W, 3) in [0, 1] -> {"depth": (B, H, W)} relative inverse depth at the input size."""
    n = images.shape[0]
    x = reflect_pad(images, *pad) if any(pad) else images
    if flip_tta:
        x = jnp.concatenate([x, x[:, :, ::-1]], axis=0)  # originals and mirrors in one batch
    rel = model.apply({"params": params}, to_network_input(x, size))["relative_depth"]
    depth = resize_bicubic(rel[..., None], x.shape[1:3])[..., 0]
    depth = depth[:, pad[0]:depth.shape[1] - pad[0], pad[1]:depth.shape[2] - pad[1]]
    if flip_tta:
        depth = flip_average(depth, n)
    return {"depth": depth}
