"""Depth Anything V1 metric checkpoints (``depth_anything_metric_depth_{indoor,outdoor}.pt``) through zoejax-convert
and back: the official layout (455 keys at full size), detection of the indoor / outdoor / normed / NK heads, a
random-weight tiny file converted and exported bit-exact (the unused mask token and residual unit kept as extras),
and ``zoejax.load`` of the ``.pt`` as a ZoeDepthModel on 14-pixel multiples."""

import dataclasses

import numpy as np
import pytest
import torch
from numerics import random_params

import zoejax
from zoejax.cli.convert import main as convert_main
from zoejax.cli.evaluate import main as eval_main
from zoejax.conversion.convert import convert_state_dict, export_state_dict
from zoejax.conversion.da1_metric_table import holds_da1_metric
from zoejax.conversion.official_table import official_table
from zoejax.inference import ZoeDepthModel
from zoejax.models import presets

TINY = presets.DA1_METRIC_TINY


def _official_state(cfg, seed):
    """A random-weight official state dict of ``cfg``, its unused tensors random too (not the export defaults)."""
    rng = np.random.default_rng(seed + 100)
    state = export_state_dict(cfg, random_params(cfg, seed), {}, "official")
    for key in official_table(cfg).extras:  # mask_token, refinenet4.resConfUnit1.*
        state[key] = rng.standard_normal(state[key].shape).astype(np.float32)
    return state


def _save(state, path):
    tensors = {k: torch.from_numpy(np.array(v)) for k, v in state.items()}
    torch.save({"model": tensors, "optimizer": None, "epoch": 4}, path)  # base_trainer.save_checkpoint's layout
    return path


def test_full_size_table_is_the_official_layout():
    """455 keys: 453 parameters (mask_token and the never-called unit among them) and the two log-binomial
    buffers; the prefixes of DepthAnythingCore (core.core.pretrained, core.core.depth_head) and ZoeDepth's head."""
    t = official_table(presets.da1_metric_n())
    keys = {k for e in t.entries for k in e.torch_keys} | set(t.extras) | set(t.buffers)
    assert len(keys) == 455 and len(t.buffers) == 2
    assert set(t.extras) == {"core.core.pretrained.mask_token"} | {
        f"core.core.depth_head.scratch.refinenet4.resConfUnit1.conv{i}.{p}" for i in (1, 2) for p in
        ("weight", "bias")}
    for key in ("core.core.pretrained.blocks.23.attn.qkv.weight", "core.core.pretrained.blocks.0.ls1.gamma",
                "core.core.depth_head.projects.3.weight", "core.core.depth_head.resize_layers.0.weight",
                "core.core.depth_head.scratch.refinenet1.out_conv.weight",
                "core.core.depth_head.scratch.output_conv2.2.bias", "seed_bin_regressor._net.2.weight",
                "attractors.3._net.2.weight", "conditional_log_binomial.log_binomial_transform.k_idx",
                "conditional_log_binomial.log_binomial_transform.K_minus_1"):
        assert key in keys, key
    assert not any(k.startswith("core.core.scratch.") for k in keys) and holds_da1_metric(keys)
    assert t.buffers["conditional_log_binomial.log_binomial_transform.k_idx"].dtype == np.int64


def test_detection_names_the_head_and_the_domain():
    indoor = presets.da1_metric_n(TINY)
    state = _official_state(indoor, 0)
    found, _ = convert_state_dict(state, source="depth_anything_metric_depth_indoor.pt")
    assert (found.preset, found.config) == ("da1_metric_n", indoor)
    found, _ = convert_state_dict(state, source="depth_anything_metric_depth_outdoor.pt")
    assert (found.preset, found.config) == ("da1_metric_k", presets.da1_metric_k(TINY))
    assert found.config.head.bin_centers_type == "softplus" and found.config.bins[0].max_depth == 80
    assert "Depth Anything V1 metric da1_metric_k (ZoeD_K head, softplus bins, kitti <= 80 m)" in found.describe()
    found, _ = convert_state_dict(state, source="mine.pt", variant="k")
    assert found.preset == "da1_metric_k"
    normed = presets.da1_metric_k(TINY, "normed")
    found, _ = convert_state_dict(_official_state(normed, 1), source="mine.pt")
    assert (found.preset, found.config) == ("da1_metric_k", normed)  # two channels per attractor
    with pytest.raises(ValueError, match="holds a normed"):
        convert_state_dict(_official_state(normed, 1), source="x.pt", variant="n")
    nk = presets.da1_metric_nk(TINY)
    found, _ = convert_state_dict(_official_state(nk, 2), source="x.pt")
    assert (found.preset, found.config) == ("da1_metric_nk", nk)
    # A ZoeDepth on DINOv2's MiDaS core (core.core.scratch) stays one.
    midas_core = dataclasses.replace(indoor, core="midas")
    found, _ = convert_state_dict(export_state_dict(midas_core, random_params(midas_core), {}, "official"))
    assert (found.preset, found.config.core) == ("", "midas")


def test_convert_and_export_round_trip_bit_exact_and_load(tmp_path, capsys):
    cfg = presets.da1_metric_n(TINY)
    state = _official_state(cfg, 3)
    pt = _save(state, tmp_path / "depth_anything_metric_depth_indoor.pt")
    assert convert_main([str(pt), str(tmp_path / "conv")]) == 0
    out = capsys.readouterr().out
    assert "Depth Anything V1 metric da1_metric_n (ZoeD_N head, softplus bins, nyu <= 10 m), dinov2_tiny" in out
    assert "kept aside for export: encoder.mask_token" in out and "refinenet4.resConfUnit1" in out
    assert convert_main([str(tmp_path / "conv"), str(tmp_path / "back.pt"), "--to", "official"]) == 0
    back = torch.load(tmp_path / "back.pt", weights_only=True)["model"]
    assert set(back) == set(state)
    for k, v in state.items():
        assert back[k].numpy().dtype == v.dtype and np.array_equal(back[k].numpy(), v), k
    assert convert_main([str(tmp_path / "conv"), str(tmp_path / "hf"), "--to", "hf"]) == 1
    assert "no DINOv2 form" in capsys.readouterr().err and not (tmp_path / "hf").exists()

    # zoejax-eval takes it as the ZoeDepth it is (the metric evaluator, unchanged), at sizes that are multiples of 14.
    assert eval_main(["--checkpoint", str(tmp_path / "conv"), "--datasets", "synthetic_indoor", "--input-size",
                      "28x40"]) == 1
    assert "both sides must be multiples of 14 (e.g. 28x42)" in capsys.readouterr().err

    model = zoejax.load(pt)
    assert isinstance(model, ZoeDepthModel) and model.config == cfg and model.input_size == (392, 518)
    assert model.network_size(480, 640) == (392, 518) and model.network_size(280, 378) == (378, 518)
    small = zoejax.load(pt, input_size=(28, 42))
    depth = small.predict(np.random.default_rng(0).integers(0, 255, (30, 40, 3), dtype=np.uint8), pad_input=False,
                          flip_tta=False)
    assert depth.shape == (30, 40) and np.all(np.isfinite(depth)) and depth.min() > 0
