"""Depth Anything V2 metric fine-tuning: the recipes' settings against the official numbers
(configs/depth_anything_v2_metric_{hypersim,vkitti}.py), the poly schedule by hand and through the optimizer, the
optimizer groups on the Depth Anything model, and the one-command fine-tune on a custom list
(configs/finetune_custom.py, variant da2) through zoejax-train, starting from a relative Depth Anything model (its
encoder only; a fresh DPT head)."""

import jax
import numpy as np
import pytest
from numerics import random_params

from zoejax.cli.config_loading import run_configs
from zoejax.cli.train import build_run
from zoejax.configs import depth_anything_v2_metric_hypersim as hypersim
from zoejax.configs import depth_anything_v2_metric_vkitti as vkitti
from zoejax.models.depth_anything_config import PRESETS, da2_metric
from zoejax.storage.converted import save_converted
from zoejax.training.loop import load_init_from
from zoejax.training.optim import OptimConfig, group_labels, learning_rates, lr_schedules, make_optimizer

pytestmark = pytest.mark.usefixtures("fast_compiles")


def test_recipes_are_the_official_ones():
    for module, max_depth, steps, epoch in ((hypersim, 20.0, 223_200, 1860), (vkitti, 80.0, 73_320, 611)):
        config = module.get_config()
        model, train, optim, loss = run_configs(config)
        assert model == PRESETS[f"da2_metric_{'hypersim' if module is hypersim else 'vkitti'}_vitl"]
        assert model.head.max_depth == max_depth and model.backbone.hooks == (4, 11, 17, 23)
        assert tuple(config.input_size) == (518, 518) and train.global_batch_size == 4 * 8
        assert (train.num_train_steps, train.eval_every_steps) == (steps, epoch) == (120 * epoch, epoch)
        assert (optim.schedule, optim.poly_power, optim.weight_decay, optim.rel_pos_weight_decay) == (
            "poly", 0.9, 0.01, True)
        assert (optim.cycle_momentum, optim.max_momentum, optim.b2, optim.eps) == (False, 0.9, 0.999, 1e-8)
        assert not optim.grad_clip_norm and optim.accumulate_steps == 1
        assert learning_rates(optim) == pytest.approx({"encoder": 5e-6, "rel_pos": 5e-6, "decoder": 5e-5,
                                                       "head": 5e-5})
        assert (loss.objective, loss.da2_lambda, loss.w_si) == ("da2_metric", 0.5, 1.0)
        data = config.data
        assert (data.train_resize, data.cover_multiple) == ("cover_crop", 14)
        assert (data.augment.flip_prob, data.augment.rotate_degrees, data.augment.photometric_prob) == (0.5, 0, 0)
        assert data.augment.random_crop is None  # the cover-crop takes the 518x518 window
    # An official epoch: DistributedSampler pads to 8 equal shares, each loader drops its incomplete batch of 4.
    assert hypersim.steps_per_epoch(59_543) == 7443 // 4 and hypersim.steps_per_epoch(19_559) == 2445 // 4


def test_poly_schedule_by_hand_and_through_the_optimizer():
    cfg = OptimConfig(total_steps=10, schedule="poly", lr=1e-3, encoder_lr_factor=10.0, pos_enc_lr_factor=10.0,
                      grad_clip_norm=0.0, cycle_momentum=False, max_momentum=0.9)
    head = lr_schedules(cfg)["head"]
    # The official loop sets base * (1 - i / T)^0.9 after step i: steps 0 and 1 run at the base rate.
    by_hand = {0: 1e-3, 1: 1e-3, 2: 1e-3 * 0.9**0.9, 3: 1e-3 * 0.8**0.9, 10: 1e-3 * 0.1**0.9, 11: 0.0, 50: 0.0}
    assert by_hand[2] == pytest.approx(9.09533e-4, rel=1e-5) and by_hand[10] == pytest.approx(1.25893e-4, rel=1e-5)
    for step, rate in by_hand.items():
        assert float(head(step)) == pytest.approx(rate, rel=1e-6, abs=1e-12), step
    assert float(lr_schedules(cfg)["encoder"](2)) == pytest.approx(1e-4 * 0.9**0.9, rel=1e-6)
    # Through AdamW: under a constant unit gradient m / sqrt(v) is 1 at every step, so each parameter p moves by
    # -rate * (1 + 0.01 p), its group's rate at that step and the decoupled decay (to the float32 bias corrections).
    tx = make_optimizer(cfg)
    params = {"pretrained": {"w": np.zeros(3, np.float32)}, "depth_head": {"w": np.zeros(2, np.float32)}}
    state = tx.init(params)
    grads = jax.tree.map(np.ones_like, params)
    for step in range(4):
        updates, state = tx.update(grads, state, params)
        for group, factor in (("pretrained", 0.1), ("depth_head", 1.0)):
            p = np.asarray(params[group]["w"], np.float64)
            np.testing.assert_allclose(updates[group]["w"], -factor * by_hand[step] * (1 + 0.01 * p), rtol=1e-5)
        params = jax.tree.map(lambda p, u: p + u, params, updates)
    with pytest.raises(ValueError, match="optim.schedule='cosine' is not one of"):
        OptimConfig(total_steps=1, schedule="cosine")


