"""``zoejax.load(path)``: a ready-to-run model from a converted folder or an official / MiDaS / HF checkpoint.

``forward`` and ``predict`` reproduce the official ``model(x)`` and ``infer`` (architecture spec section 2):
keep-aspect "minimal" resize to a multiple of 32 (align_corners bilinear), normalisation inside the model;
``predict`` adds reflect padding, bicubic (A = -0.75) resize back, crop, and flip averaging — the flipped
copy is batched with the original, so it is one compiled call.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from zoejax.conversion.store import CONFIG_FILE, is_converted_dir, load_converted
from zoejax.models.config import ZoeDepthConfig
from zoejax.models.validation import check_images
from zoejax.models.zoedepth import ZoeDepth
from zoejax.ops.resize import resize_bicubic
from zoejax.preprocess import as_float_image, infer_padding, network_size, reflect_pad, to_network_input


def default_input_size(config: ZoeDepthConfig) -> tuple[int, int]:
    """The official ``img_size`` target: 384x768 for ZoeD_K (normed bins), 384x512 otherwise."""
    single_normed = not config.is_multi_head and config.head.bin_centers_type == "normed"
    return (384, 768) if single_normed else (384, 512)


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

    def __post_init__(self):
        self.input_size = tuple(self.input_size or default_input_size(self.config))
        self.params = jax.tree.map(jnp.asarray, self.params)
        self._model = ZoeDepth(self.config)

    def network_size(self, height: int, width: int) -> tuple[int, int]:
        return network_size(height, width, self.input_size, self.keep_aspect_ratio)

    def forward(self, images: Any, domain: Any = None) -> dict[str, jax.Array]:
        """images (B, H, W, 3) float in [0, 1], any size -> the model's outputs at the network resolution
        (``metric_depth`` (B, h, w) metres; ``domain_logits`` for ZoeD_NK), as the official ``model(x)``."""
        images = check_images(images, multiple=1)
        size = self.network_size(*images.shape[1:3])
        if domain is not None:
            domain = jnp.asarray(np.asarray(domain, np.int32).reshape(-1))
        return _forward(self._model, size, self.params, jnp.asarray(images), domain)

    def predict(self, image: Any, pad_input: bool = True, flip_tta: bool = True) -> np.ndarray:
        """One (H, W, 3) image (uint8, or float in [0, 1]) -> (H, W) float32 metric depth, as official ``infer``."""
        return self.predict_batch(as_float_image(image)[None], pad_input, flip_tta).depth[0]

    def predict_batch(self, images: Any, pad_input: bool = True, flip_tta: bool = True) -> Prediction:
        """(B, H, W, 3) images of one size (uint8, or float in [0, 1]) -> ``Prediction`` with depth (B, H, W)
        metres at the input size: each image exactly as ``predict`` would treat it alone (for ZoeD_NK each is
        routed by its own vote), in one compiled call."""
        images = np.asarray(images)
        if images.ndim != 4:
            raise ValueError(f"expected a (B, H, W, 3) batch, got shape {images.shape}")
        images = np.stack([as_float_image(x) for x in images]) if images.shape[0] else images
        if images.shape[0] == 0:
            raise ValueError("empty batch")
        h, w = images.shape[1:3]
        pad = infer_padding(h, w) if pad_input else (0, 0)
        check_predictable_size(h, w, pad)
        size = self.network_size(h + 2 * pad[0], w + 2 * pad[1])
        out = _predict(self._model, size, pad, flip_tta, self.params, jnp.asarray(images))
        domain = out.get("domain")
        return Prediction(np.asarray(out["depth"]), None if domain is None else np.asarray(domain),
                          tuple(self.config.domain_names) if domain is not None else ())


@dataclasses.dataclass
class Prediction:
    """``depth`` (B, H, W) float32 metres; for ZoeD_NK ``domain`` (B,) int, the head the router chose for each
    (un-mirrored) image, an index into ``domain_names`` (e.g. ("nyu", "kitti"))."""

    depth: np.ndarray
    domain: np.ndarray | None = None
    domain_names: tuple[str, ...] = ()


MIN_IMAGE_SIDE = 8


def check_predictable_size(height: int, width: int, pad: tuple[int, int]) -> None:
    """Reject images too small to predict (reflect padding needs pad < side)."""
    if min(height, width) < MIN_IMAGE_SIDE or pad[0] >= height or pad[1] >= width:
        raise ValueError(f"image of {height}x{width} pixels is too small: ZoeDepth needs at least "
                         f"{MIN_IMAGE_SIDE}x{MIN_IMAGE_SIDE}")


@functools.partial(jax.jit, static_argnums=(0, 1))
def _forward(model, size, params, images, domain):
    return model.apply({"params": params}, to_network_input(images, size), domain)


@functools.partial(jax.jit, static_argnums=(0, 1, 2, 3))
def _predict(model, size, pad, flip_tta, params, images):
    """images (B, H, W, 3) in [0, 1] -> {"depth": (B, H, W)} (+ "domain" (B,) for NK)."""
    n = images.shape[0]
    x = images
    if any(pad):
        x = reflect_pad(x, *pad)
    if flip_tta:
        x = jnp.concatenate([x, x[:, :, ::-1]], axis=0)  # originals and mirrors in one batch
    # Each image is routed by its own vote, as separate official forwards would be.
    out = model.apply({"params": params}, to_network_input(x, size), vote_per_example=True)
    depth = resize_bicubic(out["metric_depth"][..., None], x.shape[1:3])[..., 0]
    depth = depth[:, pad[0]:depth.shape[1] - pad[0], pad[1]:depth.shape[2] - pad[1]]
    if flip_tta:
        depth = 0.5 * (depth[:n] + depth[n:, :, ::-1])
    result = {"depth": depth}
    if "domain" in out:
        result["domain"] = out["domain"][:n]
    return result


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
    path = Path(path)
    if is_workdir(path):
        return _load_workdir(path, max_depth, input_size)
    if is_converted_dir(path):
        config, params, extras, provenance = load_converted(path)
        if max_depth is not None:
            config = _with_max_depth(config, max_depth)
        return ZoeDepthModel(config, params, extras, provenance, input_size)
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}")
    from zoejax.conversion.convert import convert_state_dict  # reading .pt files needs torch
    from zoejax.conversion.readers import read_checkpoint

    state, hf_config = read_checkpoint(path)
    detected, converted = convert_state_dict(state, hf_config, source=str(path), variant=variant,
                                             max_depth=max_depth)
    provenance = {"source": str(path.absolute()), "format": detected.format, "variant": detected.variant}
    return ZoeDepthModel(detected.config, converted.params, converted.extras, provenance, input_size)


# Files a training work directory holds besides its checkpoints (written by ``zoejax.training.loop``).
INFERENCE_FILE = "inference.json"  # the network input size the run trains at
EXTRAS_FILE = "extras.npz"  # init_from's never-used tensors, for lossless export


def is_workdir(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a training work directory (a model config and a checkpoints folder)."""
    path = Path(path)
    return (path / "checkpoints").is_dir() and (path / CONFIG_FILE).is_file()


