"""The pure train step on tiny models: learns a synthetic scene, skips non-finite updates, is deterministic.

These tests check training logic, not numerics, so XLA's slow optimisation passes are switched off for them.
"""

import jax
import jax.numpy as jnp
import pytest
from batches import synthetic_batch

from zoejax.models import presets
from zoejax.models.init import init_params
from zoejax.models.zoedepth import ZoeDepth
from zoejax.training.losses import domain_loss, silog_loss
from zoejax.training.optim import OptimConfig, make_optimizer
from zoejax.training.state import create_train_state
from zoejax.training.step import LossConfig, make_train_step


def _batch(domain=0, b=2):
    return synthetic_batch(b, (64, 96), domain)


@pytest.fixture(scope="module", params=["zoed_n", "zoed_nk"])
def setup(request, fast_compiles):
    cfg = presets.VARIANTS[request.param]("tiny")
    tx = make_optimizer(OptimConfig(total_steps=30, lr=1e-3, encoder_lr_factor=1.0, pos_enc_lr_factor=1.0,
                                    grad_clip_norm=1.0))
    train_step = make_train_step(ZoeDepth(cfg), tx, LossConfig(route_by_label=True))
    state = create_train_state(init_params(cfg, 0), tx)

    @jax.jit
    def evaluate(params, batch):  # the step's loss (weights of LossConfig()) in inference mode, labelled routing
        domain = batch["domain"] if cfg.is_multi_head else None
        out = ZoeDepth(cfg).apply({"params": params}, batch["image"], domain)
        loss = silog_loss(out["metric_depth"], batch["depth"], batch["valid"])[0]
        return loss + 100.0 * domain_loss(out["domain_logits"], batch["domain"]) if cfg.is_multi_head else loss

    return cfg, jax.jit(train_step), evaluate, state


def test_loss_decreases_on_a_fixed_batch(setup):
    cfg, step, evaluate, state = setup
    batch, rng = _batch(), jax.random.key(1)
    first = float(evaluate(state.params, batch))
    for _ in range(12):
        state, metrics = step(state, batch, rng)
        assert bool(metrics["finite"])
    assert int(state.step) == 12
    last = float(evaluate(state.params, batch))
    assert last < 0.8 * first, (first, last)
    assert ("domain_loss" in metrics) == cfg.is_multi_head


def test_nonfinite_batch_is_skipped_and_counted(setup):
    _, step, _, state = setup
    batch = _batch()
    batch["depth"][0, 0, 0] = -1.0  # log of a negative valid pixel -> NaN loss and gradients
    new_state, metrics = step(state, batch, jax.random.key(0))
    assert not bool(metrics["finite"]) and int(metrics["skipped_steps"]) == 1
    assert int(new_state.step) == 1
    assert all(jax.tree.leaves(jax.tree.map(lambda a, b: bool(jnp.all(a == b)), new_state.params, state.params)))


def test_step_is_deterministic_given_rng(setup):
    cfg, step, _, state = setup
    a, _ = step(state, _batch(domain=1), jax.random.key(3))
    b, _ = step(state, _batch(domain=1), jax.random.key(3))
    c, _ = step(state, _batch(domain=1), jax.random.key(4))
    same = lambda x, y: all(jax.tree.leaves(jax.tree.map(lambda u, v: bool(jnp.all(u == v)), x, y)))  # noqa: E731
    assert same(a.params, b.params)
    # Only the NK router has dropout, so only there does another rng change the update.
    assert same(a.params, c.params) != cfg.is_multi_head
