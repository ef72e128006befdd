"""Depth Anything through the inference layer: ``zoejax.load`` of a ``.pth``, a transformers folder and a converted
folder returns a ``DepthAnythingModel`` whose ``predict`` equals the documented preprocessing done by hand with
torch (bicubic A=-0.75 to the lower-bound size, the module, bilinear back with align_corners=True); the
lower-bound rule of the official ``Resize``; the family table."""

import jax
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import zoejax
from zoejax.conversion.depth_anything_convert import export_depth_anything, export_state_dict, param_shapes
from zoejax.inference import ZoeDepthModel
from zoejax.inference_depth_anything import DepthAnythingModel, lower_bound_size, official_align_corners
from zoejax.inference_models import DepthModel, model_with_weights
from zoejax.models.depth_anything import DepthAnything
from zoejax.models.depth_anything_config import PRESETS
from zoejax.storage.layout import StoredModel


def random_params(cfg, seed, size=(28, 42)):
    """Random weights whose depth varies (not all zero after the ReLU, not saturated after the Sigmoid): the last
    convolution is projected orthogonal to its mean input on a random image of ``size`` and scaled to unit spread."""
    rng = np.random.default_rng(seed)
    params = jax.tree_util.tree_map(lambda s: (0.05 * rng.standard_normal(s.shape)).astype(np.float32),
                                    param_shapes(cfg))
    x = rng.uniform(0, 1, (1, *size, 3)).astype(np.float32)
    forward = jax.jit(lambda p, images: DepthAnything(cfg).apply({"params": p}, images,
                                                                   return_intermediates=True)["out_conv"])
    feats = np.asarray(forward(params, x), np.float64)  # jitted: eagerly it compiles every op on its own
    last = params["depth_head"]["scratch"]["output_conv2_2"]
    mean = feats.mean(axis=(0, 1, 2))
    w = last["kernel"][0, 0, :, 0].astype(np.float64)
    w = w - (w @ mean) / (mean @ mean) * mean
    last["kernel"][0, 0, :, 0] = w / (feats @ w).std()
    last["bias"][:] = 0
    return params


def write_pth(cfg, params, path):
    state = export_state_dict(cfg, params, {}, "official")
    torch.save({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in state.items()}, path)
    return path


def by_hand(cfg, params, image, size, align_corners):
    """The documented preprocessing with torch's own resizes around the module: (H, W) depth."""
    x = torch.from_numpy(image.astype(np.float32) / 255.0).permute(2, 0, 1)[None]
    x = F.interpolate(x, size, mode="bicubic", align_corners=False)  # cv2 INTER_CUBIC's kernel (A = -0.75)
    out = DepthAnything(cfg).apply({"params": params}, x.permute(0, 2, 3, 1).numpy())[cfg.output_key]
    back = F.interpolate(torch.from_numpy(np.array(out))[:, None], image.shape[:2], mode="bilinear",
                         align_corners=align_corners)
    return back[0, 0].numpy()


def test_lower_bound_size_is_the_official_resize():
    assert lower_bound_size(480, 640) == (518, 686)  # the lower side is 518, 640 * 518 / 480 = 690.7 -> 686
    assert lower_bound_size(640, 480) == (686, 518)
    assert lower_bound_size(100, 100) == (518, 518)
    assert lower_bound_size(375, 1242) == (518, 1722)  # 1715.6 rounds to 1722 (123 x 14)
    assert lower_bound_size(500, 503, 28) == (28, 28)  # 28.17 rounds to 28
    assert lower_bound_size(500, 521, 28) == (28, 28)  # 29.18 / 14 -> 2 (half-to-even of 2.08)
    assert lower_bound_size(10, 13, 14) == (14, 14)  # 18.2 rounds to 14, not below the bound


def test_load_pth_hf_and_converted_folder_predict_as_documented(tmp_path):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (30, 41, 3), dtype=np.uint8)
    cfg = PRESETS["da_tiny_relative"]
    params = random_params(cfg, 1)
    pth = write_pth(cfg, params, tmp_path / "finetuned.pth")

    model = zoejax.load(pth, preset="da_tiny_relative", input_size=28)
    assert isinstance(model, DepthAnythingModel) and isinstance(model, DepthModel)
    assert model.output == "relative_depth" and model.provenance["preset"] == "da_tiny_relative"
    assert model.network_size(30, 41) == (28, 42)
    want = by_hand(cfg, params, image, (28, 42), align_corners=True)
    got = model.predict(image)
    assert got.shape == (30, 41) and got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * np.abs(want).max())
    assert not np.allclose(want, by_hand(cfg, params, image, (28, 42), align_corners=False), rtol=1e-4)
    batch = model.predict_batch(image[None])
    np.testing.assert_array_equal(batch.depth[0], got)
    assert batch.output == "relative_depth"
    with pytest.raises(ValueError, match="name the preset"):
        zoejax.load(pth)  # the weights cannot say V1 / V2, relative / metric
    with pytest.raises(ValueError, match="ZoeDepth's"):
        zoejax.load(pth, preset="da_tiny_relative", max_depth=10.0)

    mcfg = PRESETS["da_tiny_metric"]
    mparams = random_params(mcfg, 2)
    hf = export_depth_anything(StoredModel(mcfg, mparams), tmp_path / "hf", "hf", False, [])
    metric = zoejax.load(hf, input_size=28)
    assert isinstance(metric, DepthAnythingModel) and metric.output == "metric_depth" and metric.units == "metres"
    # A transformers folder resizes the position table its own way; the model is built from its config.
    want = by_hand(metric.config, mparams, image, (28, 42), align_corners=True)
    depth = metric.predict(image)
    np.testing.assert_allclose(depth, want, rtol=1e-5, atol=1e-5 * np.abs(want).max())
    assert 0 < depth.min() and depth.max() < mcfg.head.max_depth

    from zoejax.cli.convert import main as convert_main
    assert convert_main([str(pth), str(tmp_path / "da"), "--preset", "da_tiny_relative"]) == 0
    again = zoejax.load(tmp_path / "da", input_size=28)
    assert isinstance(again, DepthAnythingModel) and again.config == cfg and again.align_corners
    assert all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(again.params), jax.tree.leaves(model.params),
                                                    strict=True))


