"""Relative-depth training pieces: the "relative" objective (MiDaS losses on the batch, in disparity), its
variants from the config, mixing datasets by example at fixed proportions (deterministic, resumable), custom rows
of kind disparity and sky masks, the recipe, and init_from across the relative / ZoeDepth boundary."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax.traverse_util import flatten_dict, unflatten_dict
from PIL import Image

from data_pipelines.config import AugmentConfig, DataConfig, SourceConfig
from data_pipelines.errors import ListFormatError
from data_pipelines.pipeline import build_train
from data_pipelines.sources.custom import CustomSource
from data_pipelines.transforms import Finalize
from zoejax.cli.config_loading import run_configs
from zoejax.configs import midas_relative
from zoejax.models import presets
from zoejax.models.init import param_shapes
from zoejax.models.relative_depth import RelativeDepthConfig, relative_config
from zoejax.ops.resize import resize_bilinear
from zoejax.storage.converted import save_converted
from zoejax.training.loop import load_init_from
from zoejax.training.objectives import OBJECTIVES, LossConfig, objective_for
from zoejax.training.relative_losses import relative_depth_loss


def batch_of(depth, valid, disparity=None):
    b = {"depth": jnp.asarray(depth, jnp.float32), "valid": jnp.asarray(valid)}
    if disparity is not None:
        b["disparity"] = jnp.asarray(disparity)
    return b


def test_relative_objective_scores_disparity_with_the_configured_variant():
    rng = np.random.default_rng(0)
    depth = rng.uniform(0.5, 9.0, (2, 16, 24)).astype(np.float32)
    valid = rng.uniform(size=depth.shape) > 0.2
    pred = rng.uniform(0.1, 2.0, (2, 8, 12)).astype(np.float32)  # half the target's size: resized up first
    model = relative_config(presets.zoed_n("tiny"))
    assert objective_for(model, LossConfig()).family is RelativeDepthConfig  # the model's default objective
    loss = OBJECTIVES["relative"].make_loss(model, LossConfig())
    total, metrics = loss({"relative_depth": jnp.asarray(pred)}, batch_of(np.where(valid, depth, 0), valid))
    up = resize_bilinear(jnp.asarray(pred)[..., None], (16, 24), align_corners=True)[..., 0]
    want, _ = relative_depth_loss(up, jnp.where(valid, 1.0 / depth, 0.0), jnp.asarray(valid))
    assert float(total) == pytest.approx(float(want), rel=1e-6) and metrics["valid_pixels"] == valid.sum()
    # a disparity example is used as it is: the same loss as the metric example it is the inverse of
    disparity = np.where(valid, 1.0 / depth, 0)
    same, _ = loss({"relative_depth": jnp.asarray(pred)}, batch_of(disparity, valid, np.array([True, True])))
    assert float(same) == pytest.approx(float(total), rel=1e-5)
    lsq = OBJECTIVES["relative"].make_loss(model, LossConfig(relative_data="ssi_lsq", w_relative_grad=0.0))
    got, _ = lsq({"relative_depth": jnp.asarray(pred)}, batch_of(np.where(valid, depth, 0), valid))
    want, _ = relative_depth_loss(up, jnp.where(valid, 1.0 / depth, 0.0), jnp.asarray(valid), data_loss="ssi_lsq",
                                  alpha=0.0)
    assert float(got) == pytest.approx(float(want), rel=1e-6)
    with pytest.raises(ValueError, match="relative_median"):
        LossConfig(relative_median="mean")
    with pytest.raises(ValueError, match="trains RelativeDepthConfig"):
        objective_for(presets.zoed_n("tiny"), LossConfig(objective="relative"))


def synthetic_mix(mix, weights=(1.0, 1.0), batch=4):
    sources = tuple(SourceConfig(name, num_examples=16, size=(32, 48), weight=w)
                    for name, w in zip(("synthetic_indoor", "synthetic_outdoor"), weights, strict=True))
    return DataConfig(sources=sources, mix=mix, batch_size=batch, image_size=(32, 48), read_threads=0,
                      augment=AugmentConfig(enabled=False))


def test_mixing_by_example_gives_every_batch_fixed_proportions_and_resumes_exactly():
    it = iter(build_train(synthetic_mix("example"), seed=3, process_index=0, process_count=1))
    first = [next(it) for _ in range(2)]
    for b in first:
        assert sorted(b["domain"].tolist()) == [0, 0, 1, 1]  # equal parts of each source in every batch
    state = it.get_state()
    after = [next(it) for _ in range(2)]
    again = iter(build_train(synthetic_mix("example"), seed=3, process_index=0, process_count=1))
    again.set_state(state)
    for want in after:
        got = next(again)
        for key in want:
            np.testing.assert_array_equal(got[key], want[key], err_msg=key)
    three_to_one = iter(build_train(synthetic_mix("example", (3.0, 1.0)), seed=3, process_index=0, process_count=1))
    assert sorted(next(three_to_one)["domain"].tolist()) == [0, 0, 0, 1]
    by_batch = iter(build_train(synthetic_mix("batch"), seed=3, process_index=0, process_count=1))
    assert all(len(set(next(by_batch)["domain"].tolist())) == 1 for _ in range(2))  # the NK mix: one source each
    with pytest.raises(ValueError, match="mix must be one of"):
        synthetic_mix("pixel")


def test_custom_rows_of_kind_disparity_and_sky_masks(tmp_path):
    rgb = np.full((6, 8, 3), 128, np.uint8)
    Image.fromarray(rgb).save(tmp_path / "a.png")
    disparity = np.full((6, 8), 40.0, np.float32)  # far beyond any metric range: no range applies to disparity
    disparity[0, 0] = 0.0  # no measurement
    np.save(tmp_path / "a_disp.npy", disparity)
    np.save(tmp_path / "a_depth.npy", np.full((6, 8), 3.0, np.float32))
    sky = np.zeros((6, 8), np.uint8)
    sky[:2] = 255
    Image.fromarray(sky).save(tmp_path / "a_sky.png")
    (tmp_path / "list.csv").write_text("image,depth,depth_scale,kind,sky_mask\n"
                                       "a.png,a_disp.npy,1,disparity,a_sky.png\na.png,a_depth.npy,1,,\n")
    source = CustomSource(str(tmp_path / "list.csv"))
    finalize = Finalize(1e-3, 10.0)
    disp, metric = finalize.map(source[0]), finalize.map(source[1])
    assert disp["disparity"] and not metric["disparity"]
    want = np.ones((6, 8), bool)
    want[:2] = False  # sky
    want[0, 0] = False
    np.testing.assert_array_equal(disp["valid"], want)
    assert np.all(disp["depth"][want] == 40.0) and metric["valid"].all()
    (tmp_path / "bad.csv").write_text("image,depth,depth_scale,kind\na.png,a_disp.npy,1,inverse\n")
    with pytest.raises(ListFormatError, match="kind must be one of depth, disparity"):
        CustomSource(str(tmp_path / "bad.csv"))


def test_recipe_builds_a_relative_run():
    model, train, optim, loss = run_configs(midas_relative.get_config("tiny"))
    assert isinstance(model, RelativeDepthConfig) and loss.objective == "relative"
    assert (loss.relative_data, loss.relative_median, loss.w_relative_grad, loss.relative_scales) == \
        ("ssitrim", "masked_zeros", 0.5, 4)
    assert optim.lr / optim.encoder_lr_factor == pytest.approx(1e-5) and optim.weight_decay == 0.0
    assert midas_relative.get_config().data.mix == "example"


def test_init_from_moves_the_core_across_the_relative_zoedepth_boundary(tmp_path):
    zoe = presets.zoed_n("tiny")
    rng = np.random.default_rng(0)
    core = unflatten_dict({k: rng.normal(0, 0.05, v.shape).astype(np.float32)
                           for k, v in flatten_dict(param_shapes(zoe)["core"]).items()})
    save_converted(tmp_path / "rel", relative_config(zoe), {"core": core}, {}, {"source": "test"})
    started = load_init_from(str(tmp_path / "rel"), zoe, seed=0)  # M12 -> ZoeD_N: the core, a fresh head
    assert set(started.params) == {"core", "metric_head"}
    for key, value in flatten_dict(core).items():
        np.testing.assert_array_equal(np.asarray(flatten_dict(started.params["core"])[key]), value)
    head = jax.tree.leaves(started.params["metric_head"])
    assert head and all(np.all(np.isfinite(x)) for x in head)
    save_converted(tmp_path / "zoe", zoe, started.params, {}, {"source": "test"})
    back = load_init_from(str(tmp_path / "zoe"), relative_config(zoe))  # a ZoeDepth checkpoint starts a relative run
    assert set(back.params) == {"core"}
