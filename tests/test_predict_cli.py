"""zoejax-predict and the StableHLO export: the CLI, the Python API and the exported artefact agree; bad input
gets a clear message and a non-zero exit; the PNG and PLY outputs open."""

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from zoejax.cli import convert as convert_cli
from zoejax.cli import predict as predict_cli
from zoejax.inference import ZoeDepthModel
from zoejax.io.ply import Intrinsics, backproject
from zoejax.models import presets
from zoejax.models.init import init_params
from zoejax.serving.stablehlo import load_exported
from zoejax.storage.converted import save_converted

NET = (64, 96)


def checkpoint(tmp_path_factory, variant: str, backbone: str = "tiny"):
    cfg = presets.VARIANTS[variant](backbone)
    params = init_params(cfg, 0)
    path = tmp_path_factory.mktemp(f"ckpt_{variant}_{backbone}") / "model"
    save_converted(path, cfg, params, {}, {"source": "random init (test)"})
    return path, ZoeDepthModel(cfg, params, input_size=NET)


@pytest.fixture(scope="module")
def nk(tmp_path_factory):
    return checkpoint(tmp_path_factory, "zoed_nk")


def write_rgb(path, seed, shape=(60, 80, 3), mode=None):
    arr = np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)
    Image.fromarray(arr, mode).save(path)
    return arr


def read_ply(path):
    """A minimal PLY reader: header lines, then the binary little-endian vertex records it declares."""
    raw = path.read_bytes()
    end = raw.index(b"end_header\n") + len(b"end_header\n")
    header = raw[:end].decode("ascii").splitlines()
    assert header[0] == "ply" and header[1] == "format binary_little_endian 1.0"
    count = next(int(line.split()[2]) for line in header if line.startswith("element vertex"))
    types = {"float": "<f4", "uchar": "u1"}
    fields = [(line.split()[2], types[line.split()[1]]) for line in header if line.startswith("property")]
    vertices = np.frombuffer(raw[end:], dtype=fields)
    assert len(vertices) == count
    return vertices


