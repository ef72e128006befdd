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

from zoejax.conversion.store import is_converted_dir, load_converted
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
        image = as_float_image(image)
        h, w = image.shape[:2]
        pad = infer_padding(h, w) if pad_input else (0, 0)
        size = self.network_size(h + 2 * pad[0], w + 2 * pad[1])
        depth = _predict(self._model, size, pad, flip_tta, self.params, jnp.asarray(image))
        return np.asarray(depth)


@functools.partial(jax.jit, static_argnums=(0, 1))
def _forward(model, size, params, images, domain):
    return model.apply({"params": params}, to_network_input(images, size), domain)


@functools.partial(jax.jit, static_argnums=(0, 1, 2, 3))
def _predict(model, size, pad, flip_tta, params, image):
    x = image[None]
    if any(pad):
        x = reflect_pad(x, *pad)
    if flip_tta:
        x = jnp.concatenate([x, x[:, :, ::-1]], axis=0)  # original and mirrored in one batch
    # Each image is routed by its own vote, as two separate official forwards would be.
    out = model.apply({"params": params}, to_network_input(x, size), vote_per_example=True)["metric_depth"]
    out = resize_bicubic(out[..., None], x.shape[1:3])[..., 0]
    out = out[:, pad[0]:out.shape[1] - pad[0], pad[1]:out.shape[2] - pad[1]]
    if flip_tta:
        return 0.5 * (out[0] + out[1, :, ::-1])
    return out[0]


def load(path: str | os.PathLike, *, max_depth: float | None = None, variant: str | None = None,
         input_size: tuple[int, int] | None = None) -> ZoeDepthModel:
    """Load a converted zoejax folder, or convert an official / MiDaS / HF checkpoint in memory.

    Args:
      path: a training work directory (its latest checkpoint); a folder written by ``zoejax-convert``; an
        official ``ZoeD_M12_*.pt``; a MiDaS v3.1
        ``dpt_beit_*_384.pt`` (metric head freshly initialised); an HF ``model.safetensors`` or its folder.
      max_depth: ZoeD_K only: 10 (default, the released model's behaviour) or 80 (the paper's KITTI protocol).
      variant: "n" | "k" | "nk" to override detection (for MiDaS files: which head to initialise).
      input_size: the network size target, default 384x512 (384x768 for ZoeD_K).
    """
    path = Path(path)
    if (path / "checkpoints").is_dir() and (path / "model_config.json").is_file():
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


def _load_workdir(path: Path, max_depth: float | None, input_size) -> ZoeDepthModel:
    """A training work directory: the model config it wrote and the params of its latest checkpoint."""
    import json

    from zoejax.training.checkpointing import load_params

    config = ZoeDepthConfig.from_dict(json.loads((path / "model_config.json").read_text()))
    params, _, step = load_params(path)
    if max_depth is not None:
        config = _with_max_depth(config, max_depth)
    provenance = {"source": str(path.absolute()), "format": "workdir", "step": step}
    return ZoeDepthModel(config, params, {}, provenance, input_size)


def _with_max_depth(config: ZoeDepthConfig, max_depth: float) -> ZoeDepthConfig:
    if config.is_multi_head or config.head.bin_centers_type != "normed":
        raise ValueError("max_depth applies to ZoeD_K (normed bins) only")
    return dataclasses.replace(config, bins=(dataclasses.replace(config.bins[0], max_depth=float(max_depth)),))
