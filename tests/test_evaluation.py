"""The evaluator: batched flip TTA, the protocol table, scores equal to a per-image reference computation,
sharded over 8 simulated devices equal to one device, and the paper's relative-improvement scores."""

import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from fast_compile import fast_compile_env

from data_pipelines.resize import resize_bilinear
from data_pipelines.synthetic.scenes import render_frame
from zoejax.evaluation.evaluator import Evaluator, predict_depth
from zoejax.evaluation.metrics import METRIC_TABLE, MetricAverager, compute_metrics
from zoejax.evaluation.protocols import GROUPS, PROTOCOLS, resolve_datasets
from zoejax.evaluation.report import format_table, improvement_scores, relative_improvement
from zoejax.evaluation.run import HELD_OUT_SCENE_SEED, EvalDataSettings, evaluate_datasets
from zoejax.models import presets
from zoejax.models.init import init_params
from zoejax.models.zoedepth import ZoeDepth
from zoejax.training.sharding import make_mesh

HERE = os.path.dirname(__file__)
SIZE = (64, 96)


pytestmark = pytest.mark.usefixtures("fast_compiles")


@pytest.fixture(scope="module")
def tiny_n():
    cfg = presets.zoed_n("tiny")
    return cfg, init_params(cfg, 0)


def test_flip_tta_is_one_batch_equal_to_the_hand_average(tiny_n):
    cfg, params = tiny_n
    model = ZoeDepth(cfg)
    images = jnp.asarray(np.random.default_rng(1).random((2, *SIZE, 3), dtype=np.float32))
    # Jitted (one compilation each) rather than eager: op-by-op dispatch of the whole model took ~30 s.
    forward = jax.jit(lambda p, x: model.apply({"params": p}, x)["metric_depth"])
    plain = forward(params, images)
    mirrored = forward(params, images[:, :, ::-1])[:, :, ::-1]
    assert float(jnp.abs(plain - mirrored).max()) > 1e-4 * float(jnp.abs(plain).max())  # asymmetric model
    tta = jax.jit(lambda p, x: predict_depth(model, p, x, None, SIZE, flip_tta=True))(params, images)
    np.testing.assert_allclose(tta, 0.5 * (plain + mirrored), rtol=1e-5, atol=1e-6)
    # One forward of 2B images, not two of B: the jaxpr holds a single encoder patch embedding.
    jaxpr = str(jax.make_jaxpr(lambda p, x: predict_depth(model, p, x, None, SIZE, True))(params, images))
    assert jaxpr.count("conv_general_dilated") == str(jax.make_jaxpr(
        lambda p, x: predict_depth(model, p, x, None, SIZE, False))(params, images)).count("conv_general_dilated")


def test_evaluator_equals_per_image_official_scoring(tiny_n):
    cfg, params = tiny_n
    n, native = 5, (48, 80)
    settings = EvalDataSettings(batch_size=2, image_size=SIZE, synthetic_examples=n,
                                overrides={"synthetic_indoor": {"size": native}})
    evaluator = Evaluator(ZoeDepth(cfg), make_mesh((1, 1, 1), jax.devices()[:1]))
    (result,) = evaluate_datasets(evaluator, params, ["synthetic_indoor"], settings, progress=False)
    assert result.num_images == n and result.num_without_depth == 1  # 5 frames + 1 padding blank at batch 2
    # Reference: each frame alone, resized on the host, the model at the network size, then the official
    # per-image metrics (prediction resized to the ground truth inside compute_metrics), mean over images.
    avg = MetricAverager()
    protocol = PROTOCOLS["synthetic_indoor"]
    forward = jax.jit(lambda p, x: ZoeDepth(cfg).apply({"params": p}, x)["metric_depth"])
    for i in range(n):
        image, depth, _ = render_frame(HELD_OUT_SCENE_SEED, i, 0, *native)
        x = resize_bilinear(image.astype(np.float32) / 255.0, SIZE, align_corners=True)[None]
        pred = forward(params, jnp.asarray(x))
        flipped = forward(params, jnp.asarray(x[:, :, ::-1]))[:, :, ::-1]
        avg.update(compute_metrics(depth, np.asarray(0.5 * (pred + flipped))[0], protocol.min_depth,
                                   protocol.max_depth, protocol.crop))
    expected = avg.result()
    for key, value in expected.items():
        assert result.metrics[key] == pytest.approx(value, rel=1e-4, abs=1e-6), key


def test_sharded_evaluation_matches_one_device():
    result = subprocess.run([sys.executable, os.path.join(HERE, "sharded_eval_check.py")], capture_output=True,
                            text=True, timeout=900, env=fast_compile_env())
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert [(r["variant"], tuple(r["layout"])) for r in rows] == [
        ("zoed_n", (1, 1, 1)), ("zoed_n", (2, 2, 2)), ("zoed_nk", (1, 1, 1)), ("zoed_nk", (8, 1, 1))]
    for variant in ("zoed_n", "zoed_nk"):
        ref, *others = [r for r in rows if r["variant"] == variant]
        assert ref["num_images"] == 11 and ref["metrics"]["abs_rel"] > 0
        for row in others:
            assert row["devices"] == int(np.prod(row["layout"])) and row["num_images"] == 11
            for key, value in ref["metrics"].items():
                assert abs(row["metrics"][key] - value) <= 1e-6 * max(abs(value), 1.0), (variant, row["layout"], key)


