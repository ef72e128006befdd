"""Relative MiDaS through the inference layer: a MiDaS-layout .pt loads as a relative model (``--relative``),
``zoejax-predict`` writes its normalised relative depth and colour map, ``zoejax-eval`` scores it by the relative
protocol; the relative scoring against hand-computed alignments."""

import json

import numpy as np
import pytest
import torch
from flax.traverse_util import flatten_dict, unflatten_dict
from PIL import Image

import zoejax
from zoejax.cli import evaluate as eval_cli
from zoejax.cli import predict as predict_cli
from zoejax.conversion.relative_convert import relative_to_midas
from zoejax.evaluation.protocols import EvalProtocol
from zoejax.evaluation.relative_evaluator import RelativeEvaluator
from zoejax.inference_relative import RelativeDepthModel
from zoejax.models import presets
from zoejax.models.init import param_shapes
from zoejax.models.relative_depth import RelativeDepth, RelativeDepthConfig
from zoejax.training.sharding import make_mesh

NET = (64, 96)


@pytest.fixture(scope="module")
def midas_file(tmp_path_factory):
    """A random-weight tiny MiDaS v3.1-layout ``.pt`` (the release's keys on the tiny fixture) and its params."""
    cfg = presets.zoed_n("tiny")
    rng = np.random.default_rng(0)
    core = {k: rng.normal(0, 0.05, v.shape).astype(np.float32)
            for k, v in flatten_dict(param_shapes(cfg)["core"]).items()}
    core[("scratch", "output_conv_4", "bias")] = np.ones_like(core[("scratch", "output_conv_4", "bias")])
    params = {"core": unflatten_dict(core)}
    path = tmp_path_factory.mktemp("midas") / "dpt_tiny_test.pt"
    torch.save({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in relative_to_midas(cfg, params).items()},
               path)
    return path, cfg, params


def test_midas_file_loads_as_relative_model_only_when_asked(midas_file):
    path, cfg, params = midas_file
    model = zoejax.load(path, variant="relative", input_size=NET)
    assert isinstance(model, RelativeDepthModel) and model.output == "relative_depth"
    assert model.config == RelativeDepthConfig.from_dict(model.config.to_dict())  # model_config.json round trip
    for key, value in flatten_dict(params).items():
        np.testing.assert_array_equal(np.asarray(flatten_dict(model.params)[key]), value, err_msg=str(key))
    assert zoejax.load(path, input_size=NET).output == "metric_depth"  # without it: ZoeDepth's initialisation
    with pytest.raises(ValueError, match="max_depth and preset do not apply"):
        zoejax.load(path, variant="relative", max_depth=80)


def test_predict_cli_writes_normalised_relative_depth_and_colour_map(midas_file, tmp_path):
    path, cfg, params = midas_file
    image = np.random.default_rng(3).integers(0, 256, (60, 80, 3), dtype=np.uint8)
    Image.fromarray(image).save(tmp_path / "room.png")
    out = tmp_path / "out"
    argv = ["--checkpoint", str(path), "--output", str(out), "--input-size", "64x96", str(tmp_path / "room.png")]
    assert predict_cli.main([*argv, "--relative"]) == 0
    raw = np.load(out / "room.npy")
    want = zoejax.load(path, variant="relative", input_size=NET).predict(image)  # the API, as the CLI
    np.testing.assert_allclose(raw, want, rtol=1e-5, atol=1e-5)
    png = np.asarray(Image.open(out / "room.png"))
    assert png.dtype == np.uint16 and png.shape == (60, 80) and png.max() == 65535 and png.min() == 0
    nearest = np.unravel_index(np.argmax(raw), raw.shape)
    assert png[nearest] == 65535  # larger relative inverse depth = nearer = brighter
    assert np.asarray(Image.open(out / "room_color.png")).shape == (60, 80, 3)
    summary = json.loads((out / "predictions.json").read_text())
    assert summary["output"] == "relative_depth"
    assert predict_cli.main([*argv, "--relative", "--ply"]) != 0  # a point cloud needs metres