def test_optimizer_groups_on_the_depth_anything_model():
    labels = group_labels(jax.tree.map(lambda s: s.shape, random_params(PRESETS["da_tiny_metric"])))
    assert set(labels) == {"pretrained", "depth_head"}
    assert labels["pretrained"]["pos_embed"] == "rel_pos" and labels["pretrained"]["cls_token"] == "encoder"
    assert {v for k, sub in labels["pretrained"].items() if k != "pos_embed" for v in jax.tree.leaves(sub)} == {
        "encoder"}
    assert set(jax.tree.leaves(labels["depth_head"])) == {"decoder"}


def _tiny_run(module, **changes):
    config = module.get_config("dinov2_tiny")
    config.num_train_steps, config.global_batch_size, config.eval_every_steps = 1, 2, 0
    config.mesh_shape = (1, 1, 1)
    for key, value in changes.items():
        config[key] = value
    return config


def test_one_command_finetune_on_a_custom_list_from_a_relative_depth_anything_model(tmp_path, capsys):
    """configs/finetune_custom.py's da2 variant through zoejax-train's main, started from a relative Depth Anything
    model (its encoder only; a fresh DPT head, as the official metric training): a custom training list of 28x42
    frames cover-cropped to 28x28, a custom validation list scored after the step, both parts moved by it."""
    from custom_finetune import finetune_config, run_train_cli, write_list

    from zoejax.conversion.load import load_weights

    relative = PRESETS["da_tiny_relative"]
    model = da2_metric("dinov2_tiny", 20.0)
    assert model == PRESETS["da_tiny_metric"]
    relative_params = jax.tree.map(np.asarray, random_params(relative, seed=3))
    folder = save_converted(tmp_path / "relative", relative, relative_params, {}, {"source": "test"})
    start = load_init_from(str(folder), model)
    assert start.provenance["fresh_depth_head"] and set(start.params) == {"pretrained", "depth_head"}
    for a, b in zip(jax.tree.leaves(start.params["pretrained"]), jax.tree.leaves(relative_params["pretrained"]),
                    strict=True):
        np.testing.assert_array_equal(a, b)  # the encoder is the relative model's
    fresh = zip(jax.tree.leaves(start.params["depth_head"]), jax.tree.leaves(relative_params["depth_head"]),
                strict=True)
    assert all(not np.array_equal(a, b) for a, b in fresh)  # the DPT head is not

    # The vkitti recipe builds its 80 m model and 28x28 cover-crops of synthetic streets.
    model_k, *_, batches_k, _ = build_run(_tiny_run(vkitti), 0, 1)
    assert model_k.head.max_depth == 80.0 and next(batches_k)["depth"].shape == (2, 28, 28)

    train_list = write_list(tmp_path / "data", "train", 2, (28, 42), 8.0, seed=1)
    val_list = write_list(tmp_path / "data", "val", 2, (28, 42), 8.0, seed=2)
    recipe = f"configs/finetune_custom.py:train={train_list},val={val_list},variant=da2,backbone=dinov2_tiny"
    run_model, run, optim, loss, batches, _ = build_run(finetune_config(recipe, folder), 0, 1)
    assert run_model == model and run.init_from == str(folder) and run.eval_every_steps == 250
    assert optim.schedule == "poly" and loss.objective == "da2_metric" and run.global_batch_size == 2
    assert learning_rates(optim) == pytest.approx({"encoder": 5e-7, "rel_pos": 5e-7, "decoder": 5e-6,
                                                   "head": 5e-6})  # the official rates / 10
    batch = next(batches)
    assert tuple(batch["image"].shape) == (2, 28, 28, 3) and tuple(batch["depth"].shape) == (2, 28, 28)

    result = run_train_cli(["--config", recipe, "--workdir", str(tmp_path / "run"), f"--config.init_from={folder}",
                            "--config.num_train_steps=1", "--config.global_batch_size=2",
                            "--config.eval.batch_size=2", "--config.async_checkpoints=False",
                            "--config.tensorboard=False"], capsys)
    # Every pixel is in range (0.5..8 m): two 28x28 crops.
    assert result["step"] == 1 and np.isfinite(result["loss"]) and result["valid_pixels"] == 2 * 28 * 28
    assert np.isfinite(result["eval"]["custom/abs_rel"]) and result["eval"]["custom/a1"] >= 0
    trained = load_weights(tmp_path / "run")
    assert trained.config == model
    for part in ("pretrained", "depth_head"):
        pairs = zip(jax.tree.leaves(trained.params[part]), jax.tree.leaves(start.params[part]), strict=True)
        assert any(not np.array_equal(a, b) for a, b in pairs), part