def test_the_table_picks_the_class_by_config_type():
    cfg = PRESETS["da_tiny_metric"]
    model = model_with_weights(cfg, random_params(cfg, 0))
    assert type(model) is DepthAnythingModel and model.input_size == 518
    assert model.network_size(480, 640) == (518, 686)
    with pytest.raises(TypeError, match="DepthAnythingConfig"):
        model_with_weights(object(), {})
    with pytest.raises(ValueError, match="multiple of 14"):
        DepthAnythingModel(cfg, {}, input_size=500)
    assert ZoeDepthModel.output == "metric_depth" and ZoeDepthModel.default_flip_tta


def test_v1_resizes_back_without_aligned_corners():
    v1, v2 = PRESETS["da1_relative_vits"], PRESETS["da2_relative_vits"]
    assert not official_align_corners(v1) and official_align_corners(v2)
    assert not official_align_corners(PRESETS["da_tiny_relative"], "da1_relative_vits")
    assert official_align_corners(PRESETS["da_tiny_relative"])


def test_predict_cli_writes_relative_outputs_and_the_export_round_trips(tmp_path):
    """zoejax-predict on 2 images of a relative model: raw .npy, normalised uint16 PNG and preview; the StableHLO
    artefact (jax.export deserialised) gives predict's depth."""
    from PIL import Image

    from zoejax.cli.predict import main as predict_main
    from zoejax.serving.stablehlo import export_predict, load_exported

    cfg = PRESETS["da_tiny_relative"]
    params = random_params(cfg, 3)
    pth = write_pth(cfg, params, tmp_path / "mine.pth")
    rng = np.random.default_rng(1)
    images = tmp_path / "images"
    images.mkdir()
    for name in ("a", "b"):
        Image.fromarray(rng.integers(0, 256, (30, 41, 3), dtype=np.uint8)).save(images / f"{name}.png")
    out = tmp_path / "out"
    args = ["--checkpoint", str(pth), "--preset", "da_tiny_relative", "--input-size", "28x28", "--batch-size", "1",
            "--output", str(out)]
    assert predict_main(args + ["--ply", str(images)]) == 1  # no metres, no point cloud
    assert predict_main(args + [str(images)]) == 0
    model = zoejax.load(pth, preset="da_tiny_relative", input_size=28)
    raw = model.predict(np.asarray(Image.open(images / "a.png")))
    np.testing.assert_allclose(np.load(out / "a.npy"), raw, rtol=1e-6, atol=1e-6)
    png = np.asarray(Image.open(out / "a.png"))
    assert png.dtype == np.uint16 and png.max() == 65535 and png.min() == 0
    want = np.round((raw - raw.min()) / (raw.max() - raw.min()) * 65535)
    assert np.abs(png.astype(np.float64) - want).max() <= 1
    assert np.asarray(Image.open(out / "b_color.png")).shape == (30, 41, 3)
    import json
    summary = json.loads((out / "predictions.json").read_text())
    assert summary["output"] == "relative_depth" and len(summary["predictions"]) == 2
    assert not summary["flip_tta"]

    exported = load_exported(export_predict(model, tmp_path / "hlo", 30, 41))
    assert exported.meta["output"] == "relative_depth" and not exported.meta["flip_tta"]
    np.testing.assert_allclose(exported(np.asarray(Image.open(images / "a.png"))[None])["depth"][0], raw,
                               rtol=1e-6, atol=1e-6)


