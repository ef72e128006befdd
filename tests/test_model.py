"""Model-level behaviour: parameter counts, dtypes, input validation, NK routing, config handling.

Forwards go through the public front door, ``ZoeDepthModel.forward``, at an input size equal to the network size
(so its resize is the identity)."""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from fast_compile import fast_compiles
from numerics import random_params, rel_l2

from zoejax import inference
from zoejax.inference import ZoeDepthModel
from zoejax.models import presets
from zoejax.models.config import RematPolicy, ZoeDepthConfig
from zoejax.models.init import count_params, init_fn, init_params, param_shapes


def depth(cfg, params, images, domain=None):
    """``metric_depth`` (B, H, W) of ``images`` (B, H, W, 3) at their own size through ``ZoeDepthModel.forward``."""
    images = np.asarray(images)
    model = ZoeDepthModel(cfg, params, input_size=images.shape[1:3])
    return model.forward(images, domain)["metric_depth"]


@pytest.mark.parametrize("variant,backbone,expected", [
    # Official models' used parameters: the release files' counts minus the classifier head, fc_norm and
    # refinenet4.resConfUnit1 (never used by the forward pass; architecture spec section 10).
    ("zoed_n", "beit_l384", 344_816_746 - 2_207_208),
    ("zoed_k", "beit_l384", 342_613_279),
    ("zoed_nk", "beit_l384", 343_893_147),
    # MiDaS DPT_BEiT_B_384 (111,531,689) + the ZoeD_N head (478,145) minus its unused 1,950,696.
    ("zoed_n", "beit_b384", 111_531_689 + 478_145 - 1_950_696),
])
def test_parameter_counts(variant, backbone, expected):
    assert count_params(param_shapes(presets.VARIANTS[variant](backbone))) == expected


def test_parameter_names_mirror_torch_paths():
    shapes = param_shapes(presets.zoed_n("tiny"))
    block = shapes["core"]["pretrained"]["model"]["blocks_0"]
    assert set(block) == {"norm1", "norm2", "attn", "mlp", "gamma_1", "gamma_2"}
    assert set(block["attn"]) == {"qkv", "q_bias", "v_bias", "relative_position_bias_table", "proj"}
    assert block["attn"]["relative_position_bias_table"].shape == (7 * 7 + 3, 2)
    assert "resConfUnit1" not in shapes["core"]["scratch"]["refinenet4"]
    assert set(shapes["metric_head"]) >= {"conv2", "seed_bin_regressor", "attractors_3", "conditional_log_binomial"}


def test_param_shapes_are_cached_but_each_caller_gets_its_own_tree():
    cfg = presets.zoed_n("tiny")
    first = param_shapes(cfg)
    del first["metric_head"]
    first["core"]["scratch"] = None
    again = param_shapes(presets.zoed_n("tiny"))  # an equal config finds the cached entry
    assert again["metric_head"] and again["core"]["scratch"] is not None
    assert jax.tree.structure(again) == jax.tree.structure(jax.eval_shape(init_fn(cfg), jax.random.key(0)))


@pytest.fixture(scope="module")
def tiny_n():
    cfg = presets.zoed_n("tiny")
    return cfg, init_params(cfg, 0)


def test_bfloat16_compute_close_to_float32(tiny_n):
    cfg, params = tiny_n
    images = np.random.default_rng(0).random((2, 64, 96, 3), dtype=np.float32)
    ref = depth(cfg, params, images)
    bf16 = depth(dataclasses.replace(cfg, dtype="bfloat16"), params, images)
    assert bf16.dtype == jnp.float32
    assert 0 < rel_l2(bf16, ref) < 2e-2


@pytest.mark.parametrize("shape,message", [
    ((1, 64, 64, 4), "3 channels"),
    ((0, 64, 64, 3), "empty batch"),
    ((64, 64, 3), "rank 4"),
])
def test_bad_shapes_rejected_before_compiling(tiny_n, shape, message):
    cfg, params = tiny_n
    model = ZoeDepthModel(cfg, params, input_size=(64, 64))
    jax.clear_caches()
    with pytest.raises(ValueError, match=message):
        model.forward(np.zeros(shape, np.float32))
    assert inference._forward._cache_size() == 0


def test_nan_image_rejected_before_compiling(tiny_n):
    cfg, params = tiny_n
    model = ZoeDepthModel(cfg, params, input_size=(64, 64))
    images = np.zeros((2, 64, 64, 3), np.float32)
    images[1, 3, 4, 0] = np.nan
    jax.clear_caches()
    with pytest.raises(ValueError, match=r"NaN or Inf.*\[1\]"):
        model.forward(images)
    assert inference._forward._cache_size() == 0


def test_remat_does_not_change_outputs(tiny_n):
    cfg, params = tiny_n
    images = np.random.default_rng(1).random((1, 64, 64, 3), dtype=np.float32)
    ref = depth(cfg, params, images)
    for policy in (RematPolicy.FULL, RematPolicy.DOTS):
        out = depth(dataclasses.replace(cfg, remat=policy), params, images)
        np.testing.assert_allclose(out, ref, rtol=1e-6, atol=1e-6)


def test_nk_labelled_and_voted_routing():
    cfg = presets.zoed_nk("tiny")
    params = init_params(cfg, 1)
    model = ZoeDepthModel(cfg, params, input_size=(64, 64))
    images = np.random.default_rng(2).random((2, 64, 64, 3), dtype=np.float32)
    with fast_compiles():  # routing logic: every forward below compiles alike
        _check_routing(model, images)


