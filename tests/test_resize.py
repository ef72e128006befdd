"""zoejax.ops.resize against torch.nn.functional.interpolate."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from zoejax.ops.resize import resize_bicubic, resize_bilinear


def _torch(x_nhwc, size, mode, align_corners):
    t = torch.from_numpy(x_nhwc).permute(0, 3, 1, 2)
    out = F.interpolate(t, size=size, mode=mode, align_corners=align_corners)
    return out.permute(0, 2, 3, 1).numpy()


SIZES = [((12, 16), (24, 32)), ((12, 16), (96, 128)), ((480, 640), (384, 512)), ((47, 47), (47, 63)),
         ((47, 47), (23, 79)), ((7, 5), (7, 5)), ((1, 3), (4, 9)), ((20, 30), (11, 17))]


@pytest.mark.parametrize("align_corners", [True, False])
@pytest.mark.parametrize("in_size,out_size", SIZES)
def test_bilinear_matches_torch(in_size, out_size, align_corners, rng):
    x = rng.normal(size=(2, *in_size, 3)).astype(np.float32)
    ours = np.asarray(resize_bilinear(x, out_size, align_corners=align_corners))
    ref = _torch(x, out_size, "bilinear", align_corners)
    assert ours.shape == ref.shape
    # fp32 index arithmetic reproduces torch; a few floor() ties may differ (architecture spec 9.2).
    assert np.max(np.abs(ours - ref)) < 2e-6


@pytest.mark.parametrize("align_corners", [True, False])
@pytest.mark.parametrize("in_size,out_size", [((12, 16), (24, 32)), ((47, 47), (23, 79)), ((7, 5), (7, 5))])
def test_bilinear_matmul_form_matches_torch_in_fp32_and_the_gather_form_in_bf16(in_size, out_size, align_corners,
                                                                                rng):
    """The TPU form (an interpolation matrix per axis) computes the same resize: float32 at HIGHEST precision to
    torch's 2e-6; bfloat16 within bf16 rounding of the gather form, and their gradients agree."""
    x = rng.normal(size=(2, *in_size, 3)).astype(np.float32)
    ours = np.asarray(resize_bilinear(x, out_size, align_corners=align_corners, form="matmul"))
    assert np.max(np.abs(ours - _torch(x, out_size, "bilinear", align_corners))) < 2e-6
    xb = jnp.asarray(x, jnp.bfloat16)
    forms = [resize_bilinear(xb, out_size, align_corners=align_corners, form=f) for f in ("gather", "matmul")]
    assert all(f.dtype == jnp.bfloat16 for f in forms)
    np.testing.assert_allclose(*(np.asarray(f, np.float32) for f in forms), atol=3e-2)
    ct = rng.normal(size=ours.shape).astype(np.float32)
    grads = [jax.grad(lambda v, f=f: jnp.sum(resize_bilinear(v, out_size, align_corners=align_corners, form=f)
                                             * ct))(x) for f in ("gather", "matmul")]
    np.testing.assert_allclose(grads[0], grads[1], atol=1e-5)
    with pytest.raises(ValueError, match="unknown resize form 'nearest'"):
        resize_bilinear(x, out_size, align_corners=align_corners, form="nearest")


@pytest.mark.parametrize("in_size,out_size", [((384, 512), (572, 746)), ((24, 32), (48, 64)), ((30, 40), (17, 23))])
def test_bicubic_matches_torch(in_size, out_size, rng):
    x = rng.normal(size=(1, *in_size, 1)).astype(np.float32)
    ours = np.asarray(resize_bicubic(x, out_size))
    ref = _torch(x, out_size, "bicubic", False)
    assert np.max(np.abs(ours - ref)) < 5e-6  # torch sums the 16 taps in another order


def test_bilinear_is_not_jax_image_resize(rng):
    """The reason this module exists: jax.image.resize antialiases when downsampling."""
    import jax

    x = rng.random((1, 480, 640, 3)).astype(np.float32)
    ref = _torch(x, (240, 320), "bilinear", True)
    ours = np.asarray(resize_bilinear(x, (240, 320), align_corners=True))
    theirs = np.asarray(jax.image.resize(x, (1, 240, 320, 3), "linear"))
    assert np.max(np.abs(ours - ref)) < 2e-6
    assert np.max(np.abs(theirs - ref)) > 1e-2


def test_resize_other_axes(rng):
    grid = rng.normal(size=(47, 47, 4)).astype(np.float32)
    ours = np.asarray(resize_bilinear(grid, (47, 63), align_corners=False, axes=(0, 1)))
    ref = _torch(grid[None], (47, 63), "bilinear", False)[0]
    assert np.max(np.abs(ours - ref)) < 2e-6
