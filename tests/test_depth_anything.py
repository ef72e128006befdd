"""Depth Anything models (DINOv2 encoder + Depth Anything DPT head) against transformers'
``DepthAnythingForDepthEstimation``: random weights, fp32, at 518x686 and 364x490 on a small-width DINOv2 that keeps
the real patch size (14) and trained grid (37x37, so the position table is really resized), relative and metric;
parameter counts of the full-size V2 metric models against transformers' (meta device); the weight tables' round
trips and detection."""

import dataclasses
import functools

import flax.linen as nn
import jax
import numpy as np
import pytest
import torch
import transformers
from depth_anything_reference import calibrate_last_conv, calibrate_output, state_dict_numpy
from flax.traverse_util import flatten_dict
from numerics import rel_l2

from zoejax.conversion.apply import params_to_state_dict, state_dict_to_params
from zoejax.conversion.depth_anything_table import (
    config_from_hf,
    detect,
    export_defaults,
    hf_config_dict,
    hf_table,
    layout_of,
    official_table,
)
from zoejax.conversion.dinov2_table import for_transformers
from zoejax.models.depth_anything import IMAGENET_MEAN, IMAGENET_STD, DepthAnything
from zoejax.models.depth_anything_config import PRESETS, DepthAnythingConfig
from zoejax.ops.platform import FORMS, GENERIC

TOL = 1e-5


def _fixture(kind: str) -> DepthAnythingConfig:
    """The tiny preset on the real 37x37 trained grid, as a transformers folder converts (its resize rule)."""
    cfg = PRESETS[f"da_tiny_{kind}"]
    return dataclasses.replace(cfg, backbone=for_transformers(dataclasses.replace(cfg.backbone, pretrain_grid=37)))


def _hf_model(cfg: DepthAnythingConfig, seed: int = 0, device: str = "cpu"):
    """transformers' model of ``cfg``: on the meta device (shapes only), or on the CPU with every tensor random
    (built on meta and filled, which skips transformers' own initialisation)."""
    kwargs = hf_config_dict(cfg)
    cls, backbone = kwargs.pop("backbone_config")
    config = transformers.DepthAnythingConfig(backbone_config=getattr(transformers, cls)(**backbone), **kwargs)
    with torch.device("meta"):
        model = transformers.DepthAnythingForDepthEstimation(config).eval()
    if device == "meta":
        return model
    model = model.to_empty(device="cpu")
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("position_embeddings") or "cls_token" in name:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.5)  # a table worth resizing
            elif p.ndim > 1:
                p.copy_(torch.randn(p.shape, generator=gen) * (0.5 / np.sqrt(np.prod(p.shape[1:]))))
            elif "norm" in name and name.endswith("weight"):
                p.copy_(1 + 0.1 * torch.randn(p.shape, generator=gen))
            else:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.1)
    assert not list(model.buffers())  # nothing left uninitialised
    return model


def _shapes(cfg):
    x = jax.ShapeDtypeStruct((1, 28, 28, 3), np.float32)
    return nn.unbox(jax.eval_shape(DepthAnything(cfg).init, jax.random.PRNGKey(0), x)["params"])


def _pixel_values(images):
    return torch.from_numpy(((images - np.float32(IMAGENET_MEAN)) / np.float32(IMAGENET_STD)).transpose(0, 3, 1, 2))


def _reference(model, images):
    """transformers' encoder taps (patch tokens), fusion outputs r4..r1, out_conv (NHWC) and depth for images
    (B, H, W, 3) in [0, 1], from one forward."""
    seen = {}
    hooks = [model.backbone.register_forward_hook(lambda m, a, out: seen.update(taps=out.feature_maps)),
             model.neck.register_forward_hook(lambda m, a, out: seen.update(fused=out)),
             model.head.activation1.register_forward_hook(lambda m, a, out: seen.update(out_conv=out))]
    with torch.no_grad():
        depth = model(_pixel_values(images)).predicted_depth
    for hook in hooks:
        hook.remove()
    gh, gw = images.shape[1] // 14, images.shape[2] // 14
    out = {f"r{4 - i}": f.permute(0, 2, 3, 1).numpy() for i, f in enumerate(seen["fused"])}
    out.update(out_conv=seen["out_conv"].permute(0, 2, 3, 1).numpy(), depth=depth.numpy(),
               taps=[t[:, 1:].numpy().reshape(t.shape[0], gh, gw, -1) for t in seen["taps"]])
    return out


