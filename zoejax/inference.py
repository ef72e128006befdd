"""The model with its weights: ``forward``, ``predict`` and ``predict_batch``, the inference layer.

``forward`` and ``predict`` reproduce the official ``model(x)`` and ``infer`` (architecture spec section 2):
keep-aspect "minimal" resize to a multiple of 32 (align_corners bilinear), normalisation inside the model;
``predict`` adds reflect padding, bicubic (A = -0.75) resize back, crop, and flip averaging — the flipped
copy is batched with the original, so it is one compiled call. ``prediction_function`` hands the same traced
computation to export (``zoejax.serving``); ``export_program`` adds the output names a graph exporter (ONNX)
writes, and the bare forward as a second program.

This layer imports models, ops, preprocessing and io only: training, conversion, evaluation, serving and the
``zoejax.load`` facade build on it (``tests/test_import_graph.py``).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from zoejax.models.config import ZoeDepthConfig
from zoejax.models.validation import check_domain_labels, check_images
from zoejax.models.zoedepth import ZoeDepth
from zoejax.ops.platform import forms_for
from zoejax.ops.resize import resize_bicubic
from zoejax.ops.uncertainty import confidence_from_std, mixture_std
from zoejax.preprocess import as_float_image, infer_padding, network_size, reflect_pad, to_network_input

MIN_IMAGE_SIDE = 8
EXPORT_PROGRAMS = ("predict", "forward")  # what ``export_program`` builds, in every family


def default_input_size(config: ZoeDepthConfig) -> tuple[int, int]:
    """The official ``img_size`` target: 384x768 for ZoeD_K (normed bins), 384x512 otherwise; on the Depth
    Anything core (V1 metric) 392x518, or 384x768 for normed bins (``config_zoedepth_kitti.json``), each side then
    rounded to a multiple of 14 by ``network_size``."""
    single_normed = not config.is_multi_head and config.head.bin_centers_type == "normed"
    if single_normed:
        return (384, 768)
    return (392, 518) if config.core == "depth_anything" else (384, 512)


def check_predictable_size(height: int, width: int, pad: tuple[int, int]) -> None:
    """Reject images too small to predict (reflect padding needs pad < side)."""
    if min(height, width) < MIN_IMAGE_SIDE or pad[0] >= height or pad[1] >= width:
        raise ValueError(f"image of {height}x{width} pixels is too small: ZoeDepth needs at least "
                         f"{MIN_IMAGE_SIDE}x{MIN_IMAGE_SIDE}")


@dataclasses.dataclass
class Prediction:
    """``depth`` (B, H, W) float32: metres when ``output`` is "metric_depth", relative inverse depth (unitless,
    larger is nearer) when it is "relative_depth"; for ZoeD_NK ``domain`` (B,) int, the head the router chose for
    each (un-mirrored) image, an index into ``domain_names`` (e.g. ("nyu", "kitti")). With ``confidence=True``:
    ``std`` (B, H, W) float32 metres, the per-pixel uncertainty, and ``confidence`` (B, H, W) in [0, 1]
    (``zoejax.ops.uncertainty``)."""

    depth: np.ndarray
    domain: np.ndarray | None = None
    domain_names: tuple[str, ...] = ()
    output: str = "metric_depth"
    std: np.ndarray | None = None
    confidence: np.ndarray | None = None


@dataclasses.dataclass(frozen=True)
class PredictionFunction:
    """``fn(params, images)`` with images (B, height, width, 3) float32 in [0, 1] -> {"depth": (B, H, W) metres}
    (+ "domain" (B,) int32 for ZoeD_NK; + "std" metres and "confidence" 0-1, (B, H, W), with ``confidence``):
    ``predict_batch``'s whole computation for one input size, traceable
    (``jax.jit`` / ``jax.export``). ``network_size`` (h, w) and ``pad`` (rows, columns) are what it uses."""

    fn: Callable[[Any, jax.Array], dict[str, jax.Array]]
    network_size: tuple[int, int]
    pad: tuple[int, int]
    flip_tta: bool
    confidence: bool = False


@dataclasses.dataclass(frozen=True)
class ExportProgram:
    """What a graph exporter traces (``zoejax.serving.onnx``), built by each family's ``export_program``.

    fn: ``fn(params, images)`` with images (B, H, W, 3) float32 RGB in [0, 1] -> a dict holding every name of
      ``outputs`` (it may hold more).
    outputs: output name -> its description (shape, dtype, units), in the order the exported file lists them.
    meta: JSON-friendly facts about the program for the file's metadata (network size, padding, flip, domains).
    """

    fn: Callable[[Any, jax.Array], dict[str, jax.Array]]
    outputs: dict[str, str]
    meta: dict[str, Any]


def unknown_program(program: str) -> ValueError:
    return ValueError(f"unknown export program {program!r}; expected one of {EXPORT_PROGRAMS}")


def predict_program(prediction: PredictionFunction, outputs: dict[str, str], **meta: Any) -> ExportProgram:
    """The "predict" ``ExportProgram`` of a family's ``prediction_function``: its size, padding and flip in the
    metadata, with ``meta`` added."""
    return ExportProgram(prediction.fn, outputs, {"network_size": list(prediction.network_size),
                                                  "pad": list(prediction.pad), "flip_tta": prediction.flip_tta,
                                                  **meta})


def forward_program(module: Any, to_input: Callable[[jax.Array, tuple[int, int]], jax.Array],
                    size: tuple[int, int], outputs: dict[str, str], **meta: Any) -> ExportProgram:
    """The "forward" ``ExportProgram``: the bare ``module`` on images brought to the network ``size`` by
    ``to_input`` (the family's resize and normalisation)."""

    def forward(params, images):
        return module.apply({"params": params}, to_input(images, size))

    return ExportProgram(forward, outputs, {"network_size": list(size), **meta})


@dataclasses.dataclass
class ZoeDepthModel:
    """A ZoeDepth model with its weights.

    Attributes:
      config: the typed model config.
      params: the Flax parameter tree (float32 arrays).
      extras: tensors the forward pass never uses, kept for lossless export (see ``conversion.table``).
      provenance: where the weights came from.
      input_size: the network size target (H, W) of the official preprocessing.
      keep_aspect_ratio: the official ``infer`` keeps it (True); its ``eval`` mode does not.
    """

    config: ZoeDepthConfig
    params: Any
    extras: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)
    provenance: dict[str, Any] = dataclasses.field(default_factory=dict)
    input_size: tuple[int, int] | None = None
    keep_aspect_ratio: bool = True
    output = "metric_depth"  # what ``depth`` holds (the ``zoejax.inference_models.DepthModel`` interface)
    units = "metres"
    default_pad_input = True  # the official ``infer`` pads and mirrors
    default_flip_tta = True

    def __post_init__(self):
        self.input_size = tuple(self.input_size or default_input_size(self.config))
        self.params = jax.tree.map(jnp.asarray, self.params)
        self._module = ZoeDepth(self.config)

    def network_size(self, height: int, width: int) -> tuple[int, int]:
        """The network input (h, w) for an image of ``height`` x ``width`` pixels (multiples of
        ``config.input_multiple``: 32, or 14 on the Depth Anything core)."""
        return network_size(height, width, self.input_size, self.keep_aspect_ratio, self.config.input_multiple)

    def forward(self, images: Any, domain: Any = None) -> dict[str, jax.Array]:
        """images (B, H, W, 3) float in [0, 1], any size -> the model's outputs at the network resolution
        (``metric_depth`` (B, h, w) metres; ``domain_logits`` for ZoeD_NK), as the official ``model(x)``.

        ``domain`` (B,) int, ZoeD_NK only: the head for each image (an index into ``config.domain_names``)
        instead of the router's choice; anything else raises ValueError."""
        images = check_images(images, multiple=1)
        size = self.network_size(*images.shape[1:3])
        if domain is not None:
            domain = jnp.asarray(check_domain_labels(domain, images.shape[0], self.config.domain_names))
        return _forward(self._module, size, self.params, jnp.asarray(images), domain)

    def predict(self, image: Any, pad_input: bool | None = None, flip_tta: bool | None = None,
                confidence: bool = False) -> np.ndarray | Prediction:
        """One (H, W, 3) image (uint8, or float in [0, 1]) -> (H, W) float32 metric depth, as official ``infer``.
        With ``confidence=True`` a ``Prediction`` of one image instead: depth, std and confidence (1, H, W)."""
        pred = self.predict_batch(as_float_image(image)[None], pad_input, flip_tta, confidence)
        return pred if confidence else pred.depth[0]

    def predict_batch(self, images: Any, pad_input: bool | None = None, flip_tta: bool | None = None,
                      confidence: bool = False) -> Prediction:
        """(B, H, W, 3) images of one size (uint8, or float in [0, 1]) -> ``Prediction`` with depth (B, H, W)
        metres at the input size: each image exactly as ``predict`` would treat it alone (for ZoeD_NK each is
        routed by its own vote), in one compiled call. ``confidence``: also the per-pixel uncertainty (the
        bins' spread, with flip disagreement; see ``zoejax.ops.uncertainty``); the depth is unchanged."""
        images = np.asarray(images)
        if images.ndim != 4:
            raise ValueError(f"expected a (B, H, W, 3) batch, got shape {images.shape}")
        images = np.stack([as_float_image(x) for x in images]) if images.shape[0] else images
        if images.shape[0] == 0:
            raise ValueError("empty batch")
        program = self.prediction_function(*images.shape[1:3], pad_input, flip_tta, confidence=confidence)
        out = {k: np.asarray(v) for k, v in program.fn(self.params, jnp.asarray(images)).items()}
        domain = out.get("domain")
        return Prediction(out["depth"], domain, tuple(self.config.domain_names) if domain is not None else (),
                          std=out.get("std"), confidence=out.get("confidence"))

    def prediction_function(self, height: int, width: int, pad_input: bool | None = None,
                            flip_tta: bool | None = None, platforms: Sequence[str] | None = None,
                            confidence: bool = False) -> PredictionFunction:
        """``predict_batch`` for images of ``height`` x ``width`` pixels as a traceable function of
        (params, images), for export; raises ValueError for an image too small to predict. ``platforms``: the
        ``jax.export`` platforms the function is for (their op forms, ``zoejax.ops.platform.forms_for``);
        None: this machine's backend. ``pad_input`` / ``flip_tta`` None: on, as the official ``infer``.
        ``confidence``: also "std" and "confidence" (needs bins or flip TTA)."""
        pad_input = self.default_pad_input if pad_input is None else pad_input
        flip_tta = self.default_flip_tta if flip_tta is None else flip_tta
        bins = self.config.head.head_type != "naive"
        if confidence and not (bins or flip_tta):
            raise ValueError("confidence needs the metric bins or flip TTA: this model has no bins, so keep "
                             "flip_tta=True (its confidence is the flip disagreement)")
        pad = infer_padding(height, width) if pad_input else (0, 0)
        check_predictable_size(height, width, pad)
        size = self.network_size(height + 2 * pad[0], width + 2 * pad[1])
        module = self._module if platforms is None else ZoeDepth(self.config, ops=forms_for(platforms))
        uncertainty = (confidence, bins and confidence)  # (asked, from the bins too)
        fn = functools.partial(_predict, module, size, pad, flip_tta, uncertainty)  # jitted, sizes static
        return PredictionFunction(fn, size, pad, flip_tta, confidence)

    def export_program(self, program: str, height: int, width: int, pad_input: bool | None = None,
                       flip_tta: bool | None = None, platforms: Sequence[str] | None = None) -> ExportProgram:
        """The ``ExportProgram`` for images of ``height`` x ``width`` pixels, with ``platforms``' op forms.

        "predict": ``prediction_function`` (``pad_input`` / ``flip_tta`` as there): ``depth`` (B, H, W) metres,
        + ``domain`` (B,) for ZoeD_NK, each image routed by its own vote. "forward": the bare model at the network
        size, as ``forward``: ``metric_depth`` and ``rel_depth`` (B, h, w), + ``domain_logits`` (B, D) and
        ``domain`` (B,) for ZoeD_NK, the router voting over the batch as the official ``model(x)``."""
        multi_head = self.config.is_multi_head
        meta: dict[str, Any] = {"domain_names": list(self.config.domain_names) if multi_head else []}
        if program == "predict":
            prediction = self.prediction_function(height, width, pad_input, flip_tta, platforms)
            outputs = {"depth": "(B, H, W) float32 metres at the input size"}
            if multi_head:
                outputs["domain"] = "(B,) int32 index into domain_names (the router's choice per image)"
            return predict_program(prediction, outputs, **meta)
        if program != "forward":
            raise unknown_program(program)
        outputs = {"metric_depth": "(B, h, w) float32 metres at the network size",
                   "rel_depth": "(B, h, w) float32 relative depth at the network size"}
        if multi_head:
            outputs.update(domain_logits="(B, D) float32 router logits", domain="(B,) int32 the batch's head")
        return forward_program(ZoeDepth(self.config, ops=forms_for(platforms)), to_network_input,
                               self.network_size(height, width), outputs, **meta)


