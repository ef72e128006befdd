"""3x3 stride-1 convolution by Winograd's minimal filtering algorithm F(2x2, 3x3).

Each 2x2 output tile is computed from the 4x4 input tile around it as

    Y = A^T [ (G k G^T) * (B^T d B) ] A

with the elementwise product summed over input channels, i.e. 16 matrix products (tiles x C) @ (C x O), one per
position of the 4x4 transformed tile: 16 multiplications per 2x2 output tile against 36 for the direct form,
2.25x fewer multiply-adds. The transforms only add, subtract and halve, so the result differs from the direct
convolution by float rounding alone: ~6e-7 relative (L2) in float32 for DPT's 256-channel maps.

XLA:CPU runs DPT's wide 3x3 convolutions as direct convolutions at about its GEMM rate; in this form the same
convolutions take 0.5-0.8x the time (BEiT-L's decoder at 384x512: 96x128 256->256 90 -> 69 ms, 24x32
1024->256 30 -> 16 ms, minima of 15 alternated calls on CPU-2). Narrow or very large maps (128->32 at 384x512)
are slower this way: the products are thin and the transformed input is 4x the map, so ``zoejax.ops.conv`` uses
it for wide float32 convolutions only.

B^T = [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]]
G   = [[1, 0, 0], [1/2, 1/2, 1/2], [1/2, -1/2, 1/2], [0, 0, 1]]
A^T = [[1, 1, 1, 0], [0, 1, -1, -1]]
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def _input_transform(d0, d1, d2, d3):
    """B^T d along one axis: four rows (or columns) of a 4-wide tile -> four transformed ones."""
    return [d0 - d2, d1 + d2, d2 - d1, d1 - d3]


def _kernel_transform(k0, k1, k2):
    """G k along one axis: three kernel taps -> four transformed ones."""
    return [k0, (k0 + k1 + k2) * 0.5, (k0 - k1 + k2) * 0.5, k2]


def _output_transform(m0, m1, m2, m3):
    """A^T m along one axis: four transformed values -> the two outputs of the tile."""
    return [m0 + m1 + m2, m1 - m2 - m3]


def winograd_conv3x3(x: jax.Array, kernel: jax.Array, precision=None) -> jax.Array:
    """Stride-1 3x3 convolution with zero padding 1 on each side ("SAME"), no bias.

    x (B, H, W, C), kernel (3, 3, C, O) HWIO -> (B, H, W, O): the values of
    ``lax.conv_general_dilated(x, kernel, (1, 1), ((1, 1), (1, 1)))`` up to float rounding. Any H, W >= 1:
    odd sizes are padded to whole tiles and cropped.
    """
    b, h, w, c = x.shape
    if kernel.shape[:3] != (3, 3, c):
        raise ValueError(f"kernel {kernel.shape} is not (3, 3, {c}, O) for input {x.shape}")
    th, tw = -(-h // 2), -(-w // 2)
    # Tile (i, j) reads padded rows 2i..2i+3 and columns 2j..2j+3. Viewing the padded map as pairs of rows
    # (i, 0/1) and pairs of columns makes every read a unit-stride slice, which XLA:CPU fuses into one pass;
    # strided slices of the map ran 4x slower.
    xp = jnp.pad(x, ((0, 0), (1, 2 * th + 1 - h), (1, 2 * tw + 1 - w), (0, 0)))
    xp = xp.reshape(b, th + 1, 2, tw + 1, 2, c)
    rows = _input_transform(xp[:, :-1, 0], xp[:, :-1, 1], xp[:, 1:, 0], xp[:, 1:, 1])  # 4 x (B, th, tw+1, 2, C)
    tiles = [t for r in rows
             for t in _input_transform(r[:, :, :-1, 0], r[:, :, :-1, 1], r[:, :, 1:, 0], r[:, :, 1:, 1])]

    kernel = kernel.astype(x.dtype)
    taps = [t for r in _kernel_transform(kernel[0], kernel[1], kernel[2])
            for t in _kernel_transform(r[0], r[1], r[2])]  # 16 x (C, O)

    # Sixteen separate products rather than one batched product: the stacked operands cost a concatenation of
    # the transformed input (4x the map), which was slower than the products it fed.
    m = [jnp.dot(t, k, precision=precision) for t, k in zip(tiles, taps, strict=True)]  # 16 x (B, th, tw, O)

    rows = [_output_transform(*m[4 * a:4 * a + 4]) for a in range(4)]  # rows[a][dj]
    out = [_output_transform(*(rows[a][dj] for a in range(4))) for dj in range(2)]  # out[dj][di]
    y = jnp.stack([jnp.stack([out[0][di], out[1][di]], axis=3) for di in range(2)], axis=2)  # B, th, 2, tw, 2, O
    return y.reshape(b, 2 * th, 2 * tw, -1)[:, :h, :w]
