"""ONNX export of the Depth Anything models (``zoejax.serving.onnx``, ``zoejax-convert --to onnx``): the file runs
in ONNX Runtime (CPU) and matches ``predict_batch`` / ``forward`` per pixel for V1 relative (fixed batch), V2 metric
(dynamic batch, flip TTA) and V1 metric (the ZoeDepth on a DINOv2 core it is); the CLI exports a converted folder
(predict and forward) and refuses a network size that is not a multiple of 14 before tracing.

The tiny fixtures are the registry's 4-block DINOv2 at the real patch size (14); images of 30x41 pixels go to a
28x42 network input (``input_size`` 28) and back, so both resizes are in the graph. V1 and V2 relative differ at
inference by the tapped blocks (the same four on a 4-block encoder) and the resize back: V1 is
``align_corners=False``, which the V1 test sets.
"""

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from numerics import random_params as zoedepth_params
from test_inference_depth_anything import random_params

import zoejax
from zoejax.cli import convert as convert_cli
from zoejax.inference import ZoeDepthModel
from zoejax.inference_depth_anything import DepthAnythingModel
from zoejax.models import presets
from zoejax.models.depth_anything_config import PRESETS
from zoejax.ops.platform import GENERIC, forms_for
from zoejax.serving.onnx import TRACE_PLATFORMS, export_onnx
from zoejax.storage.converted import save_converted

H, W = 30, 41
INPUT_SIZE = 28  # the lower side of the network input: 30x41 -> 28x42
NET = (28, 42)
FP32_RTOL = 1e-4
# The relative map ends in a ReLU: its zeros are exact on both sides, but pixels next to them (a few 1e-3 of the
# maximum) carry the float32 rounding of the whole map (~1e-6 absolute), so they take an absolute floor of 1e-6 of
# the map's maximum; every other pixel is held to FP32_RTOL.
RELATIVE_FLOOR = 1e-6

# zoejax's side compiles with most XLA optimizations off (rounding differences ~1e-7 relative, far inside the
# tolerances); each predict compile then takes a fraction of the time.
pytestmark = pytest.mark.usefixtures("fast_compiles")


def session(path):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def images(batch, seed):
    return np.random.default_rng(seed).random((batch, H, W, 3), dtype=np.float32)


def metadata(path):
    return {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}


def test_the_trace_takes_the_generic_op_forms():
    assert forms_for(TRACE_PLATFORMS) is GENERIC


@pytest.fixture(scope="module")
def relative():
    """The tiny relative config and weights, shared by the V1 test and the CLI's V2 folder (the fixture's projection
    of the last convolution runs a compiled forward)."""
    cfg = PRESETS["da_tiny_relative"]
    return cfg, random_params(cfg, 1)


def test_da1_relative_predict_fixed_batch(relative, tmp_path):
    cfg, params = relative
    model = DepthAnythingModel(cfg, params, input_size=INPUT_SIZE, align_corners=False)
    assert model.network_size(H, W) == NET
    export_onnx(model, tmp_path / "da1.onnx", H, W, batch_size=2)
    sess = session(tmp_path / "da1.onnx")
    assert [i.shape for i in sess.get_inputs()] == [[2, H, W, 3]]
    assert [o.name for o in sess.get_outputs()] == ["depth"]
    meta = metadata(tmp_path / "da1.onnx")
    assert meta["zoejax.output"] == "relative_depth" and meta["zoejax.flip_tta"] == "False"  # V1's own: no flip
    assert json.loads(meta["zoejax.network_size"]) == list(NET) and meta["zoejax.align_corners"] == "False"
    x = images(2, 1)
    (depth,) = sess.run(None, {"images": x})
    expected = model.predict_batch(x).depth
    assert depth.shape == (2, H, W) and expected.std() > 0.1 * np.abs(expected).max()  # a varied map
    np.testing.assert_array_equal(depth[expected == 0], 0)  # the ReLU's zeros
    np.testing.assert_allclose(depth, expected, rtol=FP32_RTOL, atol=RELATIVE_FLOOR * np.abs(expected).max())


