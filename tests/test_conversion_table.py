"""Strict state-dict accounting of the parameter table: every problem reported at once, round trip exact."""

import numpy as np
import pytest
from torch_reference import build_reference, params_from_hf_state_dict, state_dict_numpy

from zoejax.conversion.apply import ConversionError, params_to_state_dict, state_dict_to_params
from zoejax.conversion.hf_table import hf_table
from zoejax.models import presets
from zoejax.models.init import count_params, param_shapes


@pytest.fixture(scope="module", params=["zoed_n", "zoed_nk"])
def tiny_state(request):
    cfg = presets.VARIANTS[request.param]("tiny")
    return cfg, state_dict_numpy(build_reference(cfg))


def test_every_tensor_accounted_for(tiny_state):
    cfg, state = tiny_state
    table = hf_table(cfg)
    used = {k for e in table.entries for k in e.torch_keys}
    assert used | set(table.extras) == set(state)  # nothing silently dropped
    assert not used & set(table.extras)
    params = params_from_hf_state_dict(cfg, state)
    kept_aside = sum(state[k].size for k in table.extras)
    assert count_params(params) == sum(v.size for v in state.values()) - kept_aside


def test_round_trip_is_exact(tiny_state):
    cfg, state = tiny_state
    converted = state_dict_to_params(state, hf_table(cfg), param_shapes(cfg))
    back = params_to_state_dict(converted.params, hf_table(cfg), converted.extras, defaults={})
    assert set(back) == set(state)
    for k, v in back.items():
        np.testing.assert_array_equal(v, state[k], err_msg=k)


def test_all_problems_reported_together(tiny_state):
    cfg, state = tiny_state
    bad = dict(state)
    del bad["backbone.beit.layers.1.mlp.fc1.weight"]
    bad["backbone.beit.layers.0.mlp.fc2.weight"] = np.zeros((5, 5), np.float32)
    bad["backbone.beit.layers.0.attention.k_proj.bias"] = np.zeros(32, np.float32)
    bad["metric_head.conv2.bias"] = np.full_like(state["metric_head.conv2.bias"], np.nan)
    with pytest.raises(ConversionError) as info:
        params_from_hf_state_dict(cfg, bad, source="bad.safetensors")
    text = str(info.value)
    assert "bad.safetensors" in text and len(info.value.problems) == 4
    assert "missing key: backbone.beit.layers.1.mlp.fc1.weight" in text
    assert "shape mismatch: backbone.beit.layers.0.mlp.fc2.weight (5, 5)" in text
    assert "unexpected key: backbone.beit.layers.0.attention.k_proj.bias" in text
    assert "non-finite values in metric_head.conv2.bias" in text


def test_wrong_variant_is_reported(tiny_state):
    cfg, state = tiny_state
    other = presets.zoed_nk("tiny") if not cfg.is_multi_head else presets.zoed_n("tiny")
    with pytest.raises(ConversionError, match="missing key"):
        params_from_hf_state_dict(other, state)


def test_integer_tensor_rejected(tiny_state):
    cfg, state = tiny_state
    bad = dict(state)
    bad["metric_head.conv2.bias"] = state["metric_head.conv2.bias"].astype(np.int64)
    with pytest.raises(ConversionError, match="non-float tensor"):
        params_from_hf_state_dict(cfg, bad)
