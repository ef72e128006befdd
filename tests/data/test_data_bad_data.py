"""Bad data: missing files name file and list line; corrupt/unusable examples are skipped with a warning that
says why (or raised on request); nothing dies obscurely inside a worker."""

import itertools

import numpy as np
import pytest
from PIL import Image

from data_pipelines.config import DataConfig
from data_pipelines.errors import (
    BadExampleWarning,
    CorruptFileError,
    DataError,
    MissingFileError,
)
from data_pipelines.pipeline import build_eval, build_train


def write_nyu(root, n=6, h=24, w=32):
    """NYU-layout frames; frame i has a flat red level 10 * (i + 1) and depth 1 + i/10 m."""
    lines = []
    for i in range(n):
        img = np.zeros((h, w, 3), np.uint8)
        img[..., 0] = 10 * (i + 1)
        Image.fromarray(img).save(root / f"rgb_{i}.png")
        Image.fromarray(np.full((h, w), 1000 + 100 * i, np.uint16)).save(root / f"d_{i}.png")
        lines.append(f"rgb_{i}.png d_{i}.png 518.8579")
    (root / "list.txt").write_text("\n".join(lines) + "\n")


def cfg_for(root, **kw):
    d = {"sources": [{"name": "nyu", "root": str(root), "list_file": "list.txt"}], "batch_size": 2,
         "image_size": [16, 16], "shuffle": False, "augment": {"enabled": False}, "read_threads": 0}
    d.update(kw)
    return DataConfig.from_dict(d)


def kinds(record) -> list[str]:
    """The kinds of the BadExampleWarnings in a ``pytest.warns`` record, sorted."""
    return sorted(w.message.kind for w in record if isinstance(w.message, BadExampleWarning))


def red_levels(batches):
    return [int(round(r)) for b in batches for r in b["image"][..., 0].mean((1, 2)) * 255]


def test_missing_file_names_file_and_line(tmp_path):
    write_nyu(tmp_path)
    (tmp_path / "d_3.png").unlink()
    with pytest.raises(MissingFileError, match=r"d_3.png \(.*list.txt:4\)"):
        build_train(cfg_for(tmp_path), 0, 0, 1)


def test_corrupt_image_is_skipped_and_warned(tmp_path):
    write_nyu(tmp_path)
    (tmp_path / "rgb_2.png").write_bytes(b"\x89PNG\r\n\x1a\ntruncated")
    with pytest.warns(BadExampleWarning, match=r"rgb_2.png.*list.txt:3") as record:
        batches = list(itertools.islice(build_train(cfg_for(tmp_path, num_epochs=1), 0, 0, 1), 3))
    assert all(b["image"].shape[0] == 2 for b in batches)  # full batches: the next example stands in
    assert red_levels(batches) == [10, 20, 40, 40, 50, 60]
    assert kinds(record) == ["corrupt"]


def test_corrupt_file_raises_when_asked(tmp_path):
    write_nyu(tmp_path)
    (tmp_path / "d_1.png").write_bytes(b"not a png at all")
    with pytest.raises(CorruptFileError, match=r"d_1.png.*list.txt:2"):
        list(build_train(cfg_for(tmp_path, num_epochs=1, on_bad_example="raise"), 0, 0, 1))


def test_wrong_size_and_all_invalid_depth_are_reported(tmp_path):
    write_nyu(tmp_path)
    Image.fromarray(np.full((10, 10), 1500, np.uint16)).save(tmp_path / "d_1.png")  # wrong size
    Image.fromarray(np.zeros((24, 32), np.uint16)).save(tmp_path / "d_4.png")  # no valid pixel
    with pytest.warns(BadExampleWarning) as record:
        batches = list(build_train(cfg_for(tmp_path, num_epochs=1), 0, 0, 1))
    messages = " | ".join(str(w.message) for w in record)
    assert "is 10x10 but its image is 24x32" in messages and "list.txt:2" in messages
    assert "no valid depth" in messages and "list.txt:5" in messages
    assert kinds(record) == ["bad_depth", "no_valid_depth"]
    assert red_levels(batches) == [10, 30, 30, 40, 60, 60]
    # Evaluation keeps the all-invalid frame (the evaluator skips it) and blanks the wrong-size one.
    with pytest.warns(BadExampleWarning):
        evaluated = list(build_eval(cfg_for(tmp_path, batch_size=1), 0, 1))
    assert [bool(b["valid"].any()) for b in evaluated] == [True, False, True, True, False, True]


def test_too_many_consecutive_bad_examples_gives_up_clearly(tmp_path):
    write_nyu(tmp_path, n=3)
    for i in range(3):
        (tmp_path / f"rgb_{i}.png").write_bytes(b"junk")
    it = iter(build_train(cfg_for(tmp_path), 0, 0, 1))
    with pytest.warns(BadExampleWarning), pytest.raises(DataError, match="consecutive bad examples"):
        next(it)
    it.close()


def test_worker_errors_reach_the_main_process_with_the_file_name(tmp_path):
    write_nyu(tmp_path)
    (tmp_path / "rgb_0.png").write_bytes(b"junk")
    it = iter(build_train(cfg_for(tmp_path, on_bad_example="raise", num_workers=1), 0, 0, 1))
    with pytest.raises(CorruptFileError, match=r"rgb_0.png.*list.txt:1"):
        next(it)
    it.close()
