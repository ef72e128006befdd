"""A Depth Anything model with its weights: ``forward``, ``predict``, ``predict_batch``, ``prediction_function``,
``export_program``.

The preprocessing is the official one (``image2tensor`` / ``infer_image`` of DepthAnything/Depth-Anything-V2 and
``run.py`` of LiheYoung/Depth-Anything): ``Resize(input_size, input_size, keep_aspect_ratio=True,
ensure_multiple_of=14, resize_method="lower_bound", INTER_CUBIC)``, so the LOWER side becomes ``input_size`` (518)
and each side is rounded to a multiple of 14 (rounded up where rounding would go below the bound); ImageNet
normalisation (inside the module); the prediction is resized back to the input size bilinearly, with
``align_corners=True`` for V2 (``infer_image``) and ``align_corners=False`` for V1 (``run.py``).

Deviation, stated: the official code resizes the image with OpenCV's ``INTER_CUBIC`` on a float64 copy; here the
resize is ``zoejax.ops.resize.resize_bicubic`` in float32 (A = -0.75, half-pixel centres, clamped borders, no
antialiasing), the same kernel and sampling, so the two differ by float rounding only (not bit-identical).
The official code neither pads nor mirrors; ``pad_input`` (ZoeDepth's reflect padding) and ``flip_tta``
(mirror averaging) are available but off by default.
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
from zoejax.models.depth_anything import DepthAnything
from zoejax.models.depth_anything_config import DepthAnythingConfig
from zoejax.models.validation import check_images
from zoejax.ops.platform import forms_for
from zoejax.ops.resize import resize_bicubic, resize_bilinear
from zoejax.preprocess import as_float_image, infer_padding, reflect_pad

DEFAULT_INPUT_SIZE = 518  # the official ``--input-size``: the trained resolution (37 x 14)
UNITS = {"metric_depth": "metres", "relative_depth": "relative inverse depth (unitless, larger is nearer)"}


def lower_bound_size(height: int, width: int, input_size: int = DEFAULT_INPUT_SIZE,
                     multiple: int = 14) -> tuple[int, int]:
    """The network (h, w) of the official ``Resize(..., keep_aspect_ratio=True, resize_method="lower_bound")``.

    The larger of the two scales is applied to both sides (the lower side becomes ``input_size``); each side is
    then rounded to a multiple of ``multiple`` with numpy's half-to-even rounding, and rounded up instead where
    that would fall below ``input_size``. E.g. 480x640 -> 518x686, 640x480 -> 686x518, 100x100 -> 518x518.
    """
    scale = max(input_size / height, input_size / width)

    def constrain(x: float) -> int:
        y = int(np.round(x / multiple) * multiple)
        return int(np.ceil(x / multiple) * multiple) if y < input_size else y

    return constrain(scale * height), constrain(scale * width)


def official_align_corners(config: DepthAnythingConfig, preset: str = "") -> bool:
    """How the official code resizes the prediction back: V2 ``align_corners=True``, V1 ``align_corners=False``.
    V1 is a ``da1_*`` preset or, without a preset name, a full-size encoder that taps its last four blocks (V2
    taps fixed earlier blocks; the 4-block test fixtures are V2 builds)."""
    if preset:
        return not preset.startswith("da1_")
    depth = config.backbone.depth
    return depth <= 4 or tuple(config.backbone.hooks) != tuple(range(depth - 4, depth))


@dataclasses.dataclass
class DepthAnythingModel:
    """A Depth Anything model (V1 / V2 relative, V2 metric) with its weights.

    Attributes:
      config: the typed model config.
      params: the Flax parameter tree (float32 arrays).
      extras: tensors the forward pass never uses, kept for lossless export.
      provenance: where the weights came from.
      input_size: the lower side of the network input (default 518), a multiple of 14; a (H, W) pair is read as
        its lower side (the resize keeps the aspect ratio).
      align_corners: of the resize back to the input size (default: the official one, see
        ``official_align_corners``).
    """

    config: DepthAnythingConfig
    params: Any
    extras: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)
    provenance: dict[str, Any] = dataclasses.field(default_factory=dict)
    input_size: Any = None
    align_corners: bool | None = None
    default_pad_input = False  # the official code neither pads ...
    default_flip_tta = False  # ... nor mirrors

    def __post_init__(self):
        size = DEFAULT_INPUT_SIZE if self.input_size is None else self.input_size
        size = min(size) if isinstance(size, (tuple, list)) else int(size)
        patch = self.config.input_multiple  # the DINOv2 patch (14)
        if size < patch or size % patch:
            raise ValueError(f"Depth Anything input_size must be a positive multiple of {patch}, got {size}")
        self.input_size = size
        if self.align_corners is None:
            self.align_corners = official_align_corners(self.config, self.provenance.get("preset") or "")
        self.params = jax.tree.map(jnp.asarray, self.params)
        self._module = DepthAnything(self.config)

    @property
    def output(self) -> str:
        """"metric_depth" (metres) or "relative_depth" (relative inverse depth, unitless)."""
        return self.config.output_key

    @property
    def units(self) -> str:
        return UNITS[self.output]

    def network_size(self, height: int, width: int) -> tuple[int, int]:
        """The network input (h, w) for an image of ``height`` x ``width`` pixels (multiples of 14)."""
        return lower_bound_size(height, width, self.input_size, self.config.input_multiple)

    def forward(self, images: Any) -> dict[str, jax.Array]:
        """images (B, H, W, 3) float in [0, 1], any size -> the module's output at the network resolution:
        ``relative_depth`` (B, h, w) unitless or ``metric_depth`` (B, h, w) metres, as the official ``forward``
        on ``image2tensor``'s input."""
        images = check_images(images, multiple=1)
        size = self.network_size(*images.shape[1:3])
        return _forward(self._module, size, self.params, jnp.asarray(images))

    def predict(self, image: Any, pad_input: bool | None = None, flip_tta: bool | None = None) -> np.ndarray:
        """One (H, W, 3) image (uint8, or float in [0, 1]) -> (H, W) float32 depth (``output``, ``units``), as the
        official ``infer_image``."""
        return self.predict_batch(as_float_image(image)[None], pad_input, flip_tta).depth[0]

    def predict_batch(self, images: Any, pad_input: bool | None = None, flip_tta: bool | None = None
                      ) -> Prediction:
        """(B, H, W, 3) images of one size (uint8, or float in [0, 1]) -> ``Prediction`` with depth (B, H, W)
        at the input size (``output``, ``units``), each image as ``predict`` alone, in one compiled call."""
        images = np.asarray(images)
        if images.ndim != 4:
            raise ValueError(f"expected a (B, H, W, 3) batch, got shape {images.shape}")
        if images.shape[0] == 0:
            raise ValueError("empty batch")
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
            raise ValueError(f"image of {height}x{width} pixels is too small: Depth Anything needs at least "
                             f"{MIN_IMAGE_SIDE}x{MIN_IMAGE_SIDE}")
        size = self.network_size(height + 2 * pad[0], width + 2 * pad[1])
        module = self._module if platforms is None else DepthAnything(self.config, ops=forms_for(platforms))
        fn = functools.partial(_predict, module, size, pad, flip_tta, self.align_corners)
        return PredictionFunction(fn, size, pad, flip_tta)

    def export_program(self, program: str, height: int, width: int, pad_input: bool | None = None,
                       flip_tta: bool | None = None, platforms: Sequence[str] | None = None) -> ExportProgram:
        """The ``ExportProgram`` for images of ``height`` x ``width`` pixels, with ``platforms``' op forms:
        "predict" is ``prediction_function`` (``depth`` (B, H, W) at the input size), "forward" the bare model
        at the network size as ``forward`` (``relative_depth`` or ``metric_depth`` (B, h, w)); in ``units``."""
        if program == "predict":
            prediction = self.prediction_function(height, width, pad_input, flip_tta, platforms)
            return predict_program(prediction, {"depth": f"(B, H, W) float32 {self.units} at the input size"},
                                   align_corners=self.align_corners)
        if program != "forward":
            raise unknown_program(program)
        return forward_program(DepthAnything(self.config, ops=forms_for(platforms)), to_network_input,
                               self.network_size(height, width),
                               {self.output: f"(B, h, w) float32 {self.units} at the network size"})