def _check_routing(model, images):
    voted = model.forward(images)
    vote = int(voted["domain"][0])
    assert voted["domain"].tolist() == [vote, vote]  # one domain for the whole batch
    np.testing.assert_array_equal(model.forward(images, [vote, vote])["metric_depth"], voted["metric_depth"])
    per_domain = [model.forward(images, [d, d])["metric_depth"] for d in (0, 1)]
    assert rel_l2(per_domain[0], per_domain[1]) > 1e-3  # the two heads differ
    mixed = model.forward(images, [0, 1])["metric_depth"]
    np.testing.assert_array_equal(mixed[0], per_domain[0][0])
    np.testing.assert_array_equal(mixed[1], per_domain[1][1])


@functools.cache
def _nk_random_params():
    return random_params(presets.zoed_nk("tiny"))


@pytest.mark.parametrize("labels,message", [
    ([0, 2], r"2 labels in \[0, 1\] \(0 = nyu, 1 = kitti\), got \[0, 2\]"),  # no head: zeros inside the jit
    ([-1, 0], r"labels in \[0, 1\].*got \[-1, 0\]"),
    ([0], r"must be 2 labels"),
    ([0.0, 1.0], "must be integers"),
])
def test_out_of_range_domain_labels_are_a_clear_error(labels, message):
    cfg = presets.zoed_nk("tiny")
    model = ZoeDepthModel(cfg, _nk_random_params(), input_size=(64, 64))  # never run: the labels are refused
    jax.clear_caches()
    with pytest.raises(ValueError, match=message):
        model.forward(np.zeros((2, 64, 64, 3), np.float32), labels)
    assert inference._forward._cache_size() == 0  # refused before anything is traced


def test_domain_labels_for_a_single_head_model_are_refused(tiny_n):
    cfg, params = tiny_n
    with pytest.raises(ValueError, match="only meaningful for a multi-head"):
        ZoeDepthModel(cfg, params, input_size=(64, 64)).forward(np.zeros((1, 64, 64, 3), np.float32), [0])


def test_naive_head_runs():
    cfg = presets.zoed_n("tiny")
    cfg = dataclasses.replace(cfg, head=dataclasses.replace(cfg.head, head_type="naive"))
    with fast_compiles():
        out = depth(cfg, init_params(cfg, 0), np.full((1, 32, 64, 3), 0.5, np.float32))
    assert out.shape == (1, 32, 64)
    assert np.all(np.asarray(out) > 0)


def test_config_round_trip_and_errors():
    cfg = presets.zoed_nk("beit_b384")
    assert ZoeDepthConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown key"):
        ZoeDepthConfig.from_dict({"backbone": {"embed_dimm": 3}})
    with pytest.raises(ValueError, match="remat"):
        ZoeDepthConfig.from_dict({"remat": "everything"})
    with pytest.raises(ValueError, match="bin_centers_type"):
        ZoeDepthConfig.from_dict({"head": {"bin_centers_type": "hybrid9"}})


def test_k_max_depth_is_explicit():
    assert presets.zoed_k().bins[0].max_depth == 10.0
    assert presets.zoed_k(max_depth=80).bins[0].max_depth == 80.0


def test_jit_once_per_shape(tiny_n):
    cfg, params = tiny_n
    model = ZoeDepthModel(cfg, params, input_size=(64, 64))
    jax.clear_caches()
    for size in ((64, 64), (64, 64), (32, 96)):
        model.forward(np.zeros((1, *size, 3), np.float32))
    assert inference._forward._cache_size() == 2
    assert jax.tree.leaves(params)[0].dtype == jnp.float32


def test_init_compiles_unoptimised_only_for_small_models():
    from zoejax.models import init

    class Lowered:  # records the options compile_init passes for a params tree of ``size`` scalars
        def __init__(self, size):
            self.out_info = {"a": jax.ShapeDtypeStruct((size - 1,), jnp.float32),
                             "b": jax.ShapeDtypeStruct((1,), jnp.float32)}

        def compile(self, options):
            return options

    limit = init.UNOPTIMISED_INIT_MAX_PARAMS
    assert init.compile_init(Lowered(limit))["xla_backend_optimization_level"] == 0
    assert init.compile_init(Lowered(limit + 1)) is None
    # Which side the presets fall on: the test fixtures and the demo's model below, BEiT-B/L above.
    assert count_params(param_shapes(presets.zoed_n("small"))) <= limit
    assert count_params(param_shapes(presets.zoed_n("beit_b384"))) > limit
    # The sharded-state path (params part of a larger output) counts only the params.
    assert init.compile_init(Lowered(limit + 1), Lowered(2).out_info) is not None


def test_init_of_one_submodule_equals_that_part_of_the_full_init(tiny_n):
    cfg, params = tiny_n
    head = init_params(cfg, 0, only="metric_head")
    assert jax.tree.structure(head) == jax.tree.structure(params["metric_head"])
    for got, want in zip(jax.tree.leaves(head), jax.tree.leaves(params["metric_head"]), strict=True):
        np.testing.assert_array_equal(got, want)
    with pytest.raises(KeyError, match="no top-level params 'head'"):
        init_params(cfg, 0, only="head")
