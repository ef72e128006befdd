"""Depth Anything V1 metric: ZoeDepth's metric head on the Depth Anything core (DINOv2 + the Depth Anything DPT head).

Parity by composition: the core's tensors equal those of ``DepthAnything`` (DINOv2 + DPT head, parity-tested against
transformers in test_depth_anything.py) run on the same weights, and the metric depth equals ZoeDepth's metric head
(parity-tested in test_parity*.py) applied to them. The full-size parameter counts are the official model's.
"""

import dataclasses
import json

import jax
import numpy as np
import pytest
from numerics import random_params

from zoejax.models import presets
from zoejax.models.config import ZoeDepthConfig
from zoejax.models.depth_anything import DepthAnything
from zoejax.models.depth_anything_config import DepthAnythingConfig
from zoejax.models.depth_anything_core import head_config
from zoejax.models.heads import MetricBinsHead
from zoejax.models.init import count_params, param_shapes
from zoejax.models.zoedepth import ZoeDepth

pytestmark = pytest.mark.usefixtures("fast_compiles")  # both sides of each comparison compile alike

SIZE = (28, 42)  # non-square, multiples of 14 (a 2x3 token grid: the 4x4 fixture position table is resized)


@pytest.fixture(scope="module")
def fixture():
    cfg = presets.da1_metric_n(presets.DA1_METRIC_TINY)
    params = random_params(cfg, seed=0)
    images = np.random.default_rng(1).uniform(0, 1, (2, *SIZE, 3)).astype(np.float32)
    out = jax.jit(lambda p, x: ZoeDepth(cfg).apply({"params": p}, x, return_intermediates=True))(params, images)
    return cfg, params, images, out


def test_forward_gives_finite_metric_depth_inside_the_bins(fixture):
    cfg, _, _, out = fixture
    depth = np.asarray(out["metric_depth"])
    assert depth.shape == (2, *SIZE) and np.asarray(out["rel_depth"]).shape == (2, *SIZE)
    assert np.all(np.isfinite(depth)) and depth.min() > 0
    centres = np.asarray(out["bin_centers"])  # a probability-weighted mean of the final centres
    assert centres.shape[-1] == cfg.bins[0].n_bins
    assert centres.min() - 1e-5 <= depth.min() and depth.max() <= centres.max() + 1e-5
    assert depth.std() > 0  # not a constant map
    # The DPT head's maps at 14-pixel-patch sizes: l4_rn at the token grid / 2 (rounded up), r4..r1 at 1..8x it.
    grid = (SIZE[0] // 14, SIZE[1] // 14)
    assert out["l4_rn"].shape[1:3] == (1, 2)
    for k, level in enumerate(("r4", "r3", "r2", "r1")):
        assert out[level].shape[1:3] == (grid[0] * 2 ** k, grid[1] * 2 ** k)
    assert out["out_conv"].shape == (2, *SIZE, cfg.decoder.num_relative_features)


def test_core_equals_depth_anything_and_head_equals_zoedepth_on_the_same_weights(fixture):
    cfg, params, images, out = fixture
    da_cfg = DepthAnythingConfig(backbone=cfg.backbone, head=head_config(cfg))
    da = jax.jit(lambda p, x: DepthAnything(da_cfg).apply({"params": p}, x, return_intermediates=True))(
        params["core"], images)
    assert set(params["core"]) == {"pretrained", "depth_head"}
    np.testing.assert_allclose(out["rel_depth"], da["relative_depth"], rtol=1e-6, atol=1e-6)
    for key in ("l4_rn", "r4", "r3", "r2", "r1", "out_conv"):
        np.testing.assert_allclose(out[key], da[key], rtol=1e-6, atol=1e-6, err_msg=key)
    for (patches, cls), (da_patches, da_cls) in zip(out["encoder_taps"], da["encoder_taps"], strict=True):
        np.testing.assert_allclose(patches, da_patches, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(cls, da_cls, rtol=1e-6, atol=1e-6)
    features = {k: da[k] for k in ("l4_rn", "r4", "r3", "r2", "r1", "out_conv")}
    features["rel_depth"] = da["relative_depth"]
    head = MetricBinsHead(cfg.head, cfg.bins[0], cfg.decoder.features)
    metric = jax.jit(lambda p, f: head.apply({"params": p}, f)["metric_depth"])(params["metric_head"], features)
    np.testing.assert_allclose(out["metric_depth"], metric, rtol=1e-6, atol=1e-6)


def test_input_multiple_is_the_patch_size():
    cfg = presets.da1_metric_n(presets.DA1_METRIC_TINY)
    assert cfg.input_multiple == 14 and presets.zoed_n("tiny").input_multiple == 32
    bad = jax.ShapeDtypeStruct((1, 28, 40, 3), np.float32)
    with pytest.raises(ValueError, match="multiples of 14, got 28x40"):
        jax.eval_shape(ZoeDepth(cfg).init, jax.random.key(0), bad)


def test_config_round_trips_with_its_core_and_rejects_a_core_without_dinov2():
    for make in presets.DA1_METRIC_VARIANTS.values():
        cfg = make()
        back = ZoeDepthConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
        assert back == cfg and back.core == "depth_anything"
    old = presets.zoed_n("tiny").to_dict()
    del old["core"]  # written before the field existed: the MiDaS core
    assert ZoeDepthConfig.from_dict(old).core == "midas"
    with pytest.raises(ValueError, match="core='unet' is not one of"):
        ZoeDepthConfig.from_dict({**old, "core": "unet"})
    with pytest.raises(ValueError, match="needs a DINOv2 backbone"):
        dataclasses.replace(presets.zoed_n("tiny"), core="depth_anything")


def test_full_size_parameter_counts_are_the_official_models():
    """The official 335,793,794 (``count_parameters(include_all=True)``) = zoejax's parameters + the two tensors it
    keeps as extras: DINOv2's mask_token (1 x 1024) and refinenet4's never-called first residual unit."""
    shapes = param_shapes(presets.da1_metric_n())
    assert count_params(shapes) == 334_612_610
    assert count_params(shapes["core"]["pretrained"]) == 304_367_616  # 304,368,640 with the mask token
    assert count_params(shapes["core"]["depth_head"]) == 29_766_849  # 30,947,009 with the unused unit
    assert count_params(shapes["metric_head"]) == 478_145
    unused_unit = 2 * (256 * 256 * 9 + 256)
    assert count_params(shapes) + 1024 + unused_unit == 335_793_794