def to_network_input(images: jax.Array, size: tuple[int, int]) -> jax.Array:
    """(B, H, W, 3) float images in [0, 1] -> the network ``size``: bicubic (A = -0.75), as ``INTER_CUBIC``."""
    return resize_bicubic(images.astype(jnp.float32), size)


@functools.partial(jax.jit, static_argnums=(0, 1))
def _forward(model, size, params, images):
    return model.apply({"params": params}, to_network_input(images, size))


@functools.partial(jax.jit, static_argnums=(0, 1, 2, 3, 4))
def _predict(model, size, pad, flip_tta, align_corners, params, images):
    """images (B, H, W, 3) in [0, 1] -> {"depth": (B, H, W)} in the model's units."""
    n = images.shape[0]
    x = reflect_pad(images, *pad) if any(pad) else images
    if flip_tta:
        x = jnp.concatenate([x, x[:, :, ::-1]], axis=0)  # originals and mirrors in one batch
    out = model.apply({"params": params}, to_network_input(x, size))
    depth = resize_bilinear(out[model.config.output_key][..., None], x.shape[1:3],
                            align_corners=align_corners)[..., 0]
    depth = depth[:, pad[0]:depth.shape[1] - pad[0], pad[1]:depth.shape[2] - pad[1]]
    if flip_tta:
        depth = flip_average(depth, n)
    return {"depth": depth}
