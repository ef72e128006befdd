"""Nothing a user owns is lost (issue 28, items 1, 2, 3, 7, 11, 14, 19): zoejax-predict never writes over its inputs
or over another input's outputs, convert/export replace only what zoejax wrote and only with --overwrite, a full
disk leaves neither a mixed set nor a temporary folder, synth never cuts an existing dataset, and every atomic
output gets the mode the umask gives.

The predict tests stand a stub in for the network (``_load_model``): what they check is which files get written,
not depths. The convert tests use the tiny BEiT preset with random weights (no compile)."""

import errno
import json
import os
import stat

import jax
import numpy as np
import pytest
import torch
from PIL import Image

from zoejax.cli import convert as convert_cli
from zoejax.cli import data as data_cli
from zoejax.cli import predict as predict_cli
from zoejax.io import depth_files, safe_output
from zoejax.models import presets
from zoejax.models.init import param_shapes
from zoejax.storage.converted import save_converted


class _StubModel:
    """``predict_batch`` like ZoeDepthModel's: depth (B, H, W) metres, here the image's mean grey + 1 (so each
    input's depth differs) to the power ``power`` (a rerun with another power changes every file, the
    percentile-scaled preview too)."""

    # The DepthModel interface attributes zoejax-predict reads (zoejax/inference.py).
    output, units, default_pad_input, default_flip_tta = "metric_depth", "metres", True, True

    def __init__(self, power=1.0):
        self.power = power

    def predict_batch(self, images, pad_input=True, flip_tta=True):
        depth = (images.mean(axis=-1) / 255.0 + 1.0) ** self.power
        return type("Pred", (), {"depth": depth.astype(np.float32), "domain": None, "domain_names": ()})


@pytest.fixture
def stub(monkeypatch):
    model = _StubModel()
    monkeypatch.setattr(predict_cli, "_load_model", lambda *a: model)
    return model


def _rgb(path, seed, shape=(12, 16, 3)):
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)).save(path)
    return path.read_bytes()


def _predict(out, *inputs, extra=()):
    return predict_cli.main(["--checkpoint", "stub", "--output", str(out), *extra, *map(str, inputs)])


def _leftovers(folder):
    """Temporary names zoejax's writers use (``.<name>.tmp-*``, ``.<name>.partial-*``, ``.<name>.old-*``)."""
    return sorted(p.name for p in folder.rglob(".*") if any(t in p.name for t in (".tmp-", ".partial-", ".old-")))


# --- item 1 ------------------------------------------------------------------------------------------------------

