"""A validated, jit-compiled forward: host-side input checks first, so bad input never reaches XLA."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from zoejax.models.config import ZoeDepthConfig
from zoejax.models.validation import check_images
from zoejax.models.zoedepth import ZoeDepth


def make_forward(config: ZoeDepthConfig, *, return_intermediates: bool = False
                 ) -> Callable[..., dict[str, jax.Array]]:
    """Return ``forward(params, images, domain=None) -> dict`` (see ``ZoeDepth`` for the outputs).

    ``images`` (B, H, W, 3) float in [0, 1] with H, W multiples of 32 is checked on the host (rank,
    channels, size, NaN/Inf) and raises ValueError before anything is traced or compiled. The jitted
    function is exposed as ``forward.jitted`` (one compilation per input shape).
    """
    model = ZoeDepth(config)

    @jax.jit
    def jitted(params, images, domain):
        return model.apply({"params": params}, images, domain, return_intermediates=return_intermediates)

    def forward(params: Any, images: Any, domain: Any = None) -> dict[str, jax.Array]:
        images = check_images(images)
        if domain is not None:
            domain = np.asarray(domain, dtype=np.int32).reshape(-1)
            if not config.is_multi_head:
                raise ValueError("domain labels are only meaningful for a multi-head (ZoeD_NK) model")
            if domain.shape[0] != images.shape[0] or domain.min() < 0 or domain.max() >= len(config.bins):
                raise ValueError(f"domain must be {images.shape[0]} labels in [0, {len(config.bins) - 1}] "
                                 f"({', '.join(config.domain_names)}), got {domain.tolist()}")
            domain = jnp.asarray(domain)
        return jitted(params, jnp.asarray(images), domain)

    forward.jitted = jitted
    return forward
