"""Depth Anything (V1 relative, V2 relative and V2 metric): a DINOv2 encoder and the Depth Anything DPT head.

Parameter tree (names mirror the official torch paths of ``DepthAnything`` / ``DepthAnythingV2``):
  pretrained/...                         the registry's DINOv2 encoder   (official pretrained.*)
  depth_head/projects_{i}, resize_layers_{i}   reassemble               (official depth_head.projects.i, ...)
  depth_head/scratch/...                 fusion and depth output          (official depth_head.scratch.*)
"""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from zoejax.models.backbones.registry import backbone_of
from zoejax.models.config import parse_dtype
from zoejax.models.depth_anything_config import DepthAnythingConfig
from zoejax.models.depth_anything_head import DepthAnythingHead
from zoejax.models.validation import check_image_shape
from zoejax.ops.platform import OpForms, forms_for

# The ImageNet statistics every Depth Anything release normalises with (NormalizeImage in the official transforms).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class DepthAnything(nn.Module):
    """A Depth Anything model (relative or metric, decided by ``config.head.depth_type``).

    Call with ``images`` (B, H, W, 3) float RGB in [0, 1], H and W multiples of the patch size (14), already at the
    network resolution; the model normalises with the ImageNet mean and std as the official transforms do.

    Returns a dict with ``relative_depth`` (B, H, W) float32 (relative inverse depth, >= 0, unitless) or
    ``metric_depth`` (B, H, W) float32 metres in (0, max_depth); with ``return_intermediates=True`` also the
    encoder taps (``encoder_taps``: per tap the (B, H/14, W/14, D) patch map and the (B, D) class token), the
    reassembled maps and the head's features (l4_rn, r4..r1, out_conv; NHWC).

    ``ops``: the form of the platform-dependent ops (``zoejax.ops.platform``); None takes this machine's backend's.
    """

    config: DepthAnythingConfig
    ops: OpForms | None = None

    @nn.compact
    def __call__(self, images: jnp.ndarray, *, return_intermediates: bool = False) -> dict[str, jnp.ndarray]:
        cfg, bc = self.config, self.config.backbone
        check_image_shape(images.shape, multiple=bc.patch_size)
        ops = forms_for(None) if self.ops is None else self.ops
        dtype, pdtype = parse_dtype(cfg.dtype), parse_dtype(cfg.param_dtype)
        mean = jnp.asarray(IMAGENET_MEAN, jnp.float32)
        std = jnp.asarray(IMAGENET_STD, jnp.float32)
        x = (images.astype(jnp.float32) - mean) / std
        taps = backbone_of(bc).encoder(bc, cfg.remat, dtype, pdtype, ops=ops, name="pretrained")(x)
        out = DepthAnythingHead(cfg.head, bc.patch_size, dtype, pdtype, ops, name="depth_head")(
            [patches for patches, _cls in taps])
        result = {cfg.output_key: out["depth"].astype(jnp.float32)}
        if return_intermediates:
            result.update({k: v for k, v in out.items() if k != "depth"})
            result["encoder_taps"] = taps
        return result
