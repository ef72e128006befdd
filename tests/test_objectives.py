"""The objectives table: the DA2 metric loss against its formula and range, the family checks, and the shared train
step learning a fixed batch with a tiny Depth Anything V2 metric model (logic, not numerics: fast compiles)."""

import jax
import numpy as np
import pytest
from batches import synthetic_batch

from zoejax.models.depth_anything import DepthAnything
from zoejax.models.depth_anything_config import preset
from zoejax.models.init import init_params
from zoejax.models.presets import zoed_n
from zoejax.models.zoedepth import ZoeDepth
from zoejax.training.losses import shifted_silog_loss
from zoejax.training.objectives import OBJECTIVES, LossConfig, objective_for
from zoejax.training.optim import OptimConfig, make_optimizer
from zoejax.training.state import create_train_state
from zoejax.training.step import make_train_step

DA_TINY = preset("da_tiny_metric")  # max_depth 20 m


def _reference(pred, gt, mask, lambd=0.5):
    d = np.log(gt[mask]) - np.log(pred[mask])
    return np.sqrt(np.mean(d**2) - lambd * np.mean(d) ** 2)


def test_shifted_silog_matches_the_official_formula():
    rng = np.random.default_rng(0)
    pred, gt = rng.uniform(0.5, 15, (2, 6, 8)), rng.uniform(0.5, 15, (2, 6, 8))
    mask = rng.random((2, 6, 8)) > 0.3
    loss, n = shifted_silog_loss(pred, gt, mask)
    assert int(n) == mask.sum()
    np.testing.assert_allclose(float(loss), _reference(pred, gt, mask), rtol=1e-5)
    # Scale: pred = c * gt gives d = -ln c everywhere, L = |ln c| * sqrt(1 - 0.5); no x10.
    loss, _ = shifted_silog_loss(2.0 * gt, gt, np.ones_like(mask))
    np.testing.assert_allclose(float(loss), np.log(2.0) * np.sqrt(0.5), rtol=1e-5)
    assert float(shifted_silog_loss(pred, gt, np.zeros_like(mask))[0]) == 0.0


def test_da2_objective_scores_only_the_recipe_depth_range():
    rng = np.random.default_rng(1)
    gt = rng.uniform(1, 15, (1, 4, 14))
    gt[0, 0, :3] = [0.0005, 25.0, 20.0]  # below 0.001 m, above max_depth 20 m, at max_depth (kept)
    pred = rng.uniform(1, 15, gt.shape)
    batch = {"depth": gt, "valid": np.ones(gt.shape, bool)}
    total, metrics = objective_for(DA_TINY, LossConfig()).make_loss(DA_TINY, LossConfig())(
        {"metric_depth": pred}, batch)
    keep = (gt >= 0.001) & (gt <= 20.0)
    assert int(metrics["valid_pixels"]) == keep.sum() == gt.size - 2
    np.testing.assert_allclose(float(total), _reference(pred, gt, keep), rtol=1e-5)


def test_objective_table_checks_the_family():
    assert objective_for(zoed_n("tiny"), LossConfig()) is OBJECTIVES["zoedepth"]
    assert objective_for(DA_TINY, LossConfig()) is OBJECTIVES["da2_metric"]
    with pytest.raises(ValueError, match="trains ZoeDepthConfig models.*DepthAnythingConfig"):
        objective_for(DA_TINY, LossConfig(objective="zoedepth"))
    with pytest.raises(ValueError, match="not one of"):
        objective_for(DA_TINY, LossConfig(objective="nope"))
    assert objective_for(preset("da_tiny_relative"), LossConfig()) is OBJECTIVES["da_relative"]
    with pytest.raises(ValueError, match="relative Depth Anything"):
        make_train_step(DepthAnything(DA_TINY), make_optimizer(OptimConfig(total_steps=2)),
                        LossConfig(objective="da_relative"))
    with pytest.raises(ValueError, match="metric Depth Anything"):
        make_train_step(DepthAnything(preset("da_tiny_relative")), make_optimizer(OptimConfig(total_steps=2)),
                        LossConfig(objective="da2_metric"))
    with pytest.raises(ValueError, match="trains DepthAnythingConfig"):
        make_train_step(ZoeDepth(zoed_n("tiny")), make_optimizer(OptimConfig(total_steps=2)),
                        LossConfig(objective="da2_metric"))


def test_da2_loss_decreases_on_a_fixed_batch(fast_compiles):
    tx = make_optimizer(OptimConfig(total_steps=30, lr=1e-3, encoder_lr_factor=1.0, pos_enc_lr_factor=1.0,
                                    grad_clip_norm=1.0))
    step = jax.jit(make_train_step(DepthAnything(DA_TINY), tx, LossConfig()))
    state = create_train_state(init_params(DA_TINY, 0), tx)
    batch, rng = synthetic_batch(2, (56, 84)), jax.random.key(0)
    losses = []
    for _ in range(8):
        state, metrics = step(state, batch, rng)
        assert bool(metrics["finite"]) and int(metrics["valid_pixels"]) == int(batch["valid"].sum())
        losses.append(float(metrics["loss"]))
    assert int(state.step) == 8
    assert losses[-1] < 0.8 * losses[0], losses


def test_da_relative_objective_is_the_relative_loss_and_its_config_traces_a_step():
    """A relative Depth Anything model trains with the relative MiDaS objective's loss (the same numbers on the same
    output), and configs/depth_anything_relative.py builds a run whose train step traces (no compile)."""
    from zoejax.cli.train import build_run
    from zoejax.configs import depth_anything_relative
    from zoejax.models.init import param_shapes
    from zoejax.models.relative_depth import relative_config

    rng = np.random.default_rng(2)
    batch = {"depth": rng.uniform(0.5, 10, (2, 14, 28)), "valid": rng.random((2, 14, 28)) > 0.2,
             "disparity": np.array([False, True])}
    out = {"relative_depth": rng.uniform(0, 3, (2, 14, 28))}
    cfg = LossConfig(relative_trim=0.0, relative_median="valid", w_relative_grad=0.0)
    relative = relative_config(zoed_n("tiny"))
    da, midas = (objective_for(c, cfg).make_loss(c, cfg)(out, batch) for c in (preset("da_tiny_relative"), relative))
    assert float(da[0]) > 0 and float(da[0]) == float(midas[0])

    config = depth_anything_relative.get_config("dinov2_tiny")
    config.global_batch_size, config.eval_every_steps = 2, 0
    model, _, optim, loss, batches, _ = build_run(config, 0, 1)
    assert model == preset("da_tiny_relative") and loss.objective == "da_relative"  # the tiny V1 and V2 taps agree
    assert (optim.schedule, optim.poly_power, loss.relative_trim, loss.w_relative_grad) == ("poly", 1.0, 0.0, 0.0)
    batch = next(batches)
    assert batch["image"].shape == (2, 28, 28, 3)
    tx = make_optimizer(optim)
    state = jax.eval_shape(lambda p: create_train_state(p, tx), param_shapes(model))
    _, metrics = jax.eval_shape(make_train_step(DepthAnything(model), tx, loss), state, batch, jax.random.key(0))
    assert metrics["loss"].shape == () and {"data_loss", "grad_loss", "valid_pixels"} <= set(metrics)
