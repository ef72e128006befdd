"""Platform-dependent op forms (``zoejax.ops.platform``): chosen once from the target platform and carried as
module fields, so every op of a model follows the model's choice and jax's trace cache keeps the two apart."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from fast_compile import fast_compiles
from numerics import random_params

from zoejax.models import presets
from zoejax.models.zoedepth import ZoeDepth
from zoejax.ops.platform import ANALYSIS, FORMS, GENERIC, OpForms, forms_for


@pytest.mark.parametrize("platforms, expected", [
    ("cpu", FORMS["cpu"]), (["cpu"], FORMS["cpu"]), (["cuda"], GENERIC), (["TPU"], FORMS["tpu"]),
    (["cpu", "cuda"], GENERIC), (["cpu", "cpu"], FORMS["cpu"]), ("rocm", GENERIC), (["tpu", "tpu"], FORMS["tpu"]),
    (["cpu", "tpu"], GENERIC), (["tpu", "cuda"], GENERIC)])
def test_forms_for_takes_a_platforms_own_forms_only_when_every_platform_is_that_one(platforms, expected):
    assert forms_for(platforms) == expected


def test_forms_for_defaults_to_this_backend_and_rejects_nonsense():
    assert forms_for() == forms_for(jax.default_backend())
    assert ANALYSIS == GENERIC and FORMS["cpu"] != GENERIC and FORMS["tpu"].attention == "fused"
    with pytest.raises(ValueError, match="at least one platform"):
        forms_for([])
    with pytest.raises(ValueError, match="metal"):
        forms_for(["metal"])
    with pytest.raises(ValueError, match="attention form 'flash'"):
        OpForms(attention="flash")
    with pytest.raises(ValueError, match="winograd"):
        OpForms(winograd=True)  # Winograd is one of the CPU product forms
    assert hash(FORMS["cpu"]) == hash(OpForms("per_head", "products", True, "cond"))  # a static module field


def _grad_text(model, params, images) -> str:
    def loss(p):
        return jnp.sum(model.apply({"params": p}, images)["metric_depth"])

    return jax.jit(jax.grad(loss)).lower(params).as_text()


@pytest.mark.parametrize("backbone", ["tiny", "swin2_tiny"])
def test_every_op_of_the_model_follows_its_forms(backbone):
    """The model's ``ops`` reaches attention, every convolution and every gradient barrier, in BEiT and Swin
    alike: the CPU forms put per-head loops (BEiT), conditionals (barriers) and product-form convolutions in
    the program, the generic forms none of them and optimization barriers instead; both compute the same."""
    cfg = presets.zoed_n(backbone)
    params = random_params(cfg)  # no compiled init: only the programs' forms and outputs matter here
    images = jnp.asarray(np.random.default_rng(0).uniform(0, 1, (1, 64, 64, 3)), jnp.float32)
    cpu = _grad_text(ZoeDepth(cfg, ops=FORMS["cpu"]), params, images)
    generic = _grad_text(ZoeDepth(cfg, ops=GENERIC), params, images)
    assert "stablehlo.case" in cpu and "optimization_barrier" not in cpu
    assert "optimization_barrier" in generic and "stablehlo.case" not in generic
    assert cpu.count("stablehlo.convolution") < generic.count("stablehlo.convolution")
    if backbone == "tiny":  # Swin's loop is for windows of >= 512 tokens only (tests/test_swin.py)
        assert "stablehlo.while" in cpu and "stablehlo.while" not in generic
    apply = jax.jit(lambda m, p, x: m.apply({"params": p}, x)["metric_depth"], static_argnums=0)
    with fast_compiles():  # the forms' values, compared with each other; both compile alike
        out = [apply(ZoeDepth(cfg, ops=forms), params, images) for forms in (FORMS["cpu"], GENERIC)]
    np.testing.assert_allclose(out[0], out[1], rtol=2e-5)


def test_ops_none_is_this_backends_forms_and_the_choice_is_in_the_trace_cache_key():
    """One jitted function of the module: a model with other forms is traced again, never served the other's
    cached trace (the forms are a field of the module, a static argument)."""
    cfg = presets.zoed_n("tiny")
    params = random_params(cfg)
    images = jax.ShapeDtypeStruct((1, 64, 64, 3), jnp.float32)
    fn = jax.jit(lambda m, p, x: m.apply({"params": p}, x)["metric_depth"], static_argnums=0)

    def has_loop(model) -> bool:
        return "stablehlo.while" in fn.lower(model, params, images).as_text()

    assert has_loop(ZoeDepth(cfg, ops=FORMS["cpu"]))
    assert not has_loop(ZoeDepth(cfg, ops=GENERIC))
    assert has_loop(ZoeDepth(cfg, ops=FORMS["cpu"]))
    assert has_loop(ZoeDepth(cfg)) == (jax.default_backend() == "cpu")
    # The forms change nothing of the parameters.
    assert dataclasses.asdict(ZoeDepth(cfg, ops=GENERIC).config) == dataclasses.asdict(cfg)
