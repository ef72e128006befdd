"""Images and depth maps whose encoding would silently give wrong results (issue 28 items 15-17): 16-bit grey
images scaled (not clipped) to 8 bits, EXIF orientation applied, depth beyond what a 16-bit PNG holds said so,
and 8-bit depth PNGs flagged by ``zoejax-data check``."""

import csv
import json
import types

import numpy as np
import pytest
from PIL import Image

from data_pipelines.files import read_rgb, write_depth_png
from zoejax.cli import data as data_cli
from zoejax.cli import predict as predict_cli
from zoejax.inference import Prediction
from zoejax.io.images import ImageInputError, read_image


def _grey16(path, values):
    Image.fromarray(np.asarray(values, np.uint16)).save(path)


def test_16_bit_grey_is_scaled_to_8_bits_for_prediction_and_data(tmp_path):
    ramp = np.linspace(0, 65535, 16 * 16).round().astype(np.uint16).reshape(16, 16)
    path = tmp_path / "scan16.png"
    _grey16(path, ramp)
    assert Image.open(path).mode == "I;16"
    expected = np.round(ramp / 257.0).astype(np.uint8)
    for arr in (read_image(path, convert=True), read_rgb(str(path))):
        assert arr.dtype == np.uint8 and arr.shape == (16, 16, 3)
        np.testing.assert_array_equal(arr[..., 0], expected)  # 32768 -> 128, not 255 (Pillow's convert clips)
        assert (arr[..., 0] == arr[..., 2]).all()
    assert read_image(path, convert=True)[8, 0, 0] == 128
    with pytest.raises(ImageInputError, match="16-bit grayscale.*--convert-to-rgb"):
        read_image(path)


def test_float_and_32_bit_grey_outside_the_convertible_range_are_refused(tmp_path):
    path = tmp_path / "metres.tif"
    Image.fromarray(np.full((4, 4), 3.5, np.float32)).save(path)
    with pytest.raises(ImageInputError, match=r"metres.tif: float grayscale.*\[3.5, 3.5\]"):
        read_image(path, convert=True)
    unit = tmp_path / "unit.tif"
    Image.fromarray(np.full((4, 4), 0.5, np.float32)).save(unit)
    assert (read_image(unit, convert=True) == 128).all()


def _oriented(path, orientation):
    """A 4x6 image with distinct pixels, stored with an EXIF orientation tag."""
    arr = np.arange(4 * 6 * 3, dtype=np.uint8).reshape(4, 6, 3) * 3
    img = Image.fromarray(arr)
    exif = img.getexif()
    exif[0x0112] = orientation
    img.save(path, exif=exif)
    return arr


@pytest.mark.parametrize("orientation,upright", [
    (6, lambda a: np.rot90(a, -1)),  # stored sideways, shown turned 90 degrees clockwise (a phone held upright)
    (8, lambda a: np.rot90(a, 1)),
    (3, lambda a: a[::-1, ::-1]),
    (2, lambda a: a[:, ::-1]),
])
def test_exif_orientation_is_applied_for_prediction_and_data(tmp_path, orientation, upright):
    path = tmp_path / f"phone_{orientation}.png"
    stored = _oriented(path, orientation)
    for arr in (read_image(path), read_rgb(str(path))):
        np.testing.assert_array_equal(arr, upright(stored))