def _errors(cfg, got, expected):
    errors = {f"tap{i}": rel_l2(a, b)
              for i, ((a, _), b) in enumerate(zip(got["encoder_taps"], expected["taps"], strict=True))}
    errors.update({k: rel_l2(got[k], expected[k]) for k in ("r4", "r3", "r2", "r1", "out_conv")})
    errors["depth"] = rel_l2(got[cfg.output_key], expected["depth"])
    return errors


@functools.lru_cache(maxsize=1)
def _pair(kind, ops):
    cfg = _fixture(kind)
    ref = _hf_model(cfg, seed=1)
    with torch.no_grad():
        taps = ref.backbone(_pixel_values(_images((364, 490), 0))).feature_maps
    calibrate_output(ref, [t.numpy() for t in taps], (26, 35))
    params = state_dict_to_params(state_dict_numpy(ref), hf_table(cfg, "module"), _shapes(cfg)).params
    module = DepthAnything(cfg, ops=ops)
    forward = jax.jit(lambda p, x: module.apply({"params": p}, x, return_intermediates=True))
    return cfg, ref, params, forward


def _images(size, seed):
    return np.random.default_rng(seed).random((1, *size, 3), dtype=np.float32)


# Both kinds at both sizes; each size once under the CPU op forms and once under the generic (GPU/TPU) ones.
@pytest.mark.parametrize("kind,size,ops", [("relative", (518, 686), "cpu"), ("relative", (364, 490), "generic"),
                                           ("metric", (364, 490), "cpu"), ("metric", (518, 686), "generic")])
def test_model_matches_transformers(kind, size, ops):
    cfg, ref, params, forward = _pair(kind, GENERIC if ops == "generic" else FORMS["cpu"])
    images = _images(size, sum(size))
    expected = _reference(ref, images)
    got = jax.device_get(forward(params, images))
    depth = got[cfg.output_key]
    assert depth.shape == (1, *size) and depth.dtype == np.float32
    errors = _errors(cfg, got, expected)
    print(kind, size, ops, {k: f"{v:.1e}" for k, v in errors.items()})
    assert all(v <= TOL for v in errors.values()), errors
    if kind == "metric":
        assert np.mean((depth > 1) & (depth < 19)) > 0.8 and depth.std() > 1.0
    else:
        assert depth.min() >= 0 and 0.2 < (depth > 0).mean() < 0.8


# transformers' count includes two tensors the forward never uses: DINOv2's mask_token (D) and refinenet4's first
# residual unit (two 3x3 convs of the fusion width); zoejax keeps them as extras.
@pytest.mark.parametrize("name,expected", [("da2_metric_hypersim_vits", 24_785_089),
                                           ("da2_metric_vkitti_vitb", 97_470_785),
                                           ("da2_metric_hypersim_vitl", 335_315_649)])
def test_param_counts_equal_transformers(name, expected):
    cfg = PRESETS[name]
    ours = sum(int(np.prod(v.shape)) for v in jax.tree_util.tree_leaves(_shapes(cfg)))
    f, d = cfg.head.features, cfg.backbone.embed_dim
    unused = d + 2 * (9 * f * f + f)
    theirs = sum(p.numel() for p in _hf_model(cfg, device="meta").parameters())
    print(name, f"zoejax {ours:,} + unused {unused:,} = transformers {theirs:,}")
    assert ours + unused == theirs == expected


@pytest.mark.parametrize("name,size", [("da2_relative_vits", (364, 490)), ("da2_metric_hypersim_vits", (518, 686))])
def test_full_size_da2_small_matches_transformers(name, size):
    """The released DA2 ViT-S architectures themselves (relative, and metric with 24.8M parameters; random
    weights), one at each size."""
    cfg = PRESETS[name]
    cfg = dataclasses.replace(cfg, backbone=for_transformers(cfg.backbone))
    ref = _hf_model(cfg, seed=5)
    images = _images(size, 7)
    expected = _reference(ref, images)
    expected["depth"] = calibrate_last_conv(ref, torch.from_numpy(expected["out_conv"]).permute(0, 3, 1, 2)).numpy()
    params = state_dict_to_params(state_dict_numpy(ref), hf_table(cfg, "module"), _shapes(cfg)).params
    got = jax.device_get(jax.jit(lambda p, x: DepthAnything(cfg).apply({"params": p}, x, return_intermediates=True))(
        params, images))
    errors = _errors(cfg, got, expected)
    print(name, size, {k: f"{v:.1e}" for k, v in errors.items()})
    assert all(v <= TOL for v in errors.values()), errors
    depth = got[cfg.output_key]
    assert depth.shape == (1, *size)
    if cfg.head.depth_type == "metric":
        assert 0 < depth.min() and depth.max() < cfg.head.max_depth and depth.std() > 1.0
    else:
        assert 0.2 < (depth > 0).mean() < 0.8