def test_protocol_table_matches_the_paper():
    assert (PROTOCOLS["nyu"].crop, PROTOCOLS["nyu"].max_depth) == ("eigen", 10)
    assert (PROTOCOLS["kitti"].crop, PROTOCOLS["kitti"].max_depth) == ("garg", 80)
    assert (PROTOCOLS["sunrgbd"].max_depth, PROTOCOLS["diml_outdoor"].min_depth) == (8, 2)
    assert all(PROTOCOLS[d].domain == 0 for d in GROUPS["all_indoor"])
    assert all(PROTOCOLS[d].domain == 1 for d in GROUPS["all_outdoor"])
    assert resolve_datasets("nyu,all_indoor") == ["nyu", "ibims", "sunrgbd", "diode_indoor", "hypersim"]
    with pytest.raises(ValueError, match="unknown dataset 'nyuu'"):
        resolve_datasets("nyuu")
    src = PROTOCOLS["kitti"].source("/data", list_file="/lists/mine.txt")
    assert (src.root, src.depth_root, src.list_file, src.split) == (
        "/data/kitti/raw", "/data/kitti/gts", "/lists/mine.txt", "test")
    # A relative data root gives paths under the working directory, the list file not doubled under the root.
    src = PROTOCOLS["nyu"].source("datasets")
    assert (src.root, src.list_file) == (os.path.abspath("datasets/nyu/official_splits/test"),
                                         os.path.abspath("datasets/nyu/nyudepthv2_test_files_with_gt.txt"))


def test_relative_improvement_scores_hand_computed():
    assert relative_improvement(0.8, 1.0, "a1") == pytest.approx(-0.2)
    assert relative_improvement(0.08, 0.1, "abs_rel") == pytest.approx(0.2)
    ours = {"nyu": {"a1": 0.9, "abs_rel": 0.09, "rmse": 0.3}, "ibims": {"a1": 0.6, "abs_rel": 0.2, "rmse": 1.0}}
    ref = {"nyu": {"a1": 0.9, "abs_rel": 0.1, "rmse": 0.4}, "ibims": {"a1": 0.5, "abs_rel": 0.25, "rmse": 1.0},
           "kitti": {"a1": 0.9, "abs_rel": 0.1, "rmse": 3.0}}
    s = improvement_scores(ours, ref)
    assert s["mRI_theta"]["nyu"] == pytest.approx((0 + 0.1 + 0.25) / 3)
    assert s["mRI_theta"]["ibims"] == pytest.approx((0.2 + 0.2 + 0) / 3)
    assert s["mRID"]["a1"] == pytest.approx(0.1) and s["mRID"]["rmse"] == pytest.approx(0.125)
    assert s["undefined"] == []
    ref["nyu"]["a1"] = 0.0
    s = improvement_scores(ours, ref)
    assert s["undefined"] == ["nyu/a1"] and s["mRI_theta"]["nyu"] == pytest.approx((0.1 + 0.25) / 2)
    table = format_table([{"dataset": "nyu", "metrics": ours["nyu"], "num_images": 654}])
    header = table.splitlines()[0].split()
    assert header == ["dataset"] + [m.column for m in METRIC_TABLE] + ["images"]
    assert "0.900" in table and table.splitlines()[2].split()[-1] == "654"


@pytest.mark.parametrize("family, size, bad, multiple", [
    ("zoedepth", (64, 96), (100, 130), 32),  # ZoeD_N on the MiDaS core (BEiT)
    ("zoedepth_depth_anything", (28, 42), (100, 130), 14),  # DA1 metric: ZoeDepth's head on DINOv2
    ("depth_anything", (28, 42), (28, 40), 14),  # DA2 metric
    ("relative", (64, 96), (100, 130), 32),  # relative MiDaS
])
def test_eval_image_size_takes_each_familys_input_multiple(family, size, bad, multiple):
    """zoejax-eval's network size check names the multiple every family's config gives (``input_multiple``)."""
    from zoejax.cli.evaluate import eval_image_size
    from zoejax.inference_models import model_with_weights
    from zoejax.models.depth_anything_config import PRESETS as DA_PRESETS
    from zoejax.models.relative_depth import relative_config

    config = {"zoedepth": lambda: presets.zoed_n("tiny"),
              "zoedepth_depth_anything": lambda: presets.da1_metric_n(presets.DA1_METRIC_TINY),
              "depth_anything": lambda: DA_PRESETS["da_tiny_metric"],
              "relative": lambda: relative_config(presets.zoed_n("tiny"))}[family]()
    assert config.input_multiple == multiple

    def model(input_size):  # a fixed network size (ZoeDepth, MiDaS) or the lower side (Depth Anything)
        return model_with_weights(config, {}, input_size=input_size[0] if family == "depth_anything" else input_size)

    assert eval_image_size(model(size), size if family == "depth_anything" else None) == size
    with pytest.raises(ValueError, match=rf"--input-size {bad[0]}x{bad[1]} is not a network input of this model: "
                                         rf"both sides must be multiples of {multiple} \(e.g. \d+x\d+\)"):
        eval_image_size(model(bad), bad if family == "depth_anything" else None)
