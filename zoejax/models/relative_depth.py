"""The relative-depth model: MiDaS v3.1's DPT (any registered backbone + DPT decoder) without ZoeDepth's metric head.

It is ZoeDepth's ``core`` alone (``zoejax.models.zoedepth.MidasCore``, the same module, so one definition of the
relative path): the parameter tree is ``{"core": ...}``, exactly ZoeDepth's ``core`` subtree, which is why a MiDaS
v3.1 release file (``dpt_beit_large_384.pt``, ``dpt_swin2_*.pt``) loads into it with the MiDaS table and exports
back, and why a relative run's params initialise a ZoeDepth model's ``core``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from zoejax.models.config import ZoeDepthConfig
from zoejax.models.validation import check_image_shape
from zoejax.models.zoedepth import MidasCore
from zoejax.ops.platform import OpForms, forms_for

MODEL_TYPE = "relative"
# The ZoeDepthConfig fields a relative model uses (its encoder and decoder); the metric-head fields are not stored.
CORE_FIELDS = ("backbone", "decoder", "dtype", "param_dtype", "remat")


@dataclasses.dataclass(frozen=True)
class RelativeDepthConfig:
    """The config of a relative-depth model: ``core`` gives its backbone, decoder, dtypes and remat (a
    ``ZoeDepthConfig`` whose metric-head fields are unused). A type of its own so that the model, training and
    inference tables (``family.module_for``, ``objectives``, ``inference_models``) tell it from ZoeDepth."""

    core: ZoeDepthConfig

    # What the training loop, monitoring and summaries read of any family's config.
    @property
    def backbone(self) -> Any:
        return self.core.backbone

    @property
    def decoder(self) -> Any:
        return self.core.decoder

    @property
    def dtype(self) -> str:
        return self.core.dtype

    @property
    def param_dtype(self) -> str:
        return self.core.param_dtype

    @property
    def remat(self) -> Any:
        return self.core.remat

    @property
    def input_multiple(self) -> int:
        """Input height and width must be multiples of this (pixels): the MiDaS core's 32."""
        return self.core.input_multiple

    @property
    def output_key(self) -> str:
        """The forward's depth key: "relative_depth" (relative inverse depth, unitless)."""
        return "relative_depth"

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly: ``model_type: relative`` plus the core's ``CORE_FIELDS`` (inverse of ``from_dict``)."""
        core = self.core.to_dict()
        return {"model_type": MODEL_TYPE, **{k: core[k] for k in CORE_FIELDS}}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RelativeDepthConfig:
        """From ``to_dict``'s form (or a config file's ``model`` section); unknown keys are an error."""
        d = dict(d)
        if d.pop("model_type", MODEL_TYPE) != MODEL_TYPE:
            raise ValueError(f"model.model_type must be {MODEL_TYPE!r} for a relative-depth model")
        unknown = sorted(set(d) - set(CORE_FIELDS))
        if unknown:
            raise ValueError(f"unknown key(s) in model: {unknown}; a relative model has {sorted(CORE_FIELDS)}")
        return cls(ZoeDepthConfig.from_dict(d))


def relative_config(config: ZoeDepthConfig | RelativeDepthConfig) -> RelativeDepthConfig:
    """The relative model on ``config``'s encoder and decoder (a ZoeDepth config's core, without its head)."""
    if isinstance(config, RelativeDepthConfig):
        return config
    if config.core != "midas":
        raise ValueError("a Depth Anything V1 metric model's core is Depth Anything's relative model, not a MiDaS "
                         "one: load a Depth Anything relative checkpoint (preset da1_relative_vitl) instead")
    return RelativeDepthConfig.from_dict({k: v for k, v in config.to_dict().items() if k in CORE_FIELDS})


class RelativeDepth(nn.Module):
    """MiDaS DPT relative depth (the model the paper's "M12" stage trains).

    Call with ``images`` (B, H, W, 3) float in [0, 1], H and W multiples of 32, at the network resolution; it
    normalises with mean = std = 0.5 as MiDaS does. Returns ``relative_depth`` (B, H, W) float32: a non-negative
    relative inverse depth (disparity up to an unknown scale and shift; no unit). With
    ``return_intermediates=True`` also the decoder features, encoder taps and reassembled maps. Only
    ``config.backbone``, ``config.decoder``, dtypes and remat are read; the head and bin fields are ignored.
    ``config``: a ``RelativeDepthConfig`` (what the family table builds it with), or a ZoeDepth config (its core).
    ``ops``: the platform's op forms (``zoejax.ops.platform``); None takes this machine's.
    """

    config: ZoeDepthConfig | RelativeDepthConfig  # a ZoeDepth config: its core's fields
    ops: OpForms | None = None

    @nn.compact
    def __call__(self, images: jnp.ndarray, *, return_intermediates: bool = False) -> dict[str, jnp.ndarray]:
        check_image_shape(images.shape, multiple=32)
        x = (images.astype(jnp.float32) - 0.5) / 0.5
        ops = forms_for(None) if self.ops is None else self.ops
        core = self.config.core if isinstance(self.config, RelativeDepthConfig) else self.config
        features = MidasCore(core, ops, name="core")(x)
        out = {"relative_depth": features["rel_depth"].astype(jnp.float32)}
        if return_intermediates:
            out.update({k: v for k, v in features.items() if k != "rel_depth"})
        return out
