"""The Depth Anything DPT head against transformers' ``DepthAnythingForDepthEstimation`` neck and head: random
weights and random backbone features (class token first), fp32, at the token grids of 518x686 and 364x490 (the real
patch size and grid, small widths); relative (ReLU) and metric (Sigmoid x max_depth) outputs and every fusion
stage. Also the head's two weight layouts, both directions.

The depth's error (~5e-6) is out_conv's (~2e-7) times the conditioning of the random last 1x1 convolution (~40:
its input is positive after a ReLU and the weights nearly cancel over it); each side is within 1e-6 of a float64
product of its own out_conv."""

import functools

import jax
import numpy as np
import pytest
from depth_anything_reference import (
    build_hf_depth_anything,
    calibrate_output,
    run_neck_and_head,
    state_dict_numpy,
)
from flax.traverse_util import flatten_dict
from numerics import rel_l2

from zoejax.conversion.apply import params_to_state_dict, state_dict_to_params
from zoejax.conversion.depth_anything_head_table import (
    head_config_from_hf,
    hf_head_config,
    hf_head_entries,
    official_head_entries,
)
from zoejax.conversion.table import Table
from zoejax.models.depth_anything_head import DepthAnythingHead, DepthAnythingHeadConfig
from zoejax.ops.platform import FORMS, GENERIC

TOL = 1e-5
EMBED = 24
HEADS = {"relative": DepthAnythingHeadConfig(features=16, out_channels=(8, 16, 24, 24), head_features=8),
         "metric": DepthAnythingHeadConfig(features=16, out_channels=(8, 16, 24, 24), head_features=8,
                                           depth_type="metric", max_depth=20.0)}


def _hf_table(head):
    t = Table()
    hf_head_entries(t, head, flax_prefix="head")
    return t


def _head_state(state):
    return {k: v for k, v in state.items() if k.startswith(("neck.", "head."))}


@functools.lru_cache(maxsize=1)
def _pair(kind, ops):
    head = HEADS[kind]
    ref = build_hf_depth_anything(head, embed_dim=EMBED, seed=3)
    calibrate_output(ref, _taps((364, 490), 0), (26, 35))
    params = state_dict_to_params(_head_state(state_dict_numpy(ref)), _hf_table(head), _shapes(head)).params
    module = DepthAnythingHead(head, ops=ops)
    forward = jax.jit(lambda p, maps: module.apply({"params": p}, maps))
    return ref, params["head"], forward


def _taps(size, seed):
    """Four random (1, 1 + gh*gw, EMBED) backbone outputs for an input of ``size`` (class token first)."""
    rng = np.random.default_rng(seed)
    n = (size[0] // 14) * (size[1] // 14)
    return [rng.standard_normal((1, 1 + n, EMBED)).astype(np.float32) for _ in range(4)]


def _shapes(head):
    maps = [jax.ShapeDtypeStruct((1, 2, 3, EMBED), np.float32)] * 4
    return {"head": jax.eval_shape(DepthAnythingHead(head).init, jax.random.PRNGKey(0), maps)["params"]}


# One case here: the whole models' tests (tests/test_depth_anything.py) compare every head stage too, relative at
# 518x686 under the CPU op forms and metric at 364x490 under the generic (GPU/TPU) ones.
@pytest.mark.parametrize("kind,size,ops", [("metric", (518, 686), "cpu")])
def test_head_matches_transformers(kind, size, ops):
    ref, params, forward = _pair(kind, GENERIC if ops == "generic" else FORMS["cpu"])
    grid = (size[0] // 14, size[1] // 14)
    taps = _taps(size, sum(size))
    expected = run_neck_and_head(ref, taps, grid)
    maps = [t[:, 1:].reshape(1, *grid, EMBED) for t in taps]  # what the encoder hands the head
    got = jax.device_get(forward(params, maps))
    assert got["depth"].shape == (1, *size) == expected["depth"].shape
    errors = {k: rel_l2(got[k], expected[k]) for k in ("r4", "r3", "r2", "r1", "out_conv", "depth")}
    print(kind, size, ops, {k: f"{v:.1e}" for k, v in errors.items()})
    assert all(v <= TOL for v in errors.values()), errors
    depth = got["depth"]
    if kind == "metric":  # a sigmoid that saturated would compare nothing
        assert np.mean((depth > 1) & (depth < 19)) > 0.8 and depth.std() > 1.0
    else:
        assert depth.min() >= 0 and 0.2 < (depth > 0).mean() < 0.8


@pytest.mark.parametrize("kind", ["relative", "metric"])
def test_head_tables_round_trip(kind):
    """transformers state dict -> params -> transformers and -> official -> params, bit-exact, the unused
    refinenet4 unit kept as an extra."""
    head = HEADS[kind]
    ref = build_hf_depth_anything(head, embed_dim=EMBED, seed=4)
    hf_state = _head_state(state_dict_numpy(ref))
    hf = _hf_table(head)
    converted = state_dict_to_params(hf_state, hf, _shapes(head))
    assert sorted(converted.extras) == sorted(f"refinenet4.resConfUnit1.conv{i}.{p}" for i in (1, 2)
                                              for p in ("weight", "bias"))
    back = params_to_state_dict(converted.params, hf, converted.extras)
    assert sorted(back) == sorted(hf_state)
    assert all(np.array_equal(back[k], hf_state[k]) for k in hf_state)

    official = Table()
    official_head_entries(official, head, flax_prefix="head")
    official_state = params_to_state_dict(converted.params, official, converted.extras)
    assert len(official_state) == len(hf_state)
    assert all(k.startswith("depth_head.") for k in official_state)
    assert official_state["depth_head.scratch.output_conv2.2.weight"].shape == (1, 8, 1, 1)
    again = state_dict_to_params(official_state, official, _shapes(head))
    flat, flat_again = flatten_dict(converted.params), flatten_dict(again.params)
    assert flat.keys() == flat_again.keys() and all(np.array_equal(flat[k], flat_again[k]) for k in flat)


def test_hf_config_round_trip():
    for head in HEADS.values():
        assert head_config_from_hf(hf_head_config(head, EMBED)) == head
    with pytest.raises(ValueError, match="reassemble_factors"):
        head_config_from_hf({**hf_head_config(HEADS["relative"], EMBED), "reassemble_factors": [4, 2, 1, 1]})
    with pytest.raises(ValueError, match="depth_type"):
        DepthAnythingHeadConfig(depth_type="disparity")
