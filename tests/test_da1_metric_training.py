"""Depth Anything V1 metric fine-tuning: the recipes' settings (configs/depth_anything_metric_{n,nk}.py), the
optimizer groups on the Depth Anything core, the input-size check on multiples of 14, and the one-command fine-tune
on a custom list (configs/finetune_custom.py, variant da1) through zoejax-train, starting from a relative Depth
Anything model (its encoder and DPT head; a fresh metric head)."""

import jax
import numpy as np
import pytest
from numerics import random_params

from zoejax.cli.train import build_run
from zoejax.configs import depth_anything_metric_n, depth_anything_metric_nk
from zoejax.models import presets
from zoejax.models.depth_anything_config import PRESETS
from zoejax.storage.converted import save_converted
from zoejax.training.loop import load_init_from
from zoejax.training.optim import OptimConfig, group_labels, learning_rates, param_group

pytestmark = pytest.mark.usefixtures("fast_compiles")


def test_recipes_are_the_official_ones():
    n, nk = depth_anything_metric_n.get_config(), depth_anything_metric_nk.get_config()
    for config in (n, nk):
        assert tuple(config.input_size) == (392, 518) and config.model.core == "depth_anything"
        assert (config.optim.midas_lr_factor, config.optim.encoder_lr_factor, config.optim.pos_enc_lr_factor) == (
            50.0, 50.0, 50.0)
        assert config.model.backbone.embed_dim == 1024 and config.model.backbone.hooks == (20, 21, 22, 23)
    assert (n.optim.lr, n.num_train_steps, n.loss.w_domain) == (1.61e-4, 5 * 1515, 0.0)
    assert (nk.optim.lr, nk.num_train_steps, nk.loss.w_domain) == (2.512e-4, 10 * 3032, 100.0)
    assert len(nk.model.bins) == 2 and nk.model.router is not None


def test_optimizer_groups_on_the_depth_anything_core():
    shapes = jax.tree.map(lambda s: s.shape, random_params(presets.da1_metric_n(presets.DA1_METRIC_TINY)))
    labels = group_labels(shapes)
    assert labels["core"]["pretrained"]["pos_embed"] == "rel_pos"  # official get_rel_pos_params: "pos_embed"
    assert labels["core"]["pretrained"]["cls_token"] == "encoder"
    assert labels["core"]["pretrained"]["blocks_0"]["attn"]["qkv"]["kernel"] == "encoder"
    assert {v for v in jax.tree.leaves(labels["core"]["depth_head"])} == {"decoder"}
    assert {v for v in jax.tree.leaves(labels["metric_head"])} == {"head"}
    # The MiDaS core's groups are unchanged (BEiT's relative-position tables, MiDaS' scratch).
    assert param_group(("core", "pretrained", "model", "blocks_0", "attn", "relative_position_bias_table")) == \
        "rel_pos"
    assert param_group(("core", "pretrained", "model", "pos_embed")) == "encoder"
    assert param_group(("core", "scratch", "refinenet1", "out_conv", "kernel")) == "decoder"
    rates = learning_rates(OptimConfig(total_steps=1, lr=1.61e-4, encoder_lr_factor=50, pos_enc_lr_factor=50,
                                       midas_lr_factor=50))
    assert rates == pytest.approx({"encoder": 3.22e-6, "rel_pos": 3.22e-6, "decoder": 3.22e-6, "head": 1.61e-4})


def _tiny_run(**changes):
    config = depth_anything_metric_n.get_config("dinov2_tiny")
    config.num_train_steps, config.global_batch_size, config.eval_every_steps = 1, 2, 0
    config.mesh_shape = (1, 1, 1)
    for key, value in changes.items():
        config[key] = value
    return config


def test_input_size_must_be_a_multiple_of_14():
    with pytest.raises(ValueError, match=r"both positive multiples of 14 \(e.g. \(392, 518\)\)"):
        build_run(_tiny_run(input_size=(28, 40)), 0, 1)


def test_one_command_finetune_on_a_custom_list_from_a_relative_depth_anything_model(tmp_path, capsys):
    """configs/finetune_custom.py's da1 variant through zoejax-train's main, started from a relative Depth Anything
    model (its encoder and DPT head; a fresh metric head): a custom training list, a custom validation list scored
    after the step, and every part of the model moved by it."""
    from custom_finetune import finetune_config, run_train_cli, write_list

    from zoejax.conversion.load import load_weights

    relative = PRESETS["da_tiny_relative"]
    model = presets.da1_metric_n(presets.DA1_METRIC_TINY)
    assert relative.backbone.hooks == model.backbone.hooks  # the tiny V1 and V2 taps coincide (4 blocks)
    da_params = jax.tree.map(np.asarray, random_params(model, seed=3)["core"])
    folder = save_converted(tmp_path / "relative", relative, da_params, {}, {"source": "test"})
    start = load_init_from(str(folder), model)
    assert start.provenance["fresh_metric_head"] and set(start.params) == {"core", "metric_head"}
    for a, b in zip(jax.tree.leaves(start.params["core"]), jax.tree.leaves(da_params), strict=True):
        np.testing.assert_array_equal(a, b)

    train_list = write_list(tmp_path / "data", "train", 2, (28, 42), 8.0, seed=1)
    val_list = write_list(tmp_path / "data", "val", 2, (28, 42), 8.0, seed=2)
    recipe = f"configs/finetune_custom.py:train={train_list},val={val_list},variant=da1,backbone=dinov2_tiny"
    config = depth_anything_metric_n.get_config("dinov2_tiny")  # the typed run the CLI builds: the DA1 recipe's
    run_model, run, optim, _, _, _ = build_run(finetune_config(recipe, folder), 0, 1)
    assert run_model == model and run.init_from == str(folder) and run.eval_every_steps == 250
    assert optim.encoder_lr_factor == optim.pos_enc_lr_factor == optim.midas_lr_factor == 50
    assert optim.lr == pytest.approx(config.optim.lr / 10)  # the official rate / 10

    result = run_train_cli(["--config", recipe, "--workdir", str(tmp_path / "run"), f"--config.init_from={folder}",
                            "--config.num_train_steps=1", "--config.global_batch_size=2",
                            "--config.eval.batch_size=2", "--config.async_checkpoints=False",
                            "--config.tensorboard=False"], capsys)
    # Every pixel is in range (0.5..8 m): two 28x42 frames, the network size.
    assert result["step"] == 1 and np.isfinite(result["loss"]) and result["valid_pixels"] == 2 * 28 * 42
    assert np.isfinite(result["eval"]["custom/abs_rel"]) and result["eval"]["custom/a1"] >= 0
    trained = load_weights(tmp_path / "run")
    assert trained.config == model
    for part in (("core", "pretrained"), ("core", "depth_head"), ("metric_head",)):
        before, after = start.params, trained.params
        for key in part:
            before, after = before[key], after[key]
        pairs = zip(jax.tree.leaves(after), jax.tree.leaves(before), strict=True)
        assert any(not np.array_equal(a, b) for a, b in pairs), part
