"""Confidence maps (``predict(..., confidence=True)``): the bins' spread and flip disagreement, and that they are
informative on synthetic scenes: a briefly trained tiny ZoeD_N errs more on its least-confident pixels."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from numerics import random_params
from PIL import Image

from data_pipelines.synthetic.scenes import render_frame
from zoejax.cli import predict as predict_cli
from zoejax.inference import ZoeDepthModel
from zoejax.models import presets
from zoejax.models.init import init_params
from zoejax.models.zoedepth import ZoeDepth
from zoejax.ops.uncertainty import confidence_from_std, mixture_std
from zoejax.storage.converted import save_converted
from zoejax.training.optim import OptimConfig, make_optimizer
from zoejax.training.state import create_train_state
from zoejax.training.step import LossConfig, make_train_step

SIZE = (64, 96)
TRAIN_FRAMES, STEPS = 16, 100


def _frames(seed: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    frames = [render_frame(seed, i, 0, *SIZE) for i in range(n)]
    return np.stack([f[0] for f in frames]), np.stack([f[1] for f in frames])


def test_mixture_std_is_the_law_of_total_variance():
    rng = np.random.default_rng(0)
    a, b, sa, sb = rng.uniform(0.5, 3.0, (4, 5, 6))
    samples = np.concatenate([rng.normal(a, sa, (20000, 5, 6)), rng.normal(b, sb, (20000, 5, 6))])
    np.testing.assert_allclose(mixture_std(a, b, sa, sb), samples.std(0), rtol=0.03)
    np.testing.assert_allclose(mixture_std(a, b), np.abs(a - b) / 2, rtol=1e-6)


def test_confidence_is_one_half_at_the_images_median_spread():
    std = jnp.asarray([[[0.1, 0.2, 0.4, 0.8, 1.6]]])
    depth = jnp.asarray([[[1.0, 1.0, 1.0, 1.0, 0.0]]])  # the last pixel is invalid
    conf = np.asarray(confidence_from_std(depth, std))
    assert conf[0, 0, 4] == 0.0
    np.testing.assert_allclose(conf[0, 0, :4], 1 / (1 + np.array([0.1, 0.2, 0.4, 0.8]) / 0.3), rtol=1e-6)


def test_uncertainty_is_computed_only_when_asked_and_keeps_the_depth(fast_compiles):
    cfg = presets.zoed_n("tiny")
    model = ZoeDepthModel(cfg, init_params(cfg, 0), input_size=SIZE)
    image = np.random.default_rng(1).random((*SIZE, 3), dtype=np.float32)
    x = jnp.asarray(image[None])
    plain = ZoeDepth(cfg).apply({"params": model.params}, x)
    asked = ZoeDepth(cfg).apply({"params": model.params}, x, return_uncertainty=True)
    assert "metric_depth_std" not in plain and asked["metric_depth_std"].shape == (1, *SIZE)
    np.testing.assert_array_equal(plain["metric_depth"], asked["metric_depth"])
    pred = model.predict(image, confidence=True)
    np.testing.assert_allclose(pred.depth[0], model.predict(image), rtol=1e-6)
    assert pred.std.shape == pred.confidence.shape == (1, *SIZE)
    assert np.all(pred.std >= 0) and np.all((pred.confidence > 0) & (pred.confidence <= 1))
    assert float(np.min(asked["metric_depth_std"])) > 0  # random bins are spread
    naive = dataclasses.replace(cfg, head=dataclasses.replace(cfg.head, head_type="naive"))
    with pytest.raises(ValueError, match="flip TTA"):
        ZoeDepthModel(naive, random_params(naive), input_size=SIZE).predict(image, flip_tta=False, confidence=True)


@pytest.mark.slow  # trains a tiny model for 100 steps
def test_confidence_is_informative_on_synthetic_scenes():
    cfg = presets.zoed_n("tiny")
    tx = make_optimizer(OptimConfig(total_steps=STEPS, lr=1e-3, encoder_lr_factor=1.0, pos_enc_lr_factor=1.0,
                                    grad_clip_norm=1.0))
    step = jax.jit(make_train_step(ZoeDepth(cfg), tx, LossConfig()))
    state = create_train_state(init_params(cfg, 0), tx)
    images, depths = _frames(0, TRAIN_FRAMES)
    for s in range(STEPS):
        k = (4 * s) % TRAIN_FRAMES
        batch = {"image": jnp.asarray(images[k:k + 4] / 255.0, jnp.float32), "depth": jnp.asarray(depths[k:k + 4]),
                 "valid": jnp.asarray(depths[k:k + 4] > 0)}
        state, _ = step(state, batch, jax.random.key(0))
    model = ZoeDepthModel(cfg, state.params, input_size=SIZE)
    images, depths = _frames(1, 8)  # rooms of a scene seed training never saw
    pred = model.predict_batch(images, confidence=True)
    valid = depths > 0
    error, conf = np.abs(pred.depth - depths)[valid], pred.confidence[valid]
    low, high = np.quantile(conf, [0.1, 0.9])
    least, most = error[conf <= low].mean(), error[conf >= high].mean()
    print(f"MAE on the least-confident 10%: {least:.3f} m, on the most-confident 10%: {most:.3f} m")
    assert least > most, (least, most)


def test_predict_cli_writes_the_confidence_map(tmp_path, fast_compiles):
    cfg = presets.zoed_n("tiny")
    params = init_params(cfg, 0)
    save_converted(tmp_path / "model", cfg, params, {}, {"source": "random init (test)"})
    image = np.random.default_rng(2).integers(0, 256, (60, 80, 3), dtype=np.uint8)
    Image.fromarray(image).save(tmp_path / "room.png")
    out = tmp_path / "out"
    assert predict_cli.main(["--checkpoint", str(tmp_path / "model"), "--output", str(out), "--input-size", "64x96",
                             "--confidence", "--no-color", str(tmp_path / "room.png")]) == 0
    conf = np.load(out / "room_confidence.npy")
    expected = ZoeDepthModel(cfg, params, input_size=SIZE).predict(image, confidence=True).confidence[0]
    np.testing.assert_allclose(conf, expected, rtol=1e-5, atol=1e-6)
    png = np.asarray(Image.open(out / "room_confidence.png"))
    assert png.shape == (60, 80, 3) and png.dtype == np.uint8
    # bright = confident: the most confident pixel is brighter than the least confident
    brightness = png.astype(int).sum(-1)
    assert brightness.flat[np.argmax(conf)] > brightness.flat[np.argmin(conf)]
