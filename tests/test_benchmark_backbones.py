"""``benchmarks/backbones.py``'s Depth Anything entries on the tiny DINOv2: each PyTorch reference computes what
zoejax computes from the same weights (for DA1 metric, composed from transformers' Depth Anything and its ZoeDepth
metric head: the encoder taps and every stage ZoeDepth reads compared) at 518x686 and 364x490, its output is not
degenerate, and sizes are checked against the patch before anything is built. (The timings themselves are the
benchmark's, never a test's.)"""

import os
import sys

import jax
import numpy as np
import pytest
import torch
from numerics import rel_l2

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "benchmarks"))

import backbones  # noqa: E402
import depth_anything_torch  # noqa: E402

from zoejax.models.family import module_for  # noqa: E402

pytestmark = pytest.mark.usefixtures("fast_compiles")  # small configs: XLA optimisations cost more than they save

# Non-square token grids (37x49, 26x35): the fixture's 4x4 position table is resized.
SIZES = [(518, 686), (364, 490)]
TOL = 1e-5


def _nhwc(t: torch.Tensor) -> np.ndarray:
    return t.permute(0, 2, 3, 1).numpy()


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("name", backbones.DEPTH_ANYTHING)
def test_reference_matches_zoejax_on_the_same_weights(name, size):
    cfg = backbones.model_config(name, tiny=True)
    ref, params = depth_anything_torch.reference_and_params(cfg, seed=0)
    images = np.random.default_rng(1).random((1, *size, 3), dtype=np.float32)
    seen = {}
    core = getattr(ref, "core", ref)
    hooks = [core.backbone.register_forward_hook(lambda m, a, out: seen.update(taps=[
                 t[:, 1:].numpy() for t in out.feature_maps])),  # patch tokens, cls dropped
             core.neck.convs[-1].register_forward_hook(lambda m, a, out: seen.update(l4_rn=_nhwc(out))),
             core.neck.register_forward_hook(lambda m, a, out: seen.update(
                 {f"r{4 - i}": _nhwc(f) for i, f in enumerate(out)})),
             core.head.activation1.register_forward_hook(lambda m, a, out: seen.update(out_conv=_nhwc(out))),
             core.register_forward_hook(lambda m, a, out: seen.update(rel=out.predicted_depth.numpy()))]
    with torch.no_grad():
        expected = ref(pixel_values=backbones.reference_pixels(cfg, images)).predicted_depth.numpy()
    for hook in hooks:
        hook.remove()
    got = jax.device_get(jax.jit(lambda p, x: module_for(cfg).apply({"params": p}, x, return_intermediates=True))(
        params, images))
    depth = got[backbones.output_key(cfg)]
    errors = {"depth": rel_l2(depth, expected)}
    errors.update({f"tap{i}": rel_l2(np.asarray(patches).reshape(want.shape), want)
                   for i, ((patches, _), want) in enumerate(zip(got["encoder_taps"], seen["taps"], strict=True))})
    errors.update({k: rel_l2(got[k], seen[k]) for k in ("l4_rn", "r4", "r3", "r2", "r1", "out_conv")})
    relative = got["rel_depth" if name == "da1_metric_n" else "relative_depth"]
    errors["relative"] = rel_l2(relative, seen["rel"])
    print(name, size, {k: f"{v:.1e}" for k, v in errors.items()})
    assert depth.shape == expected.shape == (1, *size)
    assert all(v <= TOL for v in errors.values()), errors
    # The calibrated relative output is neither all clipped nor all positive; the metric depth varies by pixels.
    assert 0.2 < (relative > 0).mean() < 0.8
    if name == "da1_metric_n":
        assert depth.min() > 0 and depth.std() > 0.05 * depth.mean()


def test_sizes_are_checked_against_the_patch_and_defaults_differ_by_family():
    da, zoe = backbones.model_config("da2_vitl", tiny=False), backbones.model_config("beit_l384", tiny=False)
    assert backbones.input_size("da2_vitl", da, None) == (518, 686)
    assert backbones.input_size("beit_l384", zoe, None) == (384, 512)
    with pytest.raises(ValueError, match=r"--size 384x512 does not fit da2_vitl: .* multiples of 14 \(e.g. 378x518\)"):
        backbones.input_size("da2_vitl", da, (384, 512))
    with pytest.raises(ValueError, match="multiples of 32"):
        backbones.input_size("beit_l384", zoe, (518, 686))
    with pytest.raises(ValueError, match="unknown entry 'da3'.*da2_vitl, da1_metric_n"):
        backbones.model_config("da3", tiny=False)
    with pytest.raises(ValueError, match="--tiny applies to the Depth Anything entries"):
        backbones.model_config("beit_l384", tiny=True)
