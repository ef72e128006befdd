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
    consecutive_nonfinite_count,
    group_labels,
    lr_schedules,
    make_optimizer,
    nonfinite_count,
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


def _optax_composition(cfg: OptimConfig) -> optax.GradientTransformation:
    """What make_optimizer's fused transformation computes, as the optax composition it replaces."""
    per_group = {g: optax.inject_hyperparams(optax.adamw)(learning_rate=lr, b1=b1_schedule(cfg), b2=cfg.b2,
                                                          eps=cfg.eps, weight_decay=cfg.weight_decay)
                 for g, lr in lr_schedules(cfg).items()}
    chain = optax.chain(optax.clip_by_global_norm(cfg.grad_clip_norm), optax.multi_transform(per_group, group_labels))
    # Never past max_consecutive_errors here: optax would then apply the non-finite update, the fused one never does.
    return optax.apply_if_finite(chain, 1000)


def _moments(state, which: str) -> dict:
    """optax's per-group masked moments merged into one params-shaped tree."""
    groups = state.inner_state[1].inner_states
    trees = [getattr(groups[g].inner_state.inner_state[0], which) for g in groups]
    pick = lambda *xs: next(x for x in xs if not isinstance(x, optax.MaskedNode))  # noqa: E731
    return jax.tree.map(pick, *trees, is_leaf=lambda x: isinstance(x, optax.MaskedNode))


def test_fused_adamw_matches_the_optax_composition_step_by_step():
    """Clipped and unclipped steps, NaN/inf gradients in and out of a row: the same updates, moments, counts and
    skip counters as optax's composition. Values agree to an ulp, not bitwise: XLA fuses the two programs
    differently. (optax applies a non-finite update after max_consecutive_errors in a row; the fused one never
    does: the next test.)"""
    cfg = OptimConfig(total_steps=12, lr=1e-2, midas_lr_factor=10.0, pct_start=0.3, max_consecutive_nonfinite=2,
                      grad_clip_norm=0.5)
    params = {"core": {"pretrained": {"w": jnp.linspace(-1.0, 1.0, 6).reshape(2, 3),
                                      "relative_position_bias_table": jnp.arange(4.0)},
                       "scratch": {"w": jnp.ones((3,))}},
              "metric_head": {"w": jnp.full((2, 2), 0.5)}}
    ours, theirs = make_optimizer(cfg), _optax_composition(cfg)
    s_ours, s_theirs = ours.init(params), theirs.init(params)
    bad = {"nan": jnp.nan, "inf": jnp.inf}
    # Gradient scales 0.01 (global norm below the clip) and 1 (above); the 3rd bad one in a row goes through.
    schedule = [("ok", 1.0), ("ok", 0.01), ("nan", 1.0), ("ok", 1.0), ("inf", 1.0), ("nan", 0.01), ("nan", 1.0),
                ("ok", 0.01), ("ok", 1.0), ("ok", 1.0)]
    rng = np.random.default_rng(0)
    for i, (kind, scale) in enumerate(schedule):
        grads = jax.tree.map(lambda p, s=scale: jnp.asarray(s * rng.normal(size=p.shape), jnp.float32), params)
        if kind != "ok":
            grads["core"]["scratch"]["w"] = grads["core"]["scratch"]["w"].at[1].set(bad[kind])
        u_ours, s_ours = jax.jit(ours.update)(grads, s_ours, params)
        u_theirs, s_theirs = jax.jit(theirs.update)(grads, s_theirs, params)
        msg = f"step {i} ({kind}, scale {scale})"
        for a, b in zip(jax.tree.leaves(u_ours), jax.tree.leaves(u_theirs), strict=True):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6, atol=0, err_msg=msg)
        for which in ("mu", "nu"):
            for a, b in zip(jax.tree.leaves(getattr(s_ours, which)), jax.tree.leaves(_moments(s_theirs, which)),
                            strict=True):
                np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6, atol=0, err_msg=f"{which}, {msg}")
        adam_count = s_theirs.inner_state[1].inner_states["head"].inner_state.inner_state[0].count
        assert int(s_ours.count) == int(adam_count), msg
        for field in ("notfinite_count", "last_finite", "total_notfinite"):
            assert int(getattr(s_ours, field)) == int(getattr(s_theirs, field)), f"{field}, {msg}"
        params = optax.apply_updates(params, u_ours)
    assert int(nonfinite_count(s_ours)) == 4
    assert all(np.all(np.isfinite(np.asarray(x))) for x in jax.tree.leaves(params))


def test_nonfinite_gradients_are_never_applied_however_many_in_a_row():
    """Past max_consecutive_nonfinite the update stays zero and the params finite (optax's apply_if_finite would
    apply it, making every parameter NaN, which a run would then save): the loop stops the run instead."""
    cfg = OptimConfig(total_steps=12, max_consecutive_nonfinite=2)
    params = {"metric_head": {"w": jnp.ones(3)}}
    tx = make_optimizer(cfg)
    state = tx.init(params)
    update = jax.jit(tx.update)
    for i in range(5):
        updates, state = update({"metric_head": {"w": jnp.array([1.0, jnp.nan, 0.0])}}, state, params)
        assert np.all(np.asarray(updates["metric_head"]["w"]) == 0), i
        assert int(consecutive_nonfinite_count(state)) == i + 1
    assert int(nonfinite_count(state)) == 5 and int(state.count) == 0
    updates, state = update({"metric_head": {"w": jnp.ones(3)}}, state, params)
    assert np.all(np.isfinite(np.asarray(updates["metric_head"]["w"])))
    assert int(consecutive_nonfinite_count(state)) == 0 and int(nonfinite_count(state)) == 5
