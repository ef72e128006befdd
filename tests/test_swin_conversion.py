"""Importing MiDaS v3.1 Swin checkpoints (``dpt_swin2_{tiny_256,base_384,large_384}.pt``, ``dpt_swin_large_384.pt``):
the key table against the release layout of every full-size model (built by timm on the meta device, renamed to
the timm 0.6.12 layout the releases were saved in; nothing allocated), detection, strict accounting, the buffers
timm saved, and export round trips."""

import json
import os

import jax
import numpy as np
import pytest
from flax.traverse_util import flatten_dict, unflatten_dict
from swin_reference import release_shapes, release_state_dict, timm_swin, zoed_n_shapes

from zoejax.conversion.apply import ConversionError, params_to_state_dict, state_dict_to_params
from zoejax.conversion.convert import convert_state_dict, export_state_dict
from zoejax.conversion.detect import detect
from zoejax.conversion.official_table import midas_table
from zoejax.conversion.table import default_extras
from zoejax.models import presets

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")
MIDAS_COUNTS = {"swin2_l384": 213_411_869, "swin2_b384": 102_378_913, "swin2_t256": 41_701_331,
                "swin_l384": 213_407_453}
BUFFER_SUFFIXES = ("relative_position_index", "relative_coords_table", "attn_mask")


def _scratch_shapes(stage_dims) -> dict[str, tuple[int, ...]]:
    """The released DPT_BEiT_L ``scratch.*`` keys and shapes with the layer{k}_rn input widths of a Swin model
    (its decoder is the same; only the reassembled widths differ)."""
    with open(os.path.join(FIXTURES, "midas_v31_checkpoint_keys.json")) as f:
        beit = json.load(f)["dpt_beit_large_384"]
    shapes = {k: tuple(v[0]) for k, v in beit.items() if k.startswith("scratch.")}  # [shape, dtype]
    for k, dim in enumerate(stage_dims, start=1):
        out, _, kh, kw = shapes[f"scratch.layer{k}_rn.weight"]
        shapes[f"scratch.layer{k}_rn.weight"] = (out, dim, kh, kw)
    return shapes


def _zeros(shape) -> np.ndarray:
    return np.broadcast_to(np.float32(0), shape)  # zero-stride: a "tensor" of any size costs nothing


@pytest.mark.parametrize("name", list(MIDAS_COUNTS))
def test_table_covers_release_layout(name):
    cfg = presets.zoed_n(name)
    shapes = {**release_shapes(cfg.backbone), **_scratch_shapes(cfg.backbone.stage_dims)}
    learned = {k: s for k, s in shapes.items() if not k.endswith(BUFFER_SUFFIXES)}
    assert sum(int(np.prod(s)) for s in learned.values()) == MIDAS_COUNTS[name]  # the whole release file

    table = midas_table(cfg)
    used = {k for e in table.entries for k in e.torch_keys}
    assert used | set(table.extras) == set(learned)  # every learned tensor: a parameter or a named extra
    assert set(shapes) - set(learned) <= set(table.buffers)  # every saved buffer is checked
    for key in set(shapes) - set(learned):
        assert table.buffers[key].shape == shapes[key], key
    want = flatten_dict(zoed_n_shapes(name)["core"])
    for e in table.entries:
        value = e.transform.to_flax(*[_zeros(shapes[k]) for k in e.torch_keys])
        assert value.shape == want[e.flax_path[1:]].shape, e.torch_keys
    assert len(table.entries) == len(want)

    detected = detect({k: _zeros(s) for k, s in shapes.items()})
    assert (detected.format, detected.backbone, detected.variant) == ("midas", name, "n")
    assert detected.config == cfg


@pytest.fixture(scope="module")
def tiny_release():
    """A random-weight MiDaS file of the SwinV2 test fixture: timm's encoder (with the buffers timm computes)
    and a random decoder, in the release key layout."""
    cfg = presets.zoed_n("swin2_tiny")
    rng = np.random.default_rng(0)
    params = {k: rng.normal(0, 0.1, v.shape).astype(np.float32)
              for k, v in flatten_dict(zoed_n_shapes("swin2_tiny")).items()}
    defaults = default_extras(cfg.decoder.features, cfg.backbone.num_features, seed=1)
    state = params_to_state_dict(unflatten_dict(params), midas_table(cfg), defaults=defaults)
    state = {k: v for k, v in state.items() if k.startswith("scratch.")}
    state.update(release_state_dict(timm_swin(cfg.backbone, seed=1)))
    return cfg, state


