"""Metric-bins building blocks (paper section 3.2-3.3; architecture spec sections 5, 9.8-9.10).

Every module here runs in float32 whatever the model's compute dtype: bin centres, attractor shifts and the
log-binomial's ``y / tau`` (up to ~3e4 in magnitude at tau = 0.0212) are not safe in bfloat16.
All "MLPs per pixel" are 1x1 convolutions named like the torch Sequentials (``_net_0``, ``_net_2``, ``mlp_0``).
Tensors are NHWC with the bins / attractors on the last axis.
"""

from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from zoejax.models.pointwise import PointwiseConv
from zoejax.ops.gelu import gelu_exact
from zoejax.ops.platform import GENERIC, OpForms
from zoejax.ops.resize import resize_bilinear

F32 = jnp.float32
conv1x1 = functools.partial(PointwiseConv, dtype=F32, param_dtype=F32)


def _pow(x: jnp.ndarray, gamma: float) -> jnp.ndarray:
    # Integer powers stay exact for negative x (torch's ``dx.pow(2)``); a float pow would go through log.
    if float(gamma).is_integer():
        return jax.lax.integer_pow(x, int(gamma))
    return jnp.power(jnp.abs(x), gamma)


def inv_attractor(dx: jnp.ndarray, alpha: float = 300.0, gamma: float = 2.0) -> jnp.ndarray:
    """Inverse attractor shift dx / (1 + alpha * dx^gamma) (paper eq. 4; the released models' kind)."""
    return dx / (1.0 + alpha * _pow(dx, gamma))


def exp_attractor(dx: jnp.ndarray, alpha: float = 300.0, gamma: float = 2.0) -> jnp.ndarray:
    """Exponential attractor shift exp(-alpha * |dx|^gamma) * dx (paper eq. 3)."""
    return jnp.exp(-alpha * jnp.power(jnp.abs(dx), gamma)) * dx


def normed_bin_centers(u: jnp.ndarray, min_depth: float, max_depth: float) -> jnp.ndarray:
    """Bounded bin centres from positive widths u (B, h, w, n): normalise, prepend min, cumsum, midpoints."""
    widths = (max_depth - min_depth) * (u / jnp.sum(u, axis=-1, keepdims=True))
    pad = jnp.full(widths.shape[:-1] + (1,), min_depth, widths.dtype)
    edges = jnp.cumsum(jnp.concatenate([pad, widths], axis=-1), axis=-1)
    return 0.5 * (edges[..., :-1] + edges[..., 1:])


def log_binomial_coefficients(n_classes: int) -> np.ndarray:
    """ln C(K-1, k) for k = 0..K-1 in the official Stirling form, with its 1e-7 epsilons, in float32.

    Computed on the host: inside a fused XLA kernel ``(n+e) - (k+e)`` is not guaranteed to round like the
    eager float32 ops, and at k = K-1 that turns ``0 * log(~0)`` into NaN.
    """
    e = np.float32(1e-7)
    k = np.arange(n_classes, dtype=np.float32) + e
    n = np.float32(n_classes - 1) + e
    return (n * np.log(n) - k * np.log(k) - (n - k) * np.log(n - k + e)).astype(np.float32)


def binomial_probabilities(p: jnp.ndarray, temperature: jnp.ndarray, n_classes: int,
                           eps: float = 1e-4) -> jnp.ndarray:
    """softmax over ``n_classes`` bins of the log-binomial with success probability p, divided by the temperature.

    p, temperature: (B, H, W). Returns (B, H, W, K) probabilities. The clamp of 1-p is taken from the unclamped p,
    as the official code does.
    """
    log_q = jnp.log(jnp.clip(1.0 - p, eps, 1.0))
    log_p = jnp.log(jnp.clip(p, eps, 1.0))
    return _tempered_binomial_softmax(log_p, log_q, temperature, n_classes)