def test_zoejax_eval_scores_metric_and_relative_depth_anything_models(tmp_path, capsys):
    """A metric model by the metric protocol; a relative one by the relative protocol (least-squares aligned in
    disparity): scaling its output leaves the scores unchanged. The input size must be a multiple of 14."""
    import json

    from fast_compile import fast_compiles

    from zoejax.cli.evaluate import main as eval_main

    def scores(folder, name, size="28x42"):
        out = tmp_path / f"{name}.json"
        with fast_compiles():  # scoring logic, not numerics
            code = eval_main(["--checkpoint", str(folder), "--input-size", size, "--datasets", "synthetic_indoor",
                              "--synthetic-examples", "2", "--batch-size", "2", "--no-progress", "--no-flip-tta",
                              "--output", str(out)])
        return json.loads(out.read_text())["results"][0]["metrics"] if code == 0 else None

    mcfg = PRESETS["da_tiny_metric"]
    folder = export_depth_anything(StoredModel(mcfg, random_params(mcfg, 4)), tmp_path / "hf", "hf", False, [])
    assert scores(folder, "bad", "28x40") is None
    assert "both sides must be multiples of 14 (e.g. 28x42)" in capsys.readouterr().err
    metric = scores(folder, "metric")
    assert 0 <= metric["a1"] <= 1 and np.isfinite(metric["abs_rel"]) and metric["abs_rel"] > 0

    rcfg = PRESETS["da_tiny_relative"]
    params = random_params(rcfg, 5)
    relative = scores(export_depth_anything(StoredModel(rcfg, params), tmp_path / "rel", "hf", False, []), "rel")
    last = params["depth_head"]["scratch"]["output_conv2_2"]
    last["kernel"], last["bias"] = last["kernel"] * 3, last["bias"] * 3  # ReLU(3y) = 3 ReLU(y): disparity x 3
    scaled = scores(export_depth_anything(StoredModel(rcfg, params), tmp_path / "rel3", "hf", False, []), "rel3")
    assert set(relative) >= {"abs_rel", "a1"} and 0 <= relative["a1"] <= 1
    for k in ("abs_rel", "a1"):
        assert scaled[k] == pytest.approx(relative[k], rel=1e-4, abs=1e-6), k


def _da1_metric_pt(path):
    """A random-weight tiny DA1 metric checkpoint in the official ``{"model": state_dict}`` layout."""
    from numerics import random_params as zoe_random_params

    from zoejax.conversion.convert import export_state_dict as zoe_export_state_dict
    from zoejax.models import presets

    cfg = presets.da1_metric_n(presets.DA1_METRIC_TINY)
    state = zoe_export_state_dict(cfg, zoe_random_params(cfg, 6), {}, "official")
    torch.save({"model": {k: torch.from_numpy(np.array(v)) for k, v in state.items()}}, path)
    return path


@pytest.mark.parametrize("family", ["da2_metric", "da1_metric"])
def test_predict_cli_writes_metres_and_the_export_round_trips_for_metric_models(family, tmp_path):
    """zoejax-predict on a metric Depth Anything (V2: sigmoid x max_depth; V1: ZoeDepth's head on DINOv2): float32
    metres in .npy equal to ``predict``, the same depth in millimetres in the uint16 PNG, a point cloud; the
    StableHLO artefact gives ``predict``'s depth."""
    import json

    from PIL import Image

    from zoejax.cli.predict import main as predict_main
    from zoejax.serving.stablehlo import export_predict, load_exported

    if family == "da2_metric":
        cfg = PRESETS["da_tiny_metric"]
        checkpoint, preset = write_pth(cfg, random_params(cfg, 7), tmp_path / "metric.pth"), ["--preset",
                                                                                               "da_tiny_metric"]
    else:
        checkpoint, preset = _da1_metric_pt(tmp_path / "depth_anything_metric_depth_indoor.pt"), []
    rng = np.random.default_rng(2)
    images = tmp_path / "images"
    images.mkdir()
    for name in ("a", "b"):
        Image.fromarray(rng.integers(0, 256, (30, 41, 3), dtype=np.uint8)).save(images / f"{name}.png")
    out = tmp_path / "out"
    assert predict_main(["--checkpoint", str(checkpoint), *preset, "--input-size", "28x42", "--batch-size", "2",
                         "--ply", "--output", str(out), str(images)]) == 0
    model = zoejax.load(checkpoint, preset=preset[1] if preset else None, input_size=(28, 42))
    summary = json.loads((out / "predictions.json").read_text())
    assert summary["output"] == "metric_depth" and len(summary["predictions"]) == 2 and not summary["failures"]
    exported = load_exported(export_predict(model, tmp_path / "hlo", 30, 41))
    assert exported.meta["output"] == "metric_depth"
    for name in ("a", "b"):
        image = np.asarray(Image.open(images / f"{name}.png"))
        want = model.predict(image)
        cli = np.load(out / f"{name}.npy")
        assert cli.shape == (30, 41) and cli.dtype == np.float32 and cli.min() > 0 and cli.std() > 0
        np.testing.assert_allclose(cli, want, rtol=1e-6, atol=1e-6)
        mm = np.asarray(Image.open(out / f"{name}.png"))
        assert mm.dtype == np.uint16 and np.abs(mm / 1000.0 - cli).max() <= 0.0005 + 1e-6
        assert (out / f"{name}.ply").stat().st_size > 30 * 41 * 12  # a vertex per pixel: xyz float32 at least
        np.testing.assert_allclose(exported(image[None])["depth"][0], want, rtol=1e-6, atol=1e-6)