@pytest.fixture(scope="module")
def tiny_converted(tiny_release):
    """What ``convert_state_dict`` does with a MiDaS file, less the fresh metric head (a compiled init of the
    whole model, slow on CPU; the same code path as for BEiT files, tested in test_convert.py)."""
    _, state = tiny_release
    detected = detect(state)
    converted = state_dict_to_params(state, midas_table(detected.config), {"core": zoed_n_shapes("swin2_tiny")["core"]},
                                     "dpt_swin2_tiny_test.pt")  # buffers equal to timm's own, or this raises
    return detected, converted


def test_release_file_converts_with_checked_buffers(tiny_release, tiny_converted):
    cfg, state = tiny_release
    assert any(k.endswith("attn_mask") for k in state) and any(k.endswith("relative_coords_table") for k in state)
    detected, converted = tiny_converted
    assert (detected.format, detected.backbone) == ("midas", "swin2_tiny")
    block = converted.params["core"]["pretrained"]["model"]["layers_1"]["blocks_1"]["attn"]
    np.testing.assert_array_equal(block["qkv"]["kernel"], state["pretrained.model.layers.1.blocks.1.attn.qkv.weight"].T)
    np.testing.assert_array_equal(block["logit_scale"], state["pretrained.model.layers.1.blocks.1.attn.logit_scale"])
    down = converted.params["core"]["pretrained"]["model"]["layers_0"]["downsample"]["reduction"]["kernel"]
    np.testing.assert_array_equal(down, state["pretrained.model.layers.0.downsample.reduction.weight"].T)
    assert set(converted.extras) == {"encoder.norm.weight", "encoder.norm.bias", "encoder.head.weight",
                                     "encoder.head.bias", "refinenet4.resConfUnit1.conv1.weight",
                                     "refinenet4.resConfUnit1.conv1.bias", "refinenet4.resConfUnit1.conv2.weight",
                                     "refinenet4.resConfUnit1.conv2.bias"}


def test_every_problem_listed(tiny_release):
    _, state = tiny_release
    state = dict(state)
    del state["pretrained.model.layers.2.blocks.0.attn.cpb_mlp.2.weight"]
    state["pretrained.model.layers.0.blocks.0.attn.k_scale"] = np.ones(16, np.float32)
    mask = "pretrained.model.layers.0.blocks.1.attn_mask"
    state[mask] = np.zeros_like(state[mask])
    state["pretrained.model.layers.0.downsample.norm.weight"] = np.ones(5, np.float32)
    with pytest.raises(ConversionError) as info:
        convert_state_dict(state, source="dpt_swin2_tiny_test.pt")
    text = str(info.value)
    assert "missing key: pretrained.model.layers.2.blocks.0.attn.cpb_mlp.2.weight" in text
    assert "unexpected key: pretrained.model.layers.0.blocks.0.attn.k_scale" in text
    assert f"buffer differs from the value the official code computes: {mask}" in text
    assert "shape mismatch: pretrained.model.layers.0.downsample.norm.weight (5,)" in text
    assert len(info.value.problems) == 4


def test_official_export_round_trip(tiny_release, tiny_converted):
    cfg, _ = tiny_release
    _, converted = tiny_converted
    rng = np.random.default_rng(3)
    head = jax.tree.map(lambda x: rng.normal(0, 0.1, x.shape).astype(np.float32), zoed_n_shapes("swin2_tiny")[
        "metric_head"])
    params = {**converted.params, "metric_head": head}
    exported = export_state_dict(cfg, params, converted.extras, "official")
    assert "core.core.pretrained.model.layers.0.blocks.1.attn_mask" in exported
    assert not any("act_postprocess" in k for k in exported)
    detected, again = convert_state_dict(exported)
    assert (detected.format, detected.backbone, detected.variant) == ("official", "swin2_tiny", "n")
    a, b = flatten_dict(params), flatten_dict(again.params)
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg="/".join(k))
    for k, v in converted.extras.items():
        np.testing.assert_array_equal(again.extras[k], v)


def test_hf_layout_refused_for_swin():
    with pytest.raises(ValueError, match="BEiT backbones only"):
        export_state_dict(presets.zoed_n("swin2_tiny"), {}, {}, "hf")
