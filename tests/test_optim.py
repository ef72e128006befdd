"""Optimizer: parameter groups, OneCycle lr / momentum against torch's OneCycleLR, AdamW update, skipping."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch

from zoejax.models import presets
from zoejax.models.init import param_shapes
from zoejax.training.optim import (
    OptimConfig,
    b1_schedule,
    group_labels,
    lr_schedules,
    make_optimizer,
    nonfinite_count,
    skip_nonfinite,
)


def test_groups_follow_official_split():
    labels = group_labels(param_shapes(presets.zoed_nk("tiny")))
    blk = labels["core"]["pretrained"]["model"]["blocks_0"]
    assert blk["attn"]["qkv"]["kernel"] == "encoder"
    assert blk["attn"]["relative_position_bias_table"] == "rel_pos"
    assert labels["core"]["pretrained"]["act_postprocess1"]["project"]["kernel"] == "encoder"
    assert labels["core"]["scratch"]["refinenet1"]["out_conv"]["kernel"] == "decoder"
    assert labels["metric_head"]["patch_transformer"]["embedding_convPxP"]["kernel"] == "head"


@pytest.mark.parametrize("pct_start,div_factor", [(0.7, 1.0), (0.3, 25.0)])
def test_one_cycle_matches_torch(pct_start, div_factor):
    total = 23
    cfg = OptimConfig(total_steps=total, lr=1e-3, pct_start=pct_start, div_factor=div_factor)
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.AdamW([p], lr=cfg.lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=total, pct_start=pct_start,
                                                div_factor=div_factor, final_div_factor=cfg.final_div_factor)
    lr, b1 = lr_schedules(cfg)["head"], b1_schedule(cfg)
    for step in range(total):
        group = opt.param_groups[0]
        np.testing.assert_allclose(float(lr(step)), group["lr"], rtol=2e-5, err_msg=f"lr at {step}")
        np.testing.assert_allclose(float(b1(step)), group["betas"][0], rtol=2e-6, err_msg=f"b1 at {step}")
        opt.step()
        sched.step()


def test_group_learning_rates_and_adamw_step():
    cfg = OptimConfig(total_steps=10, lr=1e-3, midas_lr_factor=10.0)
    params = {"core": {"pretrained": {"w": jnp.ones(2), "relative_position_bias_table": jnp.ones(2)},
                       "scratch": {"w": jnp.ones(2)}}, "metric_head": {"w": jnp.ones(2)}}
    tx = make_optimizer(cfg)
    grads = jax.tree.map(lambda x: jnp.full_like(x, 1e-3), params)
    updates, _ = tx.update(grads, tx.init(params), params)
    # First Adam step moves each parameter by ~lr_group (plus decoupled decay lr_group * 0.01 * p).
    step = {k: -float(v) for k, v in (("encoder", updates["core"]["pretrained"]["w"][0]),
                                      ("decoder", updates["core"]["scratch"]["w"][0]),
                                      ("head", updates["metric_head"]["w"][0]))}
    np.testing.assert_allclose(step["head"], 1e-3 * 1.01, rtol=1e-3)
    np.testing.assert_allclose(step["encoder"], 1e-4 * 1.01, rtol=1e-3)
    np.testing.assert_allclose(step["decoder"], 1e-4 * 1.01, rtol=1e-3)


def test_nonfinite_gradient_skips_update():
    params = {"metric_head": {"w": jnp.ones(3)}}
    tx = make_optimizer(OptimConfig(total_steps=5))
    state = tx.init(params)
    updates, state = tx.update({"metric_head": {"w": jnp.array([1.0, jnp.nan, 0.0])}}, state, params)
    assert np.all(np.asarray(updates["metric_head"]["w"]) == 0)
    assert int(nonfinite_count(state)) == 1
    updates, state = tx.update({"metric_head": {"w": jnp.ones(3)}}, state, params)
    assert np.all(np.asarray(updates["metric_head"]["w"]) != 0)
    assert int(nonfinite_count(state)) == 1


def test_skip_nonfinite_matches_optax_apply_if_finite():
    """Step for step, with NaN/inf gradients in and out of a row and past max_consecutive_errors (where optax gives
    up and lets the update through), the same updates and the same state as optax's conditional version."""
    params = {"a": jnp.linspace(-1.0, 1.0, 6).reshape(2, 3), "b": jnp.arange(4.0)}
    inner = optax.chain(optax.clip_by_global_norm(0.5), optax.adamw(1e-2, weight_decay=0.1))
    ours, theirs = skip_nonfinite(inner, 2), optax.apply_if_finite(inner, 2)
    s_ours, s_theirs = ours.init(params), theirs.init(params)
    assert jax.tree.structure(s_ours) == jax.tree.structure(s_theirs)
    bad = {"nan": jnp.nan, "inf": jnp.inf}
    schedule = ["ok", "nan", "ok", "inf", "nan", "nan", "nan", "ok", "ok"]  # the 3rd bad in a row goes through
    rng = np.random.default_rng(0)
    for i, kind in enumerate(schedule):
        grads = jax.tree.map(lambda p: jnp.asarray(rng.normal(size=p.shape), jnp.float32), params)
        if kind != "ok":
            grads["b"] = grads["b"].at[1].set(bad[kind])
        u_ours, s_ours = jax.jit(ours.update)(grads, s_ours, params)
        u_theirs, s_theirs = jax.jit(theirs.update)(grads, s_theirs, params)
        for a, b in zip(jax.tree.leaves((u_ours, s_ours)), jax.tree.leaves((u_theirs, s_theirs)), strict=True):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=f"step {i} ({kind})")
        params = optax.apply_updates(params, u_ours)
    assert int(s_ours.total_notfinite) == 5 and not np.all(np.isfinite(np.asarray(params["b"])))  # gave up once