def _binomial_logits(log_p, log_q, n_classes: int):
    """ln C(K-1, k) + k ln p + (K-1-k) ln q: (B, H, W) -> (B, H, W, K)."""
    k = jnp.arange(n_classes, dtype=F32)
    n = jnp.asarray(n_classes - 1, F32)
    return jnp.asarray(log_binomial_coefficients(n_classes)) + k * log_p[..., None] + (n - k) * log_q[..., None]


@functools.partial(jax.custom_vjp, nondiff_argnums=(3,))
def _tempered_binomial_softmax(log_p, log_q, temperature, n_classes: int):
    # softmax subtracts the row max: |logits| reaches ~3e4.
    return jax.nn.softmax(_binomial_logits(log_p, log_q, n_classes) / temperature[..., None], axis=-1)


def _tempered_binomial_softmax_fwd(log_p, log_q, temperature, n_classes):
    probs = _tempered_binomial_softmax(log_p, log_q, temperature, n_classes)
    return probs, (probs, log_p, log_q, temperature)


def _tempered_binomial_softmax_bwd(n_classes, residuals, g_probs):
    """The chain rule by hand so that every sum over the K bins is a product (einsum). Autodiff's sums are
    XLA:CPU fused multiply-reduces over a 64-wide minor axis, the pathological case (see the einsum at the end of
    ``MetricBinsHead``): 0.6 s of a BEiT-L train step at 384x512."""
    probs, log_p, log_q, temperature = residuals
    g_z = probs * (g_probs - jnp.einsum("...k,...k->...", g_probs, probs)[..., None])  # softmax backward
    k = np.arange(n_classes, dtype=np.float32)
    basis = np.stack([k, (n_classes - 1) - k, log_binomial_coefficients(n_classes)], axis=-1)  # (K, 3)
    # z_k = (c_k + k ln p + (K-1-k) ln q) / T: g has sum_k g_z k / T, sum_k g_z (K-1-k) / T, sum_k g_z c_k / T.
    g = jnp.einsum("...k,kj->...j", g_z, jnp.asarray(basis)) / temperature[..., None]
    g_log_p, g_log_q = g[..., 0], g[..., 1]
    g_temperature = -(g[..., 2] + log_p * g_log_p + log_q * g_log_q) / temperature
    return g_log_p, g_log_q, g_temperature


_tempered_binomial_softmax.defvjp(_tempered_binomial_softmax_fwd, _tempered_binomial_softmax_bwd)


class SeedBinRegressor(nn.Module):
    """Seed bin centres from the bottleneck: 1x1 conv -> ReLU -> 1x1 conv -> act.

    ``normed`` (ZoeD_K): act = ReLU, +1e-3, normalised widths in [min_depth, max_depth].
    ``softplus`` (ZoeD_N/NK): act = Softplus, the centres are used directly (unbounded, metres).
    """

    n_bins: int
    mlp_dim: int
    bin_centers_type: str
    min_depth: float
    max_depth: float

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        """x: (B, h, w, C) -> metric bin centres (B, h, w, n_bins)."""
        y = conv1x1(self.n_bins, name="_net_2")(nn.relu(conv1x1(self.mlp_dim, name="_net_0")(x)))
        if self.bin_centers_type == "normed":
            return normed_bin_centers(nn.relu(y) + 1e-3, self.min_depth, self.max_depth)
        return nn.softplus(y)


class Projector(nn.Module):
    """Bin embedding: 1x1 conv -> ReLU -> 1x1 conv (no final activation)."""

    out_features: int
    mlp_dim: int

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        return conv1x1(self.out_features, name="_net_2")(nn.relu(conv1x1(self.mlp_dim, name="_net_0")(x)))


