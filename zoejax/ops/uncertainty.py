"""Per-pixel depth uncertainty: the spread of the metric-bins distribution, flip disagreement, and a 0-1 confidence.

Two signals, both standard deviations in metres:
  * the bins: ZoeDepth predicts a distribution over bin centres per pixel (the conditional log-binomial) and
    takes its mean as the depth; its standard deviation says how spread the model's belief is;
  * flip disagreement: with flip averaging the depth is the mean of the image's and its mirror's prediction,
    and half their difference is how much the model disagrees with itself. It is the only signal of a model
    without bins (the naive head, relative-depth and Depth Anything models).
With both, the depth of a flip-averaged prediction is the mean of an equal mixture of the two passes'
distributions, whose variance (law of total variance) is the mean of their variances plus the squared half
difference of their means: ``mixture_std``.
"""

from __future__ import annotations

import jax.numpy as jnp


def mixture_std(depth_a: jnp.ndarray, depth_b: jnp.ndarray, std_a: jnp.ndarray | None = None,
                std_b: jnp.ndarray | None = None) -> jnp.ndarray:
    """The standard deviation (metres) of an equal mixture of two per-pixel distributions with means ``depth_a``,
    ``depth_b`` and standard deviations ``std_a``, ``std_b`` (None: point masses, flip disagreement alone).
    All (..., H, W) metres."""
    variance = jnp.square(0.5 * (depth_a - depth_b))
    if std_a is not None and std_b is not None:
        variance = variance + 0.5 * (jnp.square(std_a) + jnp.square(std_b))
    return jnp.sqrt(variance)


def confidence_from_std(depth: jnp.ndarray, std: jnp.ndarray) -> jnp.ndarray:
    """A 0-1 confidence per pixel of each image: 1 / (1 + std / m), m the image's median std over its valid
    pixels, so 1 for a certain pixel, 0.5 as uncertain as the image's typical pixel, -> 0 far above it. Ranked
    within an image it is the std's order, whatever the depth scale (a room in metres or a street in tens of
    metres); it does not compare images with each other (the std in metres does). Absolute, not relative to the
    depth: the std divided by the depth ranked errors worse on the synthetic test scenes (far walls have a small
    relative spread but the largest errors). depth, std: (B, H, W) metres; pixels with depth <= 0 get 0."""
    valid = depth > 0
    typical = jnp.nanmedian(jnp.where(valid, std, jnp.nan), axis=(-2, -1), keepdims=True)
    typical = jnp.maximum(jnp.nan_to_num(typical, nan=1.0), 1e-6)  # an image without valid pixels
    return jnp.where(valid, 1.0 / (1.0 + std / typical), 0.0)
