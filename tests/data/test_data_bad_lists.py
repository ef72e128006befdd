"""Input that used to end a run with a traceback or lose its results (issue 28 item 22): list files that are not
UTF-8, a CSV with a byte-order mark, a damaged HyperSim ``.hdf5`` in an evaluation, and an ``--output`` of
zoejax-eval / zoejax-predict that cannot be written, found before anything runs."""

import importlib.util
import json
import shutil

import numpy as np
import pytest
from PIL import Image

from data_pipelines.errors import (
    BadExampleWarning,
    ListFormatError,
    bad_example_counts,
    reset_bad_example_counts,
)
from data_pipelines.guard import GuardedSource
from data_pipelines.sources import CustomSource, HyperSimSource, NYUSource
from zoejax.cli import data as data_cli
from zoejax.cli import evaluate as eval_cli
from zoejax.cli import predict as predict_cli
from zoejax.models import presets
from zoejax.models.init import init_params
from zoejax.storage.converted import save_converted


def _pair(folder, name, depth_mm=2000, size=(8, 8)):
    Image.fromarray(np.full((*size, 3), 90, np.uint8)).save(folder / f"{name}.png")
    Image.fromarray(np.full(size, depth_mm, np.uint16)).save(folder / f"{name}_depth.png")


def test_latin1_lists_name_the_file_and_line(tmp_path, capsys):
    _pair(tmp_path, "ok")
    listing = tmp_path / "list.csv"
    listing.write_bytes("image,depth,depth_scale\nok.png,ok_depth.png,1000\ncafé.png,ok_depth.png,1000\n"
                        .encode("latin-1"))
    assert data_cli.main(["check", str(listing), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == (f"error: {listing}:3: not UTF-8 text (byte 0xe9 at column 4, e.g. Latin-1 or "
                           "Windows-1252); save the list as UTF-8")
    bts = tmp_path / "train.txt"
    bts.write_bytes(b"ok.png ok_depth.png 518.8\n\nsalle_\xe0_manger.png ok_depth.png 518.8\n")
    with pytest.raises(ListFormatError, match=r"train.txt:3: not UTF-8 text \(byte 0xe0 at column 7"):
        NYUSource(str(tmp_path), str(bts))
    jsonl = tmp_path / "list.jsonl"
    jsonl.write_bytes('{"image": "ok.png", "depth": "ok_depth.png", "depth_scale": 1000}\n'
                      '{"image": "é.png", "depth": "ok_depth.png", "depth_scale": 1000}\n'.encode("cp1252"))
    with pytest.raises(ListFormatError, match=r"list.jsonl:2: not UTF-8"):
        CustomSource(str(jsonl))


def test_a_csv_row_the_csv_module_refuses_is_named(tmp_path, capsys):
    listing = tmp_path / "list.csv"
    listing.write_text("image,depth,depth_scale\na.png,a_depth.png,1000\n" + "x" * 200_000 + ".png,b.png,1000\n")
    assert data_cli.main(["check", str(listing), "--no-progress"]) == 2
    assert capsys.readouterr().err.strip() == (f"error: {listing}:3: not a valid CSV row (field larger than field "
                                               "limit (131072))")


def test_show_into_a_folder_that_does_not_exist_is_one_line(tmp_path, capsys):
    _pair(tmp_path, "a")
    (tmp_path / "list.csv").write_text("image,depth,depth_scale\na.png,a_depth.png,1000\n")
    for out, reason in ((tmp_path / "no" / "row.png", "No such file or directory"),
                        (tmp_path / "row.unknown", "unknown file extension")):
        assert data_cli.main(["show", str(tmp_path / "list.csv"), "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"error: cannot write --out {out}: ") and reason in err and len(err.splitlines()) == 1


def test_lists_with_a_byte_order_mark_are_read(tmp_path, capsys):
    _pair(tmp_path, "a")
    _pair(tmp_path, "b")
    rows = "image,depth,depth_scale\r\na.png,a_depth.png,1000\r\nb.png,b_depth.png,1000\r\n"
    (tmp_path / "excel.csv").write_bytes(b"\xef\xbb\xbf" + rows.encode())  # what spreadsheets export
    assert data_cli.main(["check", str(tmp_path / "excel.csv"), "--no-progress"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == "checked 2 rows: 2 ok, 0 bad"
    src = CustomSource(str(tmp_path / "excel.csv"))
    assert len(src) == 2 and src[1]["depth"][0, 0] == pytest.approx(2.0) and src.rows[1].where.endswith(":3")
    record = json.dumps({"image": "a.png", "depth": "a_depth.png", "depth_scale": 1000})
    (tmp_path / "bom.jsonl").write_text("\ufeff" + record + "\n", encoding="utf-8")
    assert len(CustomSource(str(tmp_path / "bom.jsonl"))) == 1
    (tmp_path / "bom.txt").write_text("\ufeffa.png a_depth.png 518.8\n", encoding="utf-8")
    assert NYUSource(str(tmp_path), str(tmp_path / "bom.txt")).rows[0].image == str(tmp_path / "a.png")


def _hypersim(root, frames):
    """A HyperSim layout; frame i's depth: real HDF5 where h5py is installed, else ``.npy`` bytes under the
    ``.hdf5`` name read by a stand-in that fails on anything else as h5py does."""
    have_h5py = importlib.util.find_spec("h5py") is not None
    for i, good in enumerate(frames):
        images = root / "ai_001_001" / "images"
        (images / "scene_cam_00_final_preview").mkdir(parents=True, exist_ok=True)
        (images / "scene_cam_00_geometry_hdf5").mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((8, 8, 3), 60, np.uint8)).save(
            images / "scene_cam_00_final_preview" / f"frame.000{i}.tonemap.jpg")
        depth = images / "scene_cam_00_geometry_hdf5" / f"frame.000{i}.depth_meters.hdf5"
        if not good:
            depth.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 40)  # a signature, then nothing: truncated
        elif have_h5py:
            import h5py
            with h5py.File(depth, "w") as f:
                f["dataset"] = np.full((8, 8), 4.0, np.float32)
        else:
            with open(depth, "wb") as f:
                np.save(f, np.full((8, 8), 4.0, np.float32))
    if have_h5py:
        return None

    def reader(path):
        try:
            return np.load(path, allow_pickle=False)
        except ValueError:
            raise OSError(f"Unable to synchronously open file (file signature not found): {path}") from None
    return reader


def test_a_damaged_hypersim_file_is_counted_and_the_evaluation_goes_on(tmp_path):
    reader = _hypersim(tmp_path, frames=(True, False, True))
    source = GuardedSource(HyperSimSource(str(tmp_path), depth_reader=reader), on_error="skip", training=False,
                           depth_range=(1e-3, 80.0))
    reset_bad_example_counts()
    with pytest.warns(UserWarning, match=r"blanking bad example \(corrupt\): unreadable HyperSim depth .*"
                      r"frame.0001.depth_meters.hdf5"):
        examples = [source[i] for i in range(len(source))]
    assert bad_example_counts() == {"corrupt": 1}
    assert [bool(e["valid"].any()) for e in examples] == [True, False, True]
    assert examples[2]["depth"][4, 4] == pytest.approx(4.0, rel=1e-3)  # planar depth of a 4 m ray near the centre


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    cfg = presets.zoed_n("tiny")
    path = tmp_path_factory.mktemp("ckpt") / "n"
    save_converted(path, cfg, init_params(cfg, 0), {}, {"source": "random init (test)"})
    return path


def test_eval_reports_unreadable_examples_and_keeps_scoring(tiny_checkpoint, tmp_path, capsys, fast_compiles):
    root = tmp_path / "nyu"
    root.mkdir()
    lines = []
    for i in range(3):
        _pair(root, f"f{i}", size=(480, 640))  # the NYU protocol's Eigen crop needs the full size
        lines.append(f"f{i}.png f{i}_depth.png 518.8579")
    (root / "f1_depth.png").write_bytes(b"\x89PNG\r\n\x1a\n damaged")
    (root / "test.txt").write_text("\n".join(lines) + "\n")
    reset_bad_example_counts()
    out = tmp_path / "results.json"
    with pytest.warns(BadExampleWarning, match=r"blanking bad example \(corrupt\): .*f1_depth.png .*test.txt:2"):
        code = eval_cli.main(["--checkpoint", str(tiny_checkpoint), "--datasets", "nyu", "--input-size", "32x32",
                              "--root", f"nyu={root}", "--list", f"nyu={root}/test.txt", "--batch-size", "3",
                              "--no-progress", "--output", str(out), "--no-flip-tta"])
    err = capsys.readouterr().err
    assert code == 0
    assert "warning: 1 example(s) were left out of the scores (1 corrupt; each is named above)" in err
    result = json.loads(out.read_text())["results"][0]
    assert result["num_images"] == 2 and result["num_without_depth"] == 1


def test_eval_output_that_cannot_be_written_is_refused_before_anything_runs(tmp_path, capsys):
    missing = str(tmp_path / "no_checkpoint")  # were the output checked last, this would be the error
    folder = tmp_path / "results"
    folder.mkdir()
    a_file = tmp_path / "notes.txt"
    a_file.write_text("mine\n")
    cases = [(str(folder), f"--output {folder}: is a folder; give the JSON file to write, e.g. {folder}/results.json"),
             (str(a_file / "r.json"), f"{a_file} is a file, not a folder"),
             (str(a_file / "deeper" / "r.json"), f"{a_file} is a file, not a folder")]
    for output, message in cases:
        with pytest.raises(SystemExit) as info:
            eval_cli.main(["--checkpoint", missing, "--datasets", "synthetic_indoor", "--output", output])
        err = capsys.readouterr().err
        assert info.value.code == 2 and message in err, err
    assert a_file.read_text() == "mine\n"


@pytest.mark.parametrize("content,message", [
    ({"results": [{"metrics": {"a1": 0.9}}]}, "its results are not rows with dataset and metrics"),
    ({"nyu": {"a1": "0.9"}}, "nyu/a1 is '0.9', not a number"),
    ([1, 2], "expected {dataset: {metric: value}} or a zoejax-eval --output file"),
])
def test_a_malformed_reference_is_one_line(tmp_path, capsys, content, message):
    reference = tmp_path / "ref.json"
    reference.write_text(json.dumps(content))
    code = eval_cli.main(["--checkpoint", str(tmp_path / "none"), "--datasets", "nyu", "--reference", str(reference)])
    err = capsys.readouterr().err
    assert code == 1 and err.startswith(f"zoejax-eval: error: {reference}: ") and message in err
    assert len(err.splitlines()) == 1


def test_predict_output_that_is_a_file_is_refused_before_the_model_loads(tmp_path, capsys, monkeypatch):
    image = tmp_path / "photo.png"
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(image)
    a_file = tmp_path / "depth_out"
    a_file.write_text("mine\n")
    monkeypatch.setattr(predict_cli, "_load_model", lambda *a: pytest.fail("the model was loaded"))
    for output in (a_file, a_file / "sub"):
        assert predict_cli.main(["--checkpoint", str(tmp_path), "--output", str(output), str(image)]) == 1
        assert f"--output {output}: {a_file} is a file; give a folder" in capsys.readouterr().err
    assert a_file.read_text() == "mine\n"


def test_eval_on_a_damaged_checkpoint_folder_or_an_empty_list_is_one_line(tiny_checkpoint, tmp_path, capsys):
    damaged = tmp_path / "damaged"
    shutil.copytree(tiny_checkpoint, damaged)
    for meta in damaged.rglob("_METADATA"):
        meta.write_bytes(meta.read_bytes()[: meta.stat().st_size // 2])
    typed = tmp_path / "typed"
    shutil.copytree(tiny_checkpoint, typed)
    config = json.loads((typed / "model_config.json").read_text())
    config["backbone"]["embed_dim"] = "wide"
    (typed / "model_config.json").write_text(json.dumps(config))
    for folder in (damaged, typed):
        assert eval_cli.main(["--checkpoint", str(folder), "--datasets", "synthetic_indoor"]) == 1
        err = capsys.readouterr().err
        assert err.startswith(f"zoejax-eval: error: cannot load checkpoint {folder}: ") and len(err.splitlines()) == 1
    (tmp_path / "empty.txt").write_text("# no rows yet\n")
    code = eval_cli.main(["--checkpoint", str(tiny_checkpoint), "--datasets", "nyu", "--root", f"nyu={tmp_path}",
                          "--list", f"nyu={tmp_path}/empty.txt"])
    assert code == 1 and capsys.readouterr().err.strip() == (f"zoejax-eval: error: {tmp_path}/empty.txt: the list "
                                                             "has no rows")