class AttractorLayer(nn.Module):
    """Moves the previous level's bin centres towards attractor points predicted from the bin embedding.

    Attributes:
      n_attractors: attractor points per pixel.
      mlp_dim: hidden width of the attractor MLP.
      bin_centers_type: "normed" (ReLU, 2 outputs per attractor of which the even ones are used, as the
        official code does after discarding its own normalisation) or "softplus".
      alpha, gamma, kind ("mean"|"sum"), attractor_type ("inv"|"exp"): the shift function.
      min_depth, max_depth: the normed range.
    """

    n_attractors: int
    mlp_dim: int
    bin_centers_type: str
    alpha: float = 300.0
    gamma: float = 2.0
    kind: str = "mean"
    attractor_type: str = "inv"
    min_depth: float = 1e-3
    max_depth: float = 10.0
    ops: OpForms = GENERIC  # platform-dependent op forms (zoejax.ops.platform): its resizes

    @nn.compact
    def __call__(self, embedding: jnp.ndarray, prev_bins: jnp.ndarray,
                 prev_embedding: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
        """One refinement level.

        Args:
          embedding: (B, h, w, E) this level's projector output.
          prev_bins: (B, h', w', n) previous centres (normalised to [0, 1] for "normed", metres otherwise).
          prev_embedding: (B, h', w', E) previous level's projector output.
        Returns:
          (new_bins, centres): new_bins (B, h, w, n) is what the next level receives (normed: unsorted,
          unclipped, in [0,1] units); centres are this level's metric centres (sorted and clipped if normed).
        """
        h, w = embedding.shape[1:3]
        z = embedding + resize_bilinear(prev_embedding, (h, w), align_corners=True, form=self.ops.resize)
        normed = self.bin_centers_type == "normed"
        outputs = 2 * self.n_attractors if normed else self.n_attractors
        a = conv1x1(outputs, name="_net_2")(nn.relu(conv1x1(self.mlp_dim, name="_net_0")(z)))
        a = (nn.relu(a) + 1e-3)[..., 0::2] if normed else nn.softplus(a)  # (B, h, w, n_att)

        c = resize_bilinear(prev_bins, (h, w), align_corners=True, form=self.ops.resize)  # (B, h, w, n_bins)
        shift = inv_attractor if self.attractor_type == "inv" else exp_attractor
        delta = shift(a[..., :, None] - c[..., None, :], self.alpha, self.gamma)  # (B, h, w, n_att, n_bins)
        delta = jnp.mean(delta, axis=-2) if self.kind == "mean" else jnp.sum(delta, axis=-2)
        new_bins = c + delta
        if not normed:
            return new_bins, new_bins
        centres = (self.max_depth - self.min_depth) * new_bins + self.min_depth
        return new_bins, jnp.clip(jnp.sort(centres, axis=-1), self.min_depth, self.max_depth)


class ConditionalLogBinomial(nn.Module):
    """Per-pixel probabilities over the bins: a binomial whose p and temperature an MLP predicts.

    Attributes:
      n_classes: number of bins K.
      bottleneck_factor: MLP hidden width = input channels // factor.
      min_temp, max_temp: temperature range.
    """

    n_classes: int
    bottleneck_factor: int = 2
    min_temp: float = 0.0212
    max_temp: float = 50.0
    ops: OpForms = GENERIC  # platform-dependent op forms (zoejax.ops.platform): its resize

    @nn.compact
    def __call__(self, main: jnp.ndarray, condition: jnp.ndarray) -> jnp.ndarray:
        """main (B, H, W, Cm) and condition (B, h, w, Cc) -> probabilities (B, H, W, K) summing to 1.

        A smaller ``condition`` is taken at main's size (bilinear, align_corners=True, as the official caller
        resizes it): the first 1x1 conv runs on it at its own size and resizes the result.
        """
        hidden = (main.shape[-1] + condition.shape[-1]) // self.bottleneck_factor
        # = conv of the channel concatenation of main and the resized condition
        s = conv1x1(hidden, ops=self.ops, name="mlp_0")((main, condition), resize_parts=True)
        s = nn.softplus(conv1x1(4, name="mlp_2")(gelu_exact(s))) + 1e-4
        p = s[..., 0] / (s[..., 0] + s[..., 1])
        t = s[..., 2] / (s[..., 2] + s[..., 3])
        temperature = (self.max_temp - self.min_temp) * t + self.min_temp
        return binomial_probabilities(p, temperature, self.n_classes)
