"""The relative-depth model: MiDaS v3.1's DPT (any registered backbone + DPT decoder) without ZoeDepth's metric head.

It is ZoeDepth's ``core`` alone (``zoejax.models.zoedepth.MidasCore``, the same module, so one definition of the
relative path): the parameter tree is ``{"core": ...}``, exactly ZoeDepth's ``core`` subtree, which is why a MiDaS
v3.1 release file (``dpt_beit_large_384.pt``, ``dpt_swin2_*.pt``) loads into it with the MiDaS table and exports
back, and why a relative run's params initialise a ZoeDepth model's ``core``.
"""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from zoejax.models.config import ZoeDepthConfig
from zoejax.models.validation import check_image_shape
from zoejax.models.zoedepth import MidasCore
from zoejax.ops.platform import OpForms, forms_for


class RelativeDepth(nn.Module):
    """MiDaS DPT relative depth (the model the paper's "M12" stage trains).

    Call with ``images`` (B, H, W, 3) float in [0, 1], H and W multiples of 32, at the network resolution; it
    normalises with mean = std = 0.5 as MiDaS does. Returns ``relative_depth`` (B, H, W) float32: a non-negative
    relative inverse depth (disparity up to an unknown scale and shift; no unit). With
    ``return_intermediates=True`` also the decoder features, encoder taps and reassembled maps. Only
    ``config.backbone``, ``config.decoder``, dtypes and remat are read; the head and bin fields are ignored.
    ``ops``: the platform's op forms (``zoejax.ops.platform``); None takes this machine's.
    """

    config: ZoeDepthConfig
    ops: OpForms | None = None

    @nn.compact
    def __call__(self, images: jnp.ndarray, *, return_intermediates: bool = False) -> dict[str, jnp.ndarray]:
        check_image_shape(images.shape, multiple=32)
        x = (images.astype(jnp.float32) - 0.5) / 0.5
        ops = forms_for(None) if self.ops is None else self.ops
        features = MidasCore(self.config, ops, name="core")(x)
        out = {"relative_depth": features["rel_depth"].astype(jnp.float32)}
        if return_intermediates:
            out.update({k: v for k, v in features.items() if k != "rel_depth"})
        return out