def test_cli_api_and_stablehlo_export_agree(nk, tmp_path):
    path, model = nk
    images = tmp_path / "in"
    images.mkdir()
    arrays = [write_rgb(images / f"im{i}.png", i) for i in range(3)]
    out = tmp_path / "out"
    assert predict_cli.main(["--checkpoint", str(path), "--output", str(out), "--input-size", "64x96",
                             "--batch-size", "2", str(images)]) == 0
    summary = json.loads((out / "predictions.json").read_text())
    assert [p["input"] for p in summary["predictions"]] == [str(images / f"im{i}.png") for i in range(3)]
    assert not summary["failures"]
    api = model.predict_batch(np.stack(arrays))
    assert convert_cli.main(["--to", "stablehlo", str(path), str(tmp_path / "served"), "--size", "60x80",
                             "--batch-size", "3", "--input-size", "64x96"]) == 0
    served = load_exported(tmp_path / "served")(np.stack(arrays))
    for i, arr in enumerate(arrays):
        cli = np.load(out / f"im{i}.npy")
        assert cli.shape == (60, 80) and cli.dtype == np.float32
        np.testing.assert_allclose(cli, model.predict(arr), rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(api.depth[i], cli, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(served["depth"][i], cli, rtol=1e-6, atol=1e-6)
        # The 16-bit PNG is the same depth in millimetres.
        mm = np.asarray(Image.open(out / f"im{i}.png"))
        assert mm.dtype == np.uint16 and np.abs(mm / 1000.0 - cli).max() <= 0.0005 + 1e-6
        assert summary["predictions"][i]["domain"] == model.config.domain_names[int(api.domain[i])]
    np.testing.assert_array_equal(served["domain"], api.domain)


def test_exported_artefact_runs_without_zoejax(nk, tmp_path):
    path, model = nk
    from zoejax.serving.stablehlo import export_predict

    export_predict(model, tmp_path / "served", 60, 80)
    image = np.random.default_rng(9).integers(0, 256, (1, 60, 80, 3), dtype=np.uint8)
    expected = model.predict(image[0])
    np.save(tmp_path / "image.npy", image)
    # A fresh interpreter that cannot import zoejax (or flax): jax, numpy and the artefact only.
    code = f"""
import builtins, json, sys
real_import = builtins.__import__
def guarded(name, *a, **k):
    if name.split('.')[0] in ('zoejax', 'flax', 'data_pipelines'):
        raise ImportError('blocked: ' + name)
    return real_import(name, *a, **k)
builtins.__import__ = guarded
import jax, numpy as np
d = '{tmp_path / "served"}'
meta = json.load(open(d + '/meta.json'))
exp = jax.export.deserialize(bytearray(open(d + '/predict.stablehlo', 'rb').read()))
data = np.load(d + '/params.npz')
leaves = [data[f'p{{i:05d}}'] for i in range(meta['num_param_arrays'])]
args, kwargs = jax.tree.unflatten(exp.in_tree, leaves + [np.load('{tmp_path / "image.npy"}') / np.float32(255)])
np.save('{tmp_path / "depth.npy"}', np.asarray(exp.call(*args, **kwargs)['depth']))
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    np.testing.assert_allclose(np.load(tmp_path / "depth.npy")[0], expected, rtol=1e-6, atol=1e-6)


def test_export_for_other_platforms_is_traced_for_them(nk, tmp_path):
    """Exporting for GPU/TPU from this CPU host gives their graph (batched attention, or on TPU the attention
    kernels; convolutions as convolutions), not the CPU forms: no per-head loop. A CPU+CUDA artefact runs here
    and matches predict."""
    _, model = nk
    from zoejax.serving.stablehlo import export_predict

    def program(platforms):
        export_predict(model, tmp_path / "_".join(platforms), 60, 80, platforms=platforms)
        served = load_exported(tmp_path / "_".join(platforms))
        assert served.meta["platforms"] == platforms
        text = served.exported.mlir_module()
        return served, text.count("stablehlo.while"), text.count("stablehlo.convolution")

    _, cpu_loops, cpu_convs = program(["cpu"])
    _, cuda_loops, cuda_convs = program(["cuda"])
    assert cpu_loops > 0 and cuda_loops == 0
    assert cuda_convs > cpu_convs  # 1x1 and patchify convolutions are products only in the CPU graph
    both, both_loops, _ = program(["cpu", "cuda"])
    assert both_loops == 0
    # For TPU alone: BEiT's biased attention as the forward Pallas kernel of zoejax.ops.fused_attention, one a
    # block (flip TTA is one batched forward).
    _, tpu_loops, _ = program(["tpu"])
    tpu_text = load_exported(tmp_path / "tpu").exported.mlir_module()
    assert tpu_loops == 0 and tpu_text.count("tpu_custom_call") == model.config.backbone.depth
    image = np.random.default_rng(4).integers(0, 256, (1, 60, 80, 3), dtype=np.uint8)
    np.testing.assert_allclose(both(image)["depth"][0], model.predict(image[0]), rtol=1e-5, atol=1e-5)


def test_bad_inputs_are_reported_and_the_folder_run_continues(nk, tmp_path, capsys):
    path, _ = nk
    folder = tmp_path / "mixed"
    folder.mkdir()
    write_rgb(folder / "a_good.png", 0)
    (folder / "b_unreadable.jpg").write_bytes(b"this is not a JPEG")
    write_rgb(folder / "c_gray.png", 1, (60, 80))
    write_rgb(folder / "d_rgba.png", 2, (60, 80, 4))
    write_rgb(folder / "e_tiny.png", 3, (1, 1, 3))
    write_rgb(folder / "f_good.png", 4)
    out = tmp_path / "out"
    rc = predict_cli.main(["--checkpoint", str(path), "--output", str(out), "--input-size", "64x96", str(folder)])
    err = capsys.readouterr().err
    assert rc == 1
    assert "4 of 6 input(s) failed" in err
    assert "b_unreadable.jpg: unreadable image" in err
    assert "c_gray.png: image mode L (grayscale)" in err and "--convert-to-rgb" in err
    assert "d_rgba.png: image mode RGBA" in err
    assert "e_tiny.png" in err and "too small" in err
    assert (out / "a_good.npy").is_file() and (out / "f_good.npy").is_file()  # continued past the bad files
    assert not (out / "c_gray.npy").exists()
    failures = json.loads((out / "predictions.json").read_text())["failures"]
    assert sorted(failures) == sorted(str(folder / n) for n in ("b_unreadable.jpg", "c_gray.png", "d_rgba.png",
                                                               "e_tiny.png"))
    # With the conversion allowed, grayscale and RGBA are predicted.
    rc = predict_cli.main(["--checkpoint", str(path), "--output", str(out), "--input-size", "64x96",
                           "--convert-to-rgb", str(folder / "c_gray.png"), str(folder / "d_rgba.png")])
    assert rc == 0 and (out / "c_gray.npy").is_file() and (out / "d_rgba.npy").is_file()


@pytest.mark.parametrize("case", ["empty_folder", "missing_checkpoint", "missing_image"])
def test_unusable_invocations_exit_non_zero(nk, tmp_path, capsys, case):
    path, _ = nk
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes.txt").write_text("not an image")
    image = tmp_path / "x.png"
    write_rgb(image, 0)
    args = {"empty_folder": [str(path), str(tmp_path / "empty")],
            "missing_checkpoint": [str(tmp_path / "nope"), str(image)],
            "missing_image": [str(path), str(tmp_path / "missing.jpg")]}[case]
    rc = predict_cli.main(["--checkpoint", args[0], "--output", str(tmp_path / "out"), args[1]])
    err = capsys.readouterr().err
    assert rc == 1
    expected = {"empty_folder": "folder holds no image file", "missing_checkpoint": "checkpoint not found",
                "missing_image": "missing.jpg: no such file or folder"}[case]
    assert expected in err
    assert not (tmp_path / "out" / "predictions.json").exists()


def test_color_png_and_ply(tmp_path_factory, tmp_path, fast_compiles):  # file formats, not numerics
    path, model = checkpoint(tmp_path_factory, "zoed_n")
    image = write_rgb(tmp_path / "room.png", 5, (96, 128, 3))
    out = tmp_path / "out"
    assert predict_cli.main(["--checkpoint", str(path), "--output", str(out), "--input-size", "64x96", "--ply",
                             "--intrinsics", "100,110,63.5,47.5", str(tmp_path / "room.png")]) == 0
    with Image.open(out / "room_color.png") as color:
        assert color.mode == "RGB" and color.size == (128, 96)
        assert len(np.unique(np.asarray(color).reshape(-1, 3), axis=0)) > 1
    vertices = read_ply(out / "room.ply")
    depth = np.load(out / "room.npy")
    assert len(vertices) == 96 * 128
    points = backproject(depth, Intrinsics(100, 110, 63.5, 47.5)).reshape(-1, 3)
    np.testing.assert_allclose(np.stack([vertices["x"], vertices["y"], vertices["z"]], -1), points, rtol=1e-6)
    np.testing.assert_array_equal(np.stack([vertices["red"], vertices["green"], vertices["blue"]], -1),
                                  image.reshape(-1, 3))
    # The default field of view: 60 degrees across the width.
    k = Intrinsics.from_fov(96, 128)
    assert k.fx == pytest.approx(64 / np.tan(np.radians(30))) and (k.cx, k.cy) == (63.5, 47.5)


def test_predict_help_lists_every_flag():
    result = subprocess.run([sys.executable, "-m", "zoejax.cli.predict", "--help"], capture_output=True, text=True)
    assert result.returncode == 0
    for flag in ("--checkpoint", "--output", "--ply", "--intrinsics", "--fov", "--convert-to-rgb", "--no-flip-tta"):
        assert flag in result.stdout
