"""``zoejax-data``: check (one line per bad row, summary, exit status), synth, show, --help."""

import csv
import json

import numpy as np
import pytest
from PIL import Image

from zoejax.cli.data import main


def run(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize("sub,flags", [
    (None, ["check", "synth", "show"]),
    ("check", ["--root", "--min-depth", "--max-depth", "--no-progress"]),
    ("synth", ["--num", "--outdoor", "--size", "--seed", "--format", "--image-format", "--no-progress"]),
    ("show", ["--index", "--out", "--root"]),
])
def test_help_documents_every_flag(capsys, sub, flags):
    with pytest.raises(SystemExit) as exc:
        main(([sub] if sub else []) + ["--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    for flag in flags:
        assert flag in text


def test_synth_then_check_passes(tmp_path, capsys):
    out = tmp_path / "synth"
    code, text, _ = run(capsys, "synth", str(out), "--num", "3", "--size", "24x32", "--no-progress")
    assert code == 0 and "wrote 3 frames" in text
    with open(out / "list.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 3 and rows[0]["depth_scale"] == "1000.0" and float(rows[0]["focal"]) > 0
    depth = np.asarray(Image.open(out / rows[1]["depth"]))
    assert depth.dtype == np.uint16 and depth.shape == (24, 32) and 300 < depth.min() and depth.max() < 10000
    code, text, err = run(capsys, "check", str(out / "list.csv"))
    assert code == 0
    assert text.strip().splitlines()[-1] == "checked 3 rows: 3 ok, 0 bad"
    assert "checking" in err  # the tqdm bar


def test_synth_outdoor_jsonl(tmp_path, capsys):
    out = tmp_path / "street"
    code, _, _ = run(capsys, "synth", str(out), "--num", "2", "--outdoor", "--size", "20x60", "--format",
                     "jsonl", "--image-format", "jpg", "--no-progress")
    assert code == 0
    rows = [json.loads(line) for line in (out / "list.jsonl").read_text().splitlines()]
    assert rows[0]["depth_scale"] == 256.0 and rows[0]["image"].endswith(".jpg")
    assert run(capsys, "check", str(out / "list.jsonl"), "--no-progress")[0] == 0


def test_check_reports_each_bad_row(tmp_path, capsys):
    h, w = 12, 16
    Image.fromarray(np.zeros((h, w, 3), np.uint8)).save(tmp_path / "ok.png")
    Image.fromarray(np.full((h, w), 1500, np.uint16)).save(tmp_path / "ok_d.png")
    Image.fromarray(np.full((h + 1, w), 1500, np.uint16)).save(tmp_path / "big_d.png")
    Image.fromarray(np.zeros((h, w), np.uint16)).save(tmp_path / "zero_d.png")
    (tmp_path / "junk.png").write_bytes(b"junk")
    (tmp_path / "list.csv").write_text(
        "image,depth,depth_scale,focal\n"
        "ok.png,ok_d.png,1000,500\n"            # line 2: fine
        "gone.png,ok_d.png,1000,\n"             # line 3: missing image
        "junk.png,ok_d.png,1000,\n"             # line 4: unreadable image
        "ok.png,big_d.png,1000,\n"              # line 5: size mismatch
        "ok.png,zero_d.png,1000,\n"             # line 6: all-invalid depth
        "ok.png,ok_d.png,abc,\n"                # line 7: bad scale
        "ok.png,ok_d.png,1,\n")                 # line 8: 1500 m: outside the range
    code, text, _ = run(capsys, "check", str(tmp_path / "list.csv"), "--no-progress")
    assert code == 1
    lines = text.strip().splitlines()
    assert len(lines) == 7  # six bad rows and the summary
    assert lines[0].endswith("list.csv:3: missing file: " + str(tmp_path / "gone.png"))
    assert "list.csv:4: unreadable:" in lines[1] and "junk.png" in lines[1]
    assert "list.csv:5: size mismatch:" in lines[2] and "13x16" in lines[2]
    assert "list.csv:6: no valid depth:" in lines[3]
    assert "list.csv:7: format:" in lines[4] and "depth_scale" in lines[4]
    assert "list.csv:8: no valid depth:" in lines[5]
    assert lines[6] == ("checked 7 rows: 1 ok, 6 bad (1 format, 1 missing file, 1 unreadable, "
                        "1 size mismatch, 2 no valid depth)")
    code, _, _ = run(capsys, "check", str(tmp_path / "list.csv"), "--no-progress", "--max-depth", "2000")
    assert code == 1  # line 8 is fine now, the others are not


def test_check_usage_errors(tmp_path, capsys):
    code, _, err = run(capsys, "check", str(tmp_path / "nope.csv"))
    assert code == 2 and "missing list file" in err
    (tmp_path / "l.csv").write_text("image,depth,scale\n")
    code, text, err = run(capsys, "check", str(tmp_path / "l.csv"), "--no-progress")
    assert code == 1 and "checked 0 rows" in text and "lists no examples" in err


def test_show_writes_a_panel(tmp_path, capsys):
    run(capsys, "synth", str(tmp_path), "--num", "2", "--size", "20x30", "--no-progress")
    code, text, _ = run(capsys, "show", str(tmp_path / "list.csv"), "--index", "1", "--out",
                        str(tmp_path / "p.png"))
    assert code == 0 and "100.0% valid" in text
    panel = np.asarray(Image.open(tmp_path / "p.png"))
    assert panel.shape == (20, 90, 3)
    assert np.all(panel[:, 60:] == 255)  # the valid mask panel: all valid
    assert run(capsys, "show", str(tmp_path / "list.csv"), "--index", "5", "--out", "x.png")[0] == 2