def test_da2_metric_predict_dynamic_batch_with_flip_tta(tmp_path):
    """Metres, for batches of 1 and 2 of one file; flip TTA on, so the (2B, ...) mirror batch is split at the
    symbolic B (a plain slice there is traced as empty)."""
    cfg = PRESETS["da_tiny_metric"]
    model = DepthAnythingModel(cfg, random_params(cfg, 2), input_size=INPUT_SIZE)
    assert model.align_corners  # V2
    export_onnx(model, tmp_path / "da2_metric.onnx", H, W, batch_size=None, flip_tta=True)
    sess = session(tmp_path / "da2_metric.onnx")
    assert [i.shape for i in sess.get_inputs()] == [["B", H, W, 3]]
    meta = metadata(tmp_path / "da2_metric.onnx")
    assert meta["zoejax.output"] == "metric_depth" and meta["zoejax.units"] == "metres"
    x = images(2, 3)
    for batch in (1, 2):
        (depth,) = sess.run(None, {"images": x[:batch]})
        expected = model.predict_batch(x[:batch], flip_tta=True).depth
        assert depth.shape == (batch, H, W)
        assert 0 < expected.min() and expected.max() < cfg.head.max_depth and expected.std() > 0.1
        np.testing.assert_allclose(depth, expected, rtol=FP32_RTOL, atol=0)
    assert not np.allclose(expected, model.predict_batch(x, flip_tta=False).depth, rtol=1e-3)  # the flip counts


def test_da1_metric_is_a_zoedepth_on_dinov2_and_exports_as_one(tmp_path):
    """V1 metric: ZoeDepth's metric bins on the Depth Anything core, ZoeDepth's predict (reflect padding, flip TTA,
    bicubic back) on 14-pixel multiples."""
    cfg = presets.da1_metric_n(presets.DA1_METRIC_TINY)
    # std 0.2 rather than the helper's 0.05: a map that varies over the bins (0.05 gives a nearly constant one).
    model = ZoeDepthModel(cfg, zoedepth_params(cfg, 0, std=0.2), input_size=NET)
    assert cfg.core == "depth_anything" and model.network_size(H, W) == NET
    export_onnx(model, tmp_path / "da1_metric.onnx", H, W, batch_size=1)
    assert metadata(tmp_path / "da1_metric.onnx")["zoejax.flip_tta"] == "True"  # ZoeDepth's own
    x = images(1, 4)
    (depth,) = session(tmp_path / "da1_metric.onnx").run(None, {"images": x})
    expected = model.predict_batch(x).depth
    assert expected.std() > 0.05
    np.testing.assert_allclose(depth, expected, rtol=FP32_RTOL, atol=0)


def test_cli_exports_a_depth_anything_folder_and_refuses_a_bad_network_size(relative, tmp_path, capsys):
    """A converted V2 relative folder: predict (the default program, dynamic batch) and the bare forward."""
    cfg, params = relative
    folder = save_converted(tmp_path / "da2", cfg, params, {}, {"source": "random init (test)"})
    bad = ["--to", "onnx", str(folder), str(tmp_path / "bad.onnx"), "--size", f"{H}x{W}"]
    assert convert_cli.main([*bad, "--input-size", "30x45"]) == 1
    assert "input_size must be a positive multiple of 14, got 30" in capsys.readouterr().err
    assert convert_cli.main([*bad[:-1], "4x4", "--input-size", "28x28"]) == 1
    assert "too small" in capsys.readouterr().err
    assert not (tmp_path / "bad.onnx").exists()

    export = ["--to", "onnx", str(folder), "--size", f"{H}x{W}", "--input-size", "28x28"]
    assert convert_cli.main([*export[:3], str(tmp_path / "da2.onnx"), *export[3:], "--dynamic-batch"]) == 0
    assert "exported predict for Bx30x41 images" in capsys.readouterr().out
    assert convert_cli.main([*export[:3], str(tmp_path / "forward.onnx"), *export[3:], "--program", "forward"]) == 0
    model = zoejax.load(folder, input_size=INPUT_SIZE)
    assert isinstance(model, DepthAnythingModel) and model.align_corners  # V2
    x = images(1, 6)
    (depth,) = session(tmp_path / "da2.onnx").run(None, {"images": x})
    expected = model.predict_batch(x).depth
    np.testing.assert_allclose(depth, expected, rtol=FP32_RTOL, atol=RELATIVE_FLOOR * np.abs(expected).max())
    sess = session(tmp_path / "forward.onnx")
    assert [o.name for o in sess.get_outputs()] == ["relative_depth"]
    (rel,) = sess.run(None, {"images": x})
    reference = np.asarray(model.forward(x)["relative_depth"])
    assert rel.shape == (1, *NET)
    np.testing.assert_allclose(rel, reference, rtol=FP32_RTOL, atol=RELATIVE_FLOOR * np.abs(reference).max())
