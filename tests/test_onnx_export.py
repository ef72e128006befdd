"""ONNX export (``zoejax.serving.onnx``, ``zoejax-convert --to onnx``): the file runs in ONNX Runtime (CPU) and
matches ``predict_batch`` / ``forward`` for ZoeD_N and ZoeD_NK (router included), fixed and dynamic batch,
float32 (<= 1e-4 relative) and float16 weights (<= 2e-2 relative); it is self-contained and written atomically."""

import json

import jax
import numpy as np
import onnx
import onnx.numpy_helper
import onnxruntime as ort
import pytest

from zoejax.cli import convert as convert_cli
from zoejax.inference import ZoeDepthModel
from zoejax.models import presets
from zoejax.models.init import init_params
from zoejax.serving.onnx import export_onnx
from zoejax.storage.converted import save_converted

NET = (64, 96)
H, W = 60, 80
FP32_RTOL = 1e-4
FP16_RTOL = 2e-2  # float16 weights (10-bit mantissa) through the tiny model, arithmetic in float32

# zoejax's side compiles with most XLA optimizations off: its rounding differs from the optimized program by ~1e-7
# relative, far inside FP32_RTOL, and each predict compile takes a fraction of the time.
pytestmark = pytest.mark.usefixtures("fast_compiles")


def tiny_model(tmp_path_factory, variant):
    cfg = presets.VARIANTS[variant]("tiny")
    params = init_params(cfg, 0)
    path = tmp_path_factory.mktemp(f"onnx_{variant}") / "model"
    save_converted(path, cfg, params, {}, {"source": "random init (test)"})
    return path, ZoeDepthModel(cfg, params, input_size=NET)


def session(path):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def images(batch, seed):
    return np.random.default_rng(seed).random((batch, H, W, 3), dtype=np.float32)


def test_zoed_nk_predict_dynamic_batch_matches_predict(tmp_path_factory):
    """The whole predict path of ZoeD_NK, router and per-image head choice included, for two batch sizes of
    one dynamic-batch file; each image's domain is the router's own."""
    _, model = tiny_model(tmp_path_factory, "zoed_nk")
    out = tmp_path_factory.mktemp("nk") / "zoed_nk.onnx"
    export_onnx(model, out, H, W, batch_size=None)
    sess = session(out)
    assert [i.shape for i in sess.get_inputs()] == [["B", H, W, 3]]
    assert [o.name for o in sess.get_outputs()] == ["depth", "domain"]
    meta = {p.key: p.value for p in onnx.load(str(out), load_external_data=False).metadata_props}
    assert json.loads(meta["zoejax.domain_names"]) == list(model.config.domain_names)
    x = images(3, 1)
    x[1] = x[1] ** 4  # a darker image: the router's vote may differ per example
    for batch in (1, 3):
        depth, domain = sess.run(None, {"images": x[:batch]})
        expected = model.predict_batch(x[:batch])
        assert depth.shape == (batch, H, W)
        np.testing.assert_allclose(depth, expected.depth, rtol=FP32_RTOL, atol=0)
        np.testing.assert_array_equal(domain, expected.domain)


def test_zoed_n_cli_fixed_batch_fp16_and_forward(tmp_path_factory, capsys):
    """zoejax-convert --to onnx: a fixed-batch float16 file of predict, and the bare forward in float32 (the
    float32 predict path is checked on ZoeD_NK above; each export traces the whole graph, so each costs)."""
    ckpt, model = tiny_model(tmp_path_factory, "zoed_n")
    tmp = tmp_path_factory.mktemp("n")
    assert convert_cli.main(["--to", "onnx", str(ckpt), str(tmp / "n16.onnx"), "--size", f"{H}x{W}",
                             "--input-size", f"{NET[0]}x{NET[1]}", "--batch-size", "2", "--weights", "float16"]) == 0
    assert "float16 weights" in capsys.readouterr().out
    x = images(2, 2)
    expected = model.predict_batch(x).depth
    (d16,) = session(tmp / "n16.onnx").run(None, {"images": x})
    np.testing.assert_allclose(d16, expected, rtol=FP16_RTOL, atol=0)
    assert np.abs(d16 - expected).max() > 0  # the float16 file really holds rounded weights
    # Self-contained: one file, no external data; float16 stores the weights in half the bytes of float32.
    assert sorted(p.name for p in tmp.iterdir()) == ["n16.onnx"]
    initializers = onnx.load(str(tmp / "n16.onnx")).graph.initializer
    assert {i.data_type for i in initializers if np.prod(i.dims) >= 1024} == {onnx.TensorProto.FLOAT16}
    stored = sum(onnx.numpy_helper.to_array(i).nbytes for i in initializers)
    float32_bytes = 4 * sum(a.size for a in jax.tree.leaves(model.params) if a.dtype == np.float32)
    assert stored < 0.6 * float32_bytes, (stored, float32_bytes)
    with pytest.raises(ort.capi.onnxruntime_pybind11_state.InvalidArgument, match="invalid dimensions"):
        session(tmp / "n16.onnx").run(None, {"images": images(3, 3)})  # a fixed-batch file takes its batch only

    export_onnx(model, tmp / "forward.onnx", H, W, batch_size=None, program="forward")
    sess = session(tmp / "forward.onnx")
    outputs = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, {"images": x}), strict=True))
    reference = model.forward(x)
    assert outputs["metric_depth"].shape == (2, *NET)
    for key in ("metric_depth", "rel_depth"):
        np.testing.assert_allclose(outputs[key], np.asarray(reference[key]), rtol=FP32_RTOL,
                                   atol=FP32_RTOL * np.abs(np.asarray(reference[key])).max())


def test_bad_arguments_and_existing_output_are_refused_before_tracing(tmp_path_factory, capsys):
    ckpt, model = tiny_model(tmp_path_factory, "zoed_n")
    tmp = tmp_path_factory.mktemp("bad")
    (tmp / "taken.onnx").write_bytes(b"user data")
    assert convert_cli.main(["--to", "onnx", str(ckpt), str(tmp / "taken.onnx"), "--size", f"{H}x{W}"]) == 1
    assert "exists" in capsys.readouterr().err and (tmp / "taken.onnx").read_bytes() == b"user data"
    assert convert_cli.main(["--to", "onnx", str(ckpt), str(tmp / "x.onnx")]) == 1
    assert "--size" in capsys.readouterr().err
    for kwargs, message in (({"program": "train"}, "unknown ONNX program"), ({"weights": "int8"}, "weight dtype"),
                            ({"batch_size": 0}, "batch_size")):
        with pytest.raises(ValueError, match=message):
            export_onnx(model, tmp / "x.onnx", H, W, **kwargs)
    assert sorted(p.name for p in tmp.iterdir()) == ["taken.onnx"]