@functools.partial(jax.jit, static_argnums=(0, 1))
def _forward(model, size, params, images, domain):
    return model.apply({"params": params}, to_network_input(images, size), domain)


@functools.partial(jax.jit, static_argnums=(0, 1, 2, 3, 4))
def _predict(model, size, pad, flip_tta, uncertainty, params, images):
    """images (B, H, W, 3) in [0, 1] -> {"depth": (B, H, W)} (+ "domain" (B,) for NK; + "std", "confidence"
    when ``uncertainty`` = (asked, from the bins too))."""
    n = images.shape[0]
    x = images
    if any(pad):
        x = reflect_pad(x, *pad)
    if flip_tta:
        x = jnp.concatenate([x, x[:, :, ::-1]], axis=0)  # originals and mirrors in one batch
    # Each image is routed by its own vote, as separate official forwards would be.
    kwargs = {"return_uncertainty": True} if uncertainty[1] else {}
    out = model.apply({"params": params}, to_network_input(x, size), vote_per_example=True, **kwargs)

    def back(network_map):  # (2B | B, h, w) at the network size -> at the input size, unpadded
        full = resize_bicubic(network_map[..., None], x.shape[1:3])[..., 0]
        return full[:, pad[0]:full.shape[1] - pad[0], pad[1]:full.shape[2] - pad[1]]

    depth = back(out["metric_depth"])
    std = jnp.maximum(back(out["metric_depth_std"]), 0.0) if uncertainty[1] else None  # bicubic overshoots
    if flip_tta:
        if uncertainty[0]:
            std = mixture_std(first_half(depth, n), second_half(depth, n)[:, :, ::-1],
                              *((first_half(std, n), second_half(std, n)[:, :, ::-1]) if uncertainty[1] else ()))
        depth = flip_average(depth, n)
    result = {"depth": depth}
    if uncertainty[0]:
        result.update(std=std, confidence=confidence_from_std(depth, std))
    if "domain" in out:
        result["domain"] = first_half(out["domain"], n) if flip_tta else out["domain"]
    return result


def first_half(x: jax.Array, n: Any) -> jax.Array:
    """x[:n] of a (2n, ...) array. A symbolic n (a dynamic-batch export) takes it through a reshape: jax2onnx
    sizes a slice at a symbolic offset as empty. A static n keeps the plain slice, so the jitted and TPU
    programs are unchanged."""
    return x[:n] if isinstance(n, int) else x.reshape(2, n, *x.shape[1:])[0]


def second_half(x: jax.Array, n: Any) -> jax.Array:
    """x[n:] of a (2n, ...) array (see ``first_half``)."""
    return x[n:] if isinstance(n, int) else x.reshape(2, n, *x.shape[1:])[1]


def flip_average(x: jax.Array, n: Any) -> jax.Array:
    """(2n, H, W) maps of n images then their mirrors -> (n, H, W), each image's map averaged with its mirror's
    mirrored back (any n, symbolic included: ``first_half``)."""
    return 0.5 * (first_half(x, n) + second_half(x, n)[:, :, ::-1])
