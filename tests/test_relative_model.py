"""The relative-depth model: ZoeDepth's core without the metric head, MiDaS v3.1 files in and out."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from checkpoint_fixtures import manifest_state_dict
from flax.traverse_util import flatten_dict, unflatten_dict

from zoejax.conversion.relative_convert import relative_from_midas, relative_to_midas
from zoejax.inference_models import DepthModel, model_with_weights
from zoejax.inference_relative import RelativeDepthModel
from zoejax.models import presets
from zoejax.models.init import count_params, param_shapes
from zoejax.models.relative_depth import RelativeDepth, RelativeDepthConfig


def test_full_size_midas_release_loads_as_relative_model():
    cfg, params, extras = relative_from_midas(manifest_state_dict("dpt_beit_base_384"), source="dpt_beit_base_384")
    want = {k: v.shape for k, v in flatten_dict(param_shapes(cfg)["core"]).items()}
    assert {k: v.shape for k, v in flatten_dict(params["core"]).items()} == want  # ZoeD_N less its metric head
    assert count_params(params) == 110_059_138 - count_params(param_shapes(cfg)["metric_head"])


def test_zoedepth_file_is_refused_with_its_name():
    with pytest.raises(ValueError, match="ZoeD_N.pt: not a MiDaS"):
        relative_from_midas(manifest_state_dict("ZoeD_N"), source="ZoeD_N.pt")


@pytest.fixture(scope="module")
def tiny():
    """Random weights of the tiny fixture in ZoeDepth's ``core`` tree (no compiled init: numpy draws)."""
    cfg = presets.zoed_n("tiny")
    rng = np.random.default_rng(0)
    core = {k: rng.normal(0, 0.05, v.shape).astype(np.float32)
            for k, v in flatten_dict(param_shapes(cfg)["core"]).items()}
    # the head ends in a ReLU: a positive last bias keeps random weights off its flat zero side
    core[("scratch", "output_conv_4", "bias")] = np.ones_like(core[("scratch", "output_conv_4", "bias")])
    images = jax.random.uniform(jax.random.key(1), (2, 64, 96, 3))
    return cfg, images, {"core": unflatten_dict(core)}


def test_relative_model_runs_on_zoedepths_core_and_round_trips_through_the_midas_layout(tiny):
    cfg, images, params = tiny
    abstract = jax.eval_shape(lambda: RelativeDepth(cfg).init(jax.random.key(0), images))
    module_tree = {k: v.shape for k, v in flatten_dict(nn.unbox(abstract["params"])).items()}
    assert module_tree == {k: v.shape for k, v in flatten_dict(params).items()}  # exactly ZoeDepth's core tree
    apply = jax.jit(RelativeDepth(cfg).apply)
    rel = apply({"params": params}, images)["relative_depth"]
    assert rel.shape == (2, 64, 96) and rel.dtype == jnp.float32
    assert float(jnp.min(rel)) >= 0 and float(jnp.std(rel)) > 0

    state = relative_to_midas(cfg, params)
    assert not any(k.startswith(("core.", "conv2", "seed_")) for k in state)  # the MiDaS release layout
    cfg2, back, extras = relative_from_midas(state, source="exported.pt")
    assert cfg2.backbone == cfg.backbone and cfg2.decoder == cfg.decoder
    flat, flat_back = flatten_dict(params), flatten_dict(back)
    assert set(flat) == set(flat_back)
    for key, value in flat.items():
        np.testing.assert_array_equal(np.asarray(flat_back[key]), value, err_msg=str(key))
    np.testing.assert_array_equal(np.asarray(apply({"params": back}, images)["relative_depth"]), np.asarray(rel))
    again = relative_to_midas(cfg2, back, extras)
    assert set(again) == set(state)
    for key, value in state.items():
        np.testing.assert_array_equal(again[key], value, err_msg=key)


def test_relative_model_predicts_through_the_inference_table(tiny):
    cfg, images, params = tiny
    model = model_with_weights(RelativeDepthConfig(cfg), params, provenance={"source": "dpt_test.pt"},
                               input_size=(64, 96))
    assert isinstance(model, RelativeDepthModel) and isinstance(model, DepthModel)
    assert model.output == "relative_depth" and model.network_size(48, 80) == (64, 96)
    assert model.network_size(64, 96) == (64, 96)
    pred = model.predict_batch(np.asarray(images))  # already at the network size: no resize either way
    assert pred.output == "relative_depth" and pred.depth.shape == (2, 64, 96)
    want = jax.jit(RelativeDepth(cfg).apply)({"params": params}, images)["relative_depth"]
    np.testing.assert_allclose(pred.depth, np.asarray(want), rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="too small"):
        model.prediction_function(4, 4)
