"""The one table of platform-dependent op forms, and the choice of a row from the target platform.

Three ops have a CPU form of their own, measured faster on XLA:CPU and slower or pointless elsewhere:
attention (``zoejax.ops.attention``: a loop over heads against one batched product), convolutions
(``zoejax.ops.conv``: matrix-product forms and a matmul kernel gradient, optionally Winograd for wide float32
3x3s, against XLA's own convolution) and the gradient barrier (``zoejax.ops.grad_barrier``: a conditional
against ``lax.optimization_barrier``). Two have a TPU form, chosen by the compiler's cost model for a v5p
(``benchmarks/tpu_aot.py``): BEiT's biased attention as Pallas kernels (``zoejax.ops.fused_attention``) and
bilinear resizes as interpolation matrices (``zoejax.ops.resize``) instead of gathers. Which form a model uses
is an ``OpForms`` value carried as a module field from the model's top (``ZoeDepth(config, ops=...)``) down to
every op, as MaxText carries its ``attention`` setting: it is part of the module, hence of jax's trace-cache
key, so nothing global is switched and no cache has to be cleared. The builder of a model chooses it once
from the platform the program is for: this machine's backend for a jitted run (``ops=None``), the export's
platforms for ``jax.export`` and ``"tpu"`` for a TPU AOT compile.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import jax

ATTENTION_FORMS = ("per_head", "batched", "fused")
CONV_FORMS = ("products", "xla")
BARRIER_FORMS = ("cond", "optimization_barrier")
RESIZE_FORMS = ("gather", "matmul")  # zoejax.ops.resize


@dataclasses.dataclass(frozen=True)
class OpForms:
    """The form each platform-dependent op takes (frozen and hashable: a flax module field).

    attention: "per_head" (``lax.map`` over heads and examples, one (N, N) slab at a time: CPU), "batched"
      (``jax.nn.dot_product_attention``, the relative-position bias expanded by a one-hot product: GPU) or
      "fused" (biased attention as Pallas TPU kernels, ``zoejax.ops.fused_attention``, the bias expanded as for
      "batched"; attention without a bias stays batched: TPU).
    conv: "products" (1x1, patchify and small strided convolutions as matrix products, stride-1 kernel gradients
      as products: CPU) or "xla" (``lax.conv_general_dilated`` unchanged).
    winograd: with conv="products", wide float32 3x3 "SAME" convolutions run as Winograd F(2x2, 3x3).
    barrier: how ``gradient_barrier`` materialises a cotangent: "cond" (XLA:CPU expands optimization barriers
      before fusion, a conditional stops it) or "optimization_barrier".
    resize: the models' bilinear resizes: "gather" (taps gathered; exact to PyTorch in float32) or "matmul" (an
      interpolation matrix per axis: TPU, whose gathers and scatter-add gradients are slow).
    """

    attention: str = "batched"
    conv: str = "xla"
    winograd: bool = False
    barrier: str = "optimization_barrier"
    resize: str = "gather"

    def __post_init__(self):
        for field, allowed in (("attention", ATTENTION_FORMS), ("conv", CONV_FORMS), ("barrier", BARRIER_FORMS),
                               ("resize", RESIZE_FORMS)):
            if getattr(self, field) not in allowed:
                raise ValueError(f"unknown {field} form {getattr(self, field)!r}; expected one of {allowed}")
        if self.winograd and self.conv != "products":
            raise ValueError("winograd=True needs conv='products' (Winograd is one of the CPU forms)")


# One row per platform kind: "cpu" and "tpu" have forms of their own, the GPUs take the generic ones.
GENERIC = OpForms()
FORMS: dict[str, OpForms] = {
    "cpu": OpForms(attention="per_head", conv="products", winograd=True, barrier="cond"),
    "tpu": OpForms(attention="fused", resize="matmul"),
    "gpu": GENERIC, "cuda": GENERIC, "rocm": GENERIC,
}
# For XLA's cost analysis: it counts a ``lax.map`` body once rather than per step and Winograd's cheaper
# arithmetic instead of the model's, so FLOP counts are taken over the generic forms.
ANALYSIS = GENERIC


def forms_for(platforms: str | Sequence[str] | None = None) -> OpForms:
    """The ``OpForms`` for a program that runs on ``platforms`` (``jax.export`` names: "cpu", "cuda", "rocm",
    "tpu"; a single name or a list; None: this machine's backend, ``jax.default_backend()``). A platform's own
    forms only when every platform is that one: a program exported for several platforms must run on each
    (a Pallas TPU kernel does not) and be fast on the accelerators, so it gets the generic forms."""
    if platforms is None:
        platforms = [jax.default_backend()]
    elif isinstance(platforms, str):
        platforms = [platforms]
    names = [p.lower() for p in platforms]
    if not names:
        raise ValueError("forms_for needs at least one platform")
    unknown = sorted(set(names) - set(FORMS))
    if unknown:
        raise ValueError(f"unknown platform(s) {unknown}; expected any of {sorted(FORMS)}")
    return FORMS[names[0]] if len(set(names)) == 1 else GENERIC