def _load_workdir(path: Path, max_depth: float | None, input_size) -> ZoeDepthModel:
    """A training work directory: the model config it wrote and the params of its latest checkpoint."""
    import json

    from zoejax.training.checkpointing import load_params

    config = ZoeDepthConfig.from_dict(json.loads((path / CONFIG_FILE).read_text()))
    params, _, step = load_params(path)
    if max_depth is not None:
        config = _with_max_depth(config, max_depth)
    info = path / INFERENCE_FILE
    if input_size is None and info.is_file():
        input_size = tuple(json.loads(info.read_text())["input_size"])
    extras = {}
    if (path / EXTRAS_FILE).is_file():
        with np.load(path / EXTRAS_FILE, allow_pickle=False) as data:
            extras = {k: data[k] for k in data.files}
    provenance = {"source": str(path.absolute()), "format": "workdir", "step": step}
    return ZoeDepthModel(config, params, extras, provenance, input_size)


def _with_max_depth(config: ZoeDepthConfig, max_depth: float) -> ZoeDepthConfig:
    if config.is_multi_head or config.head.bin_centers_type != "normed":
        raise ValueError("max_depth applies to ZoeD_K (normed bins) only")
    return dataclasses.replace(config, bins=(dataclasses.replace(config.bins[0], max_depth=float(max_depth)),))