def test_depth_beyond_16_bits_is_refused_when_written_and_flagged_by_check(tmp_path, capsys):
    far = np.full((8, 8), 70.0, np.float32)  # ZoeD_K reaches 80 m; millimetres stop at 65.535 m
    with pytest.raises(ValueError, match=r"70.000 m does not fit a 16-bit PNG at depth_scale 1000 \(at most 65.535"):
        write_depth_png(str(tmp_path / "far.png"), far, 1000.0)
    write_depth_png(str(tmp_path / "far256.png"), far, 256.0)  # 1/256 m steps hold up to 255.996 m
    assert np.asarray(Image.open(tmp_path / "far256.png")).max() == 70 * 256

    # A PNG someone else wrote, clipped at 65535 mm: check names it instead of passing it.
    image = np.zeros((8, 8, 3), np.uint8)
    Image.fromarray(image).save(tmp_path / "rgb.png")
    stored = np.full((8, 8), 20000, np.uint16)
    stored[:2] = 65535
    _grey16(tmp_path / "clipped.png", stored)
    _grey16(tmp_path / "fine.png", np.full((8, 8), 20000, np.uint16))
    listing = tmp_path / "list.csv"
    with open(listing, "w", newline="") as f:
        w = csv.writer(f)
        w.writerows([["image", "depth", "depth_scale"], ["rgb.png", "clipped.png", "1000"],
                     ["rgb.png", "fine.png", "1000"]])
    code = data_cli.main(["check", str(listing), "--no-progress"])
    out = capsys.readouterr().out
    assert code == 1
    assert f"{listing}:2: clipped depth: " in out and "16 pixel(s) at 65535" in out and "65.535 m" in out
    assert ":3:" not in out and "1 bad (1 clipped depth)" in out


def test_8_bit_depth_pngs_do_not_pass_check_at_millimetres(tmp_path, capsys):
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "rgb.png")
    Image.fromarray(np.full((8, 8), 150, np.uint8)).save(tmp_path / "depth8.png")  # 0.15 m at mm: all "valid"
    listing = tmp_path / "list.csv"
    listing.write_text("image,depth,depth_scale\nrgb.png,depth8.png,1000\nrgb.png,depth8.png,2\n")
    code = data_cli.main(["check", str(listing), "--no-progress", "--max-depth", "100"])
    out = capsys.readouterr().out
    assert code == 1
    assert (f"{listing}:2: 8-bit depth: " in out and "holds at most 0.255 m in steps of 0.001 m" in out
            and "16-bit PNG" in out)
    assert ":3:" not in out  # at depth_scale 2 an 8-bit PNG reaches 127.5 m: coarse but not wrong
    assert "checked 2 rows: 1 ok, 1 bad (1 8-bit depth)" in out


def test_predict_says_which_outputs_clip_at_65_metres(tmp_path, capsys, monkeypatch):
    """The PNG of a prediction beyond 65.535 m is clipped there: the run says so and the JSON counts it."""
    images = tmp_path / "in"
    images.mkdir()
    for name, value in (("street", 255), ("room", 0)):
        Image.fromarray(np.full((16, 24, 3), value, np.uint8)).save(images / f"{name}.png")

    def predict_batch(batch, pad_input=True, flip_tta=True):  # a far street (bright image), a near room
        depth = np.full(batch.shape[:3], 5.0, np.float32)
        depth[:, :4] = np.where(batch[:, :4, :, 0] == 255, 79.0, 5.0)
        return Prediction(depth, None, ())

    model = types.SimpleNamespace(predict_batch=predict_batch, output="metric_depth", units="metres",
                                  default_pad_input=True, default_flip_tta=True)
    monkeypatch.setattr(predict_cli, "_load_model", lambda *a: model)
    out = tmp_path / "out"
    code = predict_cli.main(["--checkpoint", str(tmp_path), "--output", str(out), "--batch-size", "1",
                             str(images / "street.png"), str(images / "room.png")])
    err = capsys.readouterr().err
    assert code == 0
    assert "1 image(s) have depth beyond 65.535 m" in err and "street.png" in err and "room.png" not in err
    records = {r["input"]: r for r in json.loads((out / "predictions.json").read_text())["predictions"]}
    assert records[str(images / "street.png")]["png_clipped_pixels"] == 4 * 24
    assert "png_clipped_pixels" not in records[str(images / "room.png")]
    assert np.load(out / "street.npy").max() == 79.0  # the exact metres are kept