def test_predict_refuses_an_output_folder_holding_its_inputs_however_spelled(stub, tmp_path, monkeypatch, capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    original = _rgb(photos / "x.png", 0)  # its depth PNG would be photos/x.png itself
    (tmp_path / "other").mkdir()
    (tmp_path / "link").symlink_to(photos, target_is_directory=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    _rgb(elsewhere / "y.png", 1)
    (photos / "y.png").symlink_to(elsewhere / "y.png")  # a link among the inputs: writing y.png would replace it
    monkeypatch.chdir(tmp_path)
    spellings = [("photos", photos / "x.png"),  # relative output, absolute input
                 (tmp_path / "other" / ".." / "photos", "photos/x.png"),  # ".."
                 (tmp_path / "link", photos / "x.png"),  # a symlink to the input folder
                 ("photos", photos / "y.png")]  # the input is a symlink in the output folder
    for out, image in spellings:
        assert _predict(out, image) == 1
        assert "holds the input" in capsys.readouterr().err
        assert (photos / "x.png").read_bytes() == original and (photos / "y.png").is_symlink()
        assert sorted(p.name for p in photos.iterdir()) == ["x.png", "y.png"]
    assert _predict(tmp_path / "other", photos / "x.png") == 0  # an output folder without inputs is fine
    assert (tmp_path / "other" / "x.npy").is_file()


def test_an_output_that_is_or_lies_under_a_file_is_refused_before_the_model_loads(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(predict_cli, "_load_model", lambda *a: pytest.fail("the model was loaded"))
    _rgb(tmp_path / "x.png", 0)
    (tmp_path / "notes").write_text("keep me")
    for out in (tmp_path / "notes", tmp_path / "notes" / "depth"):
        assert _predict(out, tmp_path / "x.png") == 1
        assert "notes is a file; give a folder" in capsys.readouterr().err
    assert (tmp_path / "notes").read_text() == "keep me"


def test_stablehlo_export_refuses_an_unknown_platform(converted, tmp_path, capsys):
    assert _convert("--to", "stablehlo", converted[0], tmp_path / "s", "--size", "32x32", "--platforms",
                    "cpu,gpu") == 1
    assert "--platforms: unknown gpu; choose from cpu, cuda, rocm, tpu" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()


# --- item 14 -----------------------------------------------------------------------------------------------------

def test_outputs_of_inputs_with_colliding_names_stay_apart(stub, tmp_path, capsys):
    photos, out = tmp_path / "photos", tmp_path / "out"
    photos.mkdir()
    for seed, name in enumerate(["x.png", "x_color.png", "X.jpg"]):  # X.jpg: x's names on a case-blind disk
        _rgb(photos / name, seed)
    assert _predict(out, photos) == 0
    records = json.loads((out / "predictions.json").read_text())["predictions"]
    outputs = [o.casefold() for r in records for o in r["outputs"]]
    assert len(outputs) == 9 and len(set(outputs)) == 9  # nine distinct files, whatever the case rules
    for r in records:  # each input's depth PNG holds that input's depth, its preview is a colour image
        image = np.asarray(Image.open(r["input"]).convert("RGB"), np.float64)
        png, _, preview = r["outputs"]
        expected = depth_files.depth_to_uint16_mm(image.mean(-1) / 255.0 + 1.0)
        np.testing.assert_array_equal(np.asarray(Image.open(png)), expected)
        assert Image.open(preview).mode == "RGB"
    assert "are named" in capsys.readouterr().err


# --- item 11 (predict) -------------------------------------------------------------------------------------------

def test_a_full_disk_leaves_each_image_with_a_whole_set_of_old_or_new_files(stub, tmp_path, monkeypatch, capsys):
    photos, out = tmp_path / "photos", tmp_path / "out"
    photos.mkdir()
    for seed, name in enumerate(["a.png", "b.png", "c.png"]):
        _rgb(photos / name, seed)
    assert _predict(out, photos, extra=["--ply"]) == 0
    old = {p.name: p.read_bytes() for p in out.iterdir() if p.name != "predictions.json"}
    stub.power = 3.0  # the rerun's depths differ: every new file differs from its old one
    save_npy, calls = depth_files._save_npy, []

    def disk_fills_at_b(path, array):
        calls.append(path)
        if len(calls) == 2:  # b's .npy: after its .png is complete, before its preview and point cloud
            path.write_bytes(b"\x93NUMPY half")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        save_npy(path, array)
    monkeypatch.setattr(depth_files, "_save_npy", disk_fills_at_b)
    assert _predict(out, photos, extra=["--ply"]) == 1
    err = capsys.readouterr().err
    assert "b.png: writing its outputs" in err and "No space left on device" in err and "Traceback" not in err
    new = {p.name: p.read_bytes() for p in out.iterdir() if p.name != "predictions.json"}
    assert set(new) == set(old) and _leftovers(out) == []
    for stem, expect_new in (("a", True), ("b", False), ("c", False)):  # c was never reached
        changed = [new[n] != old[n] for n in (f"{stem}.png", f"{stem}.npy", f"{stem}_color.png", f"{stem}.ply")]
        assert changed == [expect_new] * 4, stem
    summary = json.loads((out / "predictions.json").read_text())
    assert [r["input"] for r in summary["predictions"]] == [str(photos / "a.png")]
    assert list(summary["failures"]) == [str(photos / "b.png")]


# --- the converted folder the convert/export tests start from ----------------------------------------------------

@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """A zoejax-convert folder of the tiny ZoeD_N (random weights) whose provenance names ``source.pt``."""
    root = tmp_path_factory.mktemp("converted")
    cfg = presets.zoed_n("tiny")
    rng = np.random.default_rng(0)
    params = jax.tree.map(lambda s: rng.standard_normal(s.shape).astype(s.dtype), param_shapes(cfg))
    source = root / "source.pt"
    source.write_bytes(b"the user's original release file")
    save_converted(root / "zoe", cfg, params, {}, {"source": str(source)})
    return root / "zoe", source


def _convert(*args):
    return convert_cli.main([str(a) for a in args])


# --- item 2 ------------------------------------------------------------------------------------------------------

def test_export_replaces_an_existing_file_only_with_overwrite_and_never_the_source(converted, tmp_path, capsys):
    zoe, source = converted
    back = tmp_path / "back.pt"
    back.write_bytes(b"someone's file")
    assert _convert("--to", "official", zoe, back) == 1
    assert "exists (pass --overwrite" in capsys.readouterr().err and back.read_bytes() == b"someone's file"
    for protected in (source, zoe / "model_config.json"):  # the file it came from, a file of the input folder
        before = protected.read_bytes()
        assert _convert("--to", "official", zoe, protected, "--overwrite") == 1
        assert "is the input" in capsys.readouterr().err and protected.read_bytes() == before
    assert _convert("--to", "official", zoe, back, "--overwrite") == 0
    assert set(torch.load(back, weights_only=True)) == {"model", "optimizer", "epoch"}
    # --to hf: refused without --overwrite, honoured with it
    assert _convert("--to", "hf", zoe, tmp_path / "hf") == 0
    first = (tmp_path / "hf" / "model.safetensors").stat().st_mtime_ns
    assert _convert("--to", "hf", zoe, tmp_path / "hf") == 1
    assert "not empty" in capsys.readouterr().err
    assert _convert("--to", "hf", zoe, tmp_path / "hf", "--overwrite") == 0
    assert (tmp_path / "hf" / "model.safetensors").stat().st_mtime_ns != first and _leftovers(tmp_path) == []


# --- item 3 ------------------------------------------------------------------------------------------------------

def test_overwrite_replaces_only_folders_zoejax_wrote_and_never_one_holding_the_input(converted, tmp_path, capsys):
    zoe, _ = converted
    hf = tmp_path / "hf"
    assert _convert("--to", "hf", zoe, hf) == 0
    hf_files = {p.name: p.read_bytes() for p in hf.iterdir()}
    # The HF export is zoejax's own folder, but it is the input: importing it into itself would delete it.
    assert _convert(hf, hf, "--overwrite") == 1
    assert "holds the input" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in hf.iterdir()} == hf_files
    # A folder of someone's files, with or without zoejax's outputs in it, is never replaced.
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    assert _convert(hf, mine, "--overwrite") == 1
    assert "not written by zoejax" in capsys.readouterr().err
    assert _convert(hf, tmp_path / "zoe2") == 0
    (tmp_path / "zoe2" / "state" / "notes.txt").write_text("keep me too")
    assert _convert(hf, tmp_path / "zoe2", "--overwrite") == 1
    assert "state/notes.txt" in capsys.readouterr().err
    assert (mine / "notes.txt").read_text() == "keep me"
    assert (tmp_path / "zoe2" / "state" / "notes.txt").read_text() == "keep me too"
    # The StableHLO export shares the rule, and says so before its lowering.
    assert _convert("--to", "stablehlo", zoe, mine, "--size", "32x32", "--overwrite") == 1
    assert "not written by zoejax" in capsys.readouterr().err and (mine / "notes.txt").is_file()
    # What zoejax wrote, and only that, is replaced.
    (tmp_path / "zoe2" / "state" / "notes.txt").unlink()
    assert _convert(hf, tmp_path / "zoe2", "--overwrite") == 0
    assert _leftovers(tmp_path) == []


# --- item 11 (export and convert) --------------------------------------------------------------------------------

def test_a_full_disk_during_export_or_convert_leaves_no_temporary_and_the_old_output(converted, tmp_path,
                                                                                       monkeypatch, capsys):
    import orbax.checkpoint as ocp
    import safetensors.numpy
    from safetensors import SafetensorError

    zoe, _ = converted
    assert _convert("--to", "hf", zoe, tmp_path / "hf") == 0
    assert _convert("--to", "official", zoe, tmp_path / "back.pt") == 0
    assert _convert(tmp_path / "hf", tmp_path / "zoe2") == 0

    assert _convert("--to", "stablehlo", zoe, tmp_path / "serve", "--size", "32x32") == 0
    before = {p.relative_to(tmp_path): p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}

    def half_then_full(path, size=1000, error=None):
        with open(path, "wb") as f:
            f.write(b"\0" * size)
        raise error or OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))  # as write() raises it: no file name

    # Each writer fails as it does on a full disk (tried on a full tmpfs): safetensors with its own error type,
    # orbax with a ValueError naming the file.
    monkeypatch.setattr(safetensors.numpy, "save_file", lambda tensors, path, metadata=None: half_then_full(
        path, error=SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")))
    monkeypatch.setattr(torch, "save", lambda obj, path: half_then_full(path))
    monkeypatch.setattr(ocp.PyTreeCheckpointer, "save", lambda self, path, state: (os.makedirs(path), half_then_full(
        os.path.join(path, "d"), error=ValueError(f"RESOURCE_EXHAUSTED: {path}/d: No space left on device"))))
    monkeypatch.setattr(np, "savez", lambda f, **arrays: (f.write(b"PK half"), half_then_full(f.name)))
    runs = [("--to", "hf", zoe, tmp_path / "hf", "--overwrite"),
            ("--to", "official", zoe, tmp_path / "back.pt", "--overwrite"),
            (tmp_path / "hf", tmp_path / "zoe2", "--overwrite"),
            ("--to", "stablehlo", zoe, tmp_path / "serve", "--size", "32x32", "--overwrite")]
    for args in runs:
        assert _convert(*args) == 1
        err = capsys.readouterr().err
        assert err.startswith("zoejax-convert: error:") and "No space left on device" in err
        assert len(err.strip().splitlines()) == 1
    after = {p.relative_to(tmp_path): p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    assert after == before and _leftovers(tmp_path) == []


# --- item 7 ------------------------------------------------------------------------------------------------------

def test_synth_into_an_existing_dataset_is_refused_and_leaves_it_whole(tmp_path, capsys):
    data = tmp_path / "data"
    assert data_cli.main(["synth", str(data), "--num", "3", "--size", "8x8", "--no-progress"]) == 0
    before = {p.relative_to(data): p.read_bytes() for p in data.rglob("*") if p.is_file()}
    for extra in (["--seed", "1"], [], ["--format", "jsonl"]):
        code = data_cli.main(["synth", str(data), "--num", "1", "--size", "8x8", "--no-progress", *extra])
        assert {p.relative_to(data): p.read_bytes() for p in data.rglob("*") if p.is_file()} == before
        assert code == 2 and "already holds a dataset" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()  # an existing empty folder is a new dataset's home
    assert data_cli.main(["synth", str(tmp_path / "empty"), "--num", "1", "--size", "8x8", "--no-progress"]) == 0


# --- item 19 -----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("umask", [0o022, 0o007])
def test_atomic_outputs_get_the_mode_the_umask_gives(stub, converted, tmp_path, umask, capsys):
    zoe, _ = converted
    photos = tmp_path / "photos"
    photos.mkdir()
    _rgb(photos / "a.png", 0)
    previous = os.umask(umask)
    try:
        assert _predict(tmp_path / "out", photos, extra=["--ply"]) == 0
        assert _convert("--to", "official", zoe, tmp_path / "back.pt") == 0
        assert _convert("--to", "hf", zoe, tmp_path / "hf") == 0
    finally:
        os.umask(previous)
    files = [*(tmp_path / "out").iterdir(), tmp_path / "back.pt", tmp_path / "hf" / "config.json",
             tmp_path / "hf" / safe_output.OWNER_MANIFEST]
    assert len(files) == 8
    for f in files:
        assert stat.S_IMODE(f.stat().st_mode) == 0o666 & ~umask, f
    assert stat.S_IMODE((tmp_path / "hf").stat().st_mode) == 0o777 & ~umask