def test_round_trips_and_detection():
    cfg = _fixture("metric")
    ref = _hf_model(cfg, seed=2)
    hf_state = state_dict_numpy(ref)
    hf_json = ref.config.to_dict()
    assert layout_of(hf_state) == ("hf_depth_anything", "module")
    assert config_from_hf(hf_state, hf_json, "module") == cfg
    shapes = _shapes(cfg)
    module_table = hf_table(cfg, "module")
    converted = state_dict_to_params(hf_state, module_table, shapes)
    assert sorted(converted.extras) == ["encoder.mask_token.weight"[:-7]] + sorted(
        f"refinenet4.resConfUnit1.conv{i}.{p}" for i in (1, 2) for p in ("weight", "bias"))

    def same_params(a, b):
        fa, fb = flatten_dict(a), flatten_dict(b)
        return fa.keys() == fb.keys() and all(np.array_equal(fa[k], fb[k]) for k in fa)

    back = params_to_state_dict(converted.params, module_table, converted.extras)
    assert back.keys() == hf_state.keys() and all(np.array_equal(back[k], hf_state[k]) for k in hf_state)
    for table, fmt in ((hf_table(cfg, "file"), ("hf_depth_anything", "file")),
                       (official_table(cfg), ("depth_anything", ""))):
        state = params_to_state_dict(converted.params, table, converted.extras)
        assert layout_of(state) == fmt
        again = state_dict_to_params(state, table, shapes)
        assert same_params(again.params, converted.params)
        assert all(np.array_equal(again.extras[k], converted.extras[k]) for k in converted.extras)
    # A model that never had the unused tensors exports them initialised, and the official .pth is complete.
    fresh = params_to_state_dict(converted.params, official_table(cfg), None, export_defaults(cfg))
    assert not np.any(fresh["pretrained.mask_token"])
    assert "depth_head.scratch.refinenet4.resConfUnit1.conv1.weight" in fresh


def test_detect_official_files():
    cfg = PRESETS["da2_metric_vkitti_vits"]
    state = {k: np.zeros(v.shape, np.float32) for k, v in params_to_state_dict(
        jax.tree_util.tree_map(lambda s: np.zeros(s.shape, np.float32), _shapes(cfg)), official_table(cfg), None,
        export_defaults(cfg)).items()}
    assert detect(state, source="ckpt/depth_anything_v2_metric_vkitti_vits.pth").config == cfg
    assert detect(state, source="depth_anything_v2_vits.pth").preset == "da2_relative_vits"
    assert detect(state, source="x/depth_anything_vits14.pth").config.backbone.hooks == (8, 9, 10, 11)
    assert detect(state, preset="da2_metric_hypersim_vits").config.head.max_depth == 20.0
    with pytest.raises(ValueError, match="V1 or V2, relative or metric"):
        detect(state, source="model.pth")
    with pytest.raises(ValueError, match="does not match the weights' encoder.*da2_relative_vits"):
        detect(state, preset="da2_relative_vitl")



def test_config_dict_round_trip():
    """The config survives its JSON form (what a converted folder's model_config.json holds); a ZoeDepth one is
    refused by name. (bfloat16 and remat of the encoder are tests/test_dinov2.py's.)"""
    for name in ("da_tiny_metric", "da1_relative_vitl", "da2_metric_vkitti_vitb"):
        assert DepthAnythingConfig.from_dict(PRESETS[name].to_dict()) == PRESETS[name]
    with pytest.raises(ValueError, match="model_type"):
        DepthAnythingConfig.from_dict({**PRESETS["da_tiny_metric"].to_dict(), "model_type": "zoedepth"})
    with pytest.raises(ValueError, match="unknown key"):
        DepthAnythingConfig.from_dict({**PRESETS["da_tiny_metric"].to_dict(), "bins": []})
