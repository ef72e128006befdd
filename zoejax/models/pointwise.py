"""A 1x1 convolution computed as a matmul over channels.

Same parameters as ``nn.Conv(features, (1, 1))`` (``kernel`` (1, 1, C_in, C_out), ``bias`` (C_out,), the same
initialisers), so checkpoints and converters do not see a difference. XLA:CPU runs a 1x1 ``conv_general_dilated``
at full resolution 3-4x slower than the equivalent ``dot`` (measured in ``benchmarks/RESULTS.md``: 188 ms vs
54 ms for 384x512, 161 -> 80 channels); on GPU/TPU both lower to the same GEMM.
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax.numpy as jnp

from zoejax.ops.platform import GENERIC, OpForms
from zoejax.ops.resize import resize_bilinear

Dtype = jnp.dtype | str


class PointwiseConv(nn.Module):
    """y = concat(inputs, -1) @ kernel + bias, per pixel.

    Several inputs are taken as their channel concatenation without building it: the kernel's rows are split and
    the partial products summed (the concatenation itself was ~5% of the metric head's time on CPU).

    With ``resize_parts=True`` an input (B, h, w, C_i) smaller than the first one stands for its bilinear resize
    (align_corners=True) to the first one's size, and is resized after its product instead: the product is per
    pixel and bilinear weights sum to one, so both orders agree exactly in real arithmetic, and the product
    runs at the low resolution and the resize moves C_out channels instead of C_i.

    Attributes:
      features: output channels.
      use_bias, dtype, param_dtype, kernel_init, bias_init: as ``nn.Conv``.
    """

    features: int
    use_bias: bool = True
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32
    kernel_init: nn.initializers.Initializer = nn.initializers.lecun_normal()
    bias_init: nn.initializers.Initializer = nn.initializers.zeros_init()
    ops: OpForms = GENERIC  # platform-dependent op forms (zoejax.ops.platform): the resize of resize_parts

    @nn.compact
    def __call__(self, inputs: jnp.ndarray | Sequence[jnp.ndarray], *, resize_parts: bool = False) -> jnp.ndarray:
        """(..., C_in) or a sequence of (..., C_i) with sum(C_i) = C_in -> (..., features)."""
        parts = list(inputs) if isinstance(inputs, list | tuple) else [inputs]
        widths = [p.shape[-1] for p in parts]
        kernel = self.param("kernel", self.kernel_init, (1, 1, sum(widths), self.features), self.param_dtype)
        kernel = kernel[0, 0].astype(self.dtype)
        y, start = None, 0
        for part, width in zip(parts, widths, strict=True):
            term = jnp.dot(part.astype(self.dtype), kernel[start:start + width])
            if resize_parts and term.shape[1:3] != parts[0].shape[1:3]:
                term = resize_bilinear(term, parts[0].shape[1:3], align_corners=True, form=self.ops.resize)
            y, start = term if y is None else y + term, start + width
        if self.use_bias:
            y = y + self.param("bias", self.bias_init, (self.features,), self.param_dtype).astype(self.dtype)
        return y