def test_relative_scoring_aligns_scale_and_shift_in_disparity():
    evaluator = RelativeEvaluator(RelativeDepth(presets.zoed_n("tiny")), make_mesh((-1, 1, 1)))
    protocol = EvalProtocol("synthetic_indoor", None, 1e-3, 10.0, 0, flip_tta=False)
    rng = np.random.default_rng(0)
    gt = rng.uniform(0.5, 8.0, (12, 16)).astype(np.float32)
    valid = np.ones_like(gt, bool)
    valid[0, :4] = False
    affine = evaluator.score(gt, 3.0 / gt + 0.7, protocol, valid)  # any a * disparity + b, a > 0: exact
    assert affine["abs_rel"] == pytest.approx(0.0, abs=1e-5) and affine["a1"] == 1.0
    noisy = (1.0 / gt) * rng.uniform(0.7, 1.3, gt.shape).astype(np.float32)
    got = evaluator.score(gt, 5.0 * noisy - 0.01, protocol, valid)
    m = valid & (gt > 1e-3) & (gt < 10.0)
    a = np.stack([noisy[m], np.ones(m.sum())], 1).astype(np.float64)  # least squares on the same pixels, by hand
    s, t = np.linalg.lstsq(a, 1.0 / gt[m].astype(np.float64), rcond=None)[0]
    depth = 1.0 / np.maximum(s * noisy[m] + t, 1.0 / 10.0)
    assert got["abs_rel"] == pytest.approx(np.mean(np.abs(depth - gt[m]) / gt[m]), rel=1e-3)
    assert got["a1"] == pytest.approx(np.mean(np.maximum(depth / gt[m], gt[m] / depth) < 1.25), abs=1e-6)
    assert evaluator.score(gt, noisy, protocol, np.zeros_like(valid)) is None


def test_relative_scoring_follows_the_protocols_scoring_rules():
    """Depth Anything V2's rules (closed range, no clamp, its SILog, a 10-pixel minimum) reach the relative
    evaluator as they reach the metric one: the same aligned depth scored by ``compute_errors`` by hand."""
    import dataclasses

    from zoejax.evaluation.metrics import compute_errors
    from zoejax.evaluation.protocols import SCORING
    from zoejax.evaluation.relative_metrics import align_disparity

    evaluator = RelativeEvaluator(RelativeDepth(presets.zoed_n("tiny")), make_mesh((-1, 1, 1)))
    zoe = EvalProtocol("synthetic_indoor", None, 1.0, 8.0, 0, flip_tta=False)
    da2 = dataclasses.replace(zoe, **SCORING["da2"])
    rng = np.random.default_rng(3)
    gt = rng.uniform(0.5, 9.0, (12, 16)).astype(np.float32)
    gt[0, :3] = [1.0, 8.0, 8.0]  # on the range's ends: scored only by the closed range
    pred = (1.0 / gt) * rng.uniform(0.5, 1.5, gt.shape).astype(np.float32)
    valid = np.ones_like(gt, bool)
    for protocol, mask in ((zoe, (gt > 1.0) & (gt < 8.0)), (da2, (gt >= 1.0) & (gt <= 8.0))):
        depth = np.asarray(align_disparity(pred[None], gt[None], mask[None], 8.0))[0][mask]
        if protocol.clamp_predictions:
            depth = np.clip(depth, 1.0, 8.0)
        want = compute_errors(gt[mask], depth, protocol.silog)
        got = evaluator.score(gt, pred, protocol, valid)
        assert got.keys() == want.keys() and all(got[k] == pytest.approx(want[k], rel=1e-6) for k in want)
    assert evaluator.score(gt, pred, da2, valid)["silog"] != evaluator.score(gt, pred, zoe, valid)["silog"]
    few = np.zeros_like(valid)
    few.flat[:9] = True
    assert evaluator.score(gt, pred, da2, few) is None and evaluator.score(gt, pred, zoe, few) is not None


def test_eval_cli_scores_a_relative_model_by_the_relative_protocol(midas_file, tmp_path):
    path, _, _ = midas_file
    out = tmp_path / "eval.json"
    code = eval_cli.main(["--checkpoint", str(path), "--relative", "--datasets", "synthetic_indoor",
                          "--input-size", "64x96", "--synthetic-examples", "2", "--batch-size", "2",
                          "--no-progress", "--output", str(out)])
    assert code == 0
    result = json.loads(out.read_text())
    (only,) = result["results"]
    metrics = only["metrics"]
    assert only["dataset"] == "synthetic_indoor" and only["num_images"] == 2
    assert 0 < metrics["abs_rel"] < 1 and 0 <= metrics["a1"] <= 1
