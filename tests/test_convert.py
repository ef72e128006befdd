"""The converter: layouts, strict accounting, parity through the HF reference, lossless round trips, bad input."""

import pickle

import jax
import numpy as np
import pytest
import torch
from checkpoint_fixtures import manifest_state_dict
from numerics import rel_l2
from torch_reference import build_reference, run_reference, state_dict_numpy

import zoejax
from zoejax.cli import convert as convert_cli
from zoejax.conversion.apply import ConversionError
from zoejax.conversion.convert import convert_state_dict, export_state_dict
from zoejax.conversion.hf_table import hf_table
from zoejax.conversion.official_table import official_table
from zoejax.conversion.table import extra_group
from zoejax.inference import ZoeDepthModel
from zoejax.models import presets
from zoejax.models.init import count_params, param_shapes


@pytest.mark.parametrize("name,variant,expected_params", [
    ("ZoeD_N", "n", 342_609_538),
    ("ZoeD_NK", "nk", 343_893_147),
    ("dpt_beit_large_384", "n", 342_609_538),  # encoder + decoder from the file, fresh ZoeD_N head
    ("dpt_beit_base_384", "n", 110_059_138),
])
def test_release_shaped_checkpoints_convert(name, variant, expected_params):
    state = manifest_state_dict(name)
    detected, converted = convert_state_dict(state, source=name)
    assert detected.variant == variant
    assert count_params(converted.params) == expected_params
    if not name.startswith("dpt"):  # every float tensor is a parameter or a kept extra
        used = sum(v.size for k, v in state.items() if not k.endswith(("_index", "k_idx", "K_minus_1")))
        assert count_params(converted.params) + sum(v.size for v in converted.extras.values()) == used
    assert {extra_group(n) for n in converted.extras} == {
        "encoder.fc_norm", "encoder.head", "refinenet4.resConfUnit1"}


def test_official_export_key_set_equals_release_file():
    for name, cfg in (("ZoeD_N", presets.zoed_n()), ("ZoeD_NK", presets.zoed_nk())):
        state = manifest_state_dict(name)
        table = official_table(cfg)
        keys = {k for e in table.entries for k in e.torch_keys} | set(table.extras) | set(table.buffers)
        assert keys == set(state)


@pytest.fixture(scope="module", params=["zoed_n", "zoed_k", "zoed_nk"])
def hf_reference(request):
    cfg = presets.VARIANTS[request.param]("tiny")
    model = build_reference(cfg, seed=4)
    return cfg, model, state_dict_numpy(model)


def test_hf_and_official_layouts_match_reference(hf_reference, tmp_path):
    cfg, model, state = hf_reference
    images = np.random.default_rng(0).random((1, 64, 96, 3), dtype=np.float32)
    expected = run_reference(model, images)["metric_depth"]
    _, from_hf = convert_state_dict(state)
    official = export_state_dict(cfg, from_hf.params, from_hf.extras, "official")
    assert not set(official) & set(state)  # really another naming
    for layout in (state, official):
        detected, converted = convert_state_dict(layout)
        assert detected.config == cfg
        # zoejax.load's forward (official preprocessing) on an image already at the network size
        loaded = ZoeDepthModel(detected.config, converted.params, input_size=(64, 96))
        assert rel_l2(loaded.forward(images)["metric_depth"], expected) < 1e-5


def test_round_trips_are_bit_exact(hf_reference):
    cfg, _, state = hf_reference
    _, from_hf = convert_state_dict(state)
    file_names = export_state_dict(cfg, from_hf.params, from_hf.extras, "hf")
    assert set(file_names) == {k for e in hf_table(cfg, "file").entries for k in e.torch_keys} | set(
        hf_table(cfg, "file").extras)
    # HF -> zoejax -> HF, and official -> zoejax -> official, every tensor equal
    for original in (file_names, export_state_dict(cfg, from_hf.params, from_hf.extras, "official")):
        fmt = "hf" if "backbone.embeddings.cls_token" in original else "official"
        _, converted = convert_state_dict(original)
        back = export_state_dict(cfg, converted.params, converted.extras, fmt)
        assert set(back) == set(original)
        for k in original:
            assert back[k].dtype == original[k].dtype, k
            np.testing.assert_array_equal(back[k], original[k], err_msg=k)


def test_release_shaped_official_round_trip_is_bit_exact():
    state = manifest_state_dict("ZoeD_NK", materialise=True)
    detected, converted = convert_state_dict(state)
    back = export_state_dict(detected.config, converted.params, converted.extras, "official")
    assert set(back) == set(state)
    for k, v in state.items():
        assert back[k].dtype == v.dtype and np.array_equal(back[k], v), k


def test_export_without_extras_initialises_them():
    cfg = presets.zoed_n("tiny")
    _, converted = convert_state_dict(state_dict_numpy(build_reference(cfg)))
    state = export_state_dict(cfg, converted.params, {}, "official")
    np.testing.assert_array_equal(state["core.core.pretrained.model.fc_norm.weight"], 1.0)
    assert state["core.core.pretrained.model.head.weight"].shape == (1000, 32)
    assert state["core.core.scratch.refinenet4.resConfUnit1.conv1.weight"].std() > 0


@pytest.mark.parametrize("backbone", ["tiny", "small"])
@pytest.mark.parametrize("to", ["official", "hf"])
def test_every_small_beit_preset_exports_and_is_detected_again(backbone, to):
    # The demo trains "small": its exported weights must import again. Zeros of the right shapes suffice here.
    cfg = presets.zoed_n(backbone)
    params = jax.tree.map(lambda x: np.zeros(x.shape, x.dtype), param_shapes(cfg))
    detected, _ = convert_state_dict(export_state_dict(cfg, params, {}, to))
    assert detected.backbone == backbone and detected.config == cfg


def _save_official(tmp_path, state, name="model.pt"):
    path = tmp_path / name
    torch.save({"model": {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in state.items()}}, path)
    return path


@pytest.fixture(scope="module")
def official_state():
    cfg = presets.zoed_n("tiny")
    _, converted = convert_state_dict(state_dict_numpy(build_reference(cfg, seed=2)))
    return export_state_dict(cfg, converted.params, converted.extras, "official")


def _run_cli(args, capsys):
    code = convert_cli.main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_cli_converts_and_exports(official_state, tmp_path, capsys):
    src = _save_official(tmp_path, official_state)
    code, out, _ = _run_cli([src, tmp_path / "zoe"], capsys)
    assert code == 0 and "official layout" in out and "kept aside for export: encoder.head" in out
    code, out, _ = _run_cli(["--to", "official", tmp_path / "zoe", tmp_path / "back.pt"], capsys)
    assert code == 0
    back = torch.load(tmp_path / "back.pt", weights_only=True)["model"]
    assert set(back) == set(official_state)
    for k, v in official_state.items():
        np.testing.assert_array_equal(back[k].numpy(), v)
    code, _, err = _run_cli([src, tmp_path / "zoe"], capsys)
    assert code == 1 and "not empty" in err


@pytest.mark.parametrize("damage,message", [
    ("remove", "missing key: core.core.scratch.layer1_rn.weight"),
    ("extra", "unexpected key: core.core.scratch.bogus.weight"),
    ("shape", "shape mismatch: conv2.weight (3, 3, 1, 1)"),
])
def test_cli_reports_bad_keys(official_state, tmp_path, capsys, damage, message):
    state = dict(official_state)
    if damage == "remove":
        del state["core.core.scratch.layer1_rn.weight"]
    elif damage == "extra":
        state["core.core.scratch.bogus.weight"] = np.zeros(3, np.float32)
    else:
        state["conv2.weight"] = np.zeros((3, 3, 1, 1), np.float32)
    src = _save_official(tmp_path, state)
    code, _, err = _run_cli([src, tmp_path / "out"], capsys)
    assert code == 1 and message in err
    assert not (tmp_path / "out").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]  # nothing half-written


def test_cli_rejects_non_checkpoints(official_state, tmp_path, capsys):
    text = tmp_path / "notes.pt"
    text.write_text("these are not weights\n")
    code, _, err = _run_cli([text, tmp_path / "a"], capsys)
    assert code == 1 and "not a" in err and "notes.pt" in err
    garbage = tmp_path / "braces.pt"
    garbage.write_text("{}")
    code, _, err = _run_cli([garbage, tmp_path / "a"], capsys)
    # torch's own reason, without its boilerplate; not called code-executing, which it is not
    assert code == 1 and "(Unsupported operand 123)" in err and "execute code" not in err
    assert "Please file an issue" not in err and "PyTorch 2.6" not in err
    full = _save_official(tmp_path, official_state, "full.pt")
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    code, _, err = _run_cli([truncated, tmp_path / "b"], capsys)
    assert code == 1 and "truncated.pt" in err and "truncated or corrupt" in err
    code, _, err = _run_cli([tmp_path / "missing.pt", tmp_path / "c"], capsys)
    assert code == 1 and "not found" in err
    assert not any((tmp_path / d).exists() for d in ("a", "b", "c"))


class _Exploit:
    def __reduce__(self):
        return (print, ("this ran during unpickling",))


def test_code_executing_pickle_is_refused(tmp_path, capsys):
    path = tmp_path / "evil.pt"
    with open(path, "wb") as f:
        pickle.dump({"model": {"conv2.weight": _Exploit()}}, f)
    code, out, err = _run_cli([path, tmp_path / "out"], capsys)
    assert code == 1 and "refusing to load" in err and "this ran" not in out
    # Saved by torch (a zip archive), the same object is named as what it is: a global that would be called.
    zipped = tmp_path / "evil_zip.pt"
    torch.save({"conv2.weight": _Exploit()}, zipped)
    code, out, err = _run_cli([zipped, tmp_path / "out"], capsys)
    assert code == 1 and "would execute code" in err and "GLOBAL print" in err and "this ran" not in out
    assert "Please use" not in err and "PyTorch 2.6" not in err


def test_wrong_variant_override_is_an_error(official_state):
    with pytest.raises(ValueError, match="holds a ZoeD_N head"):
        convert_state_dict(official_state, variant="nk")
    with pytest.raises(ConversionError):
        convert_state_dict({**official_state, "conv2.bias": np.zeros(7, np.float32)})


def test_load_applies_official_settings(official_state, tmp_path):
    src = _save_official(tmp_path, official_state)
    model = zoejax.load(src)
    assert model.input_size == (384, 512) and model.keep_aspect_ratio
    image = np.random.default_rng(1).integers(0, 256, (60, 80, 3), dtype=np.uint8)
    depth = model.predict(image)
    assert depth.shape == (60, 80) and depth.dtype == np.float32 and np.all(np.isfinite(depth))


@pytest.mark.parametrize("name,expected", [("ZoeD_N", 342_609_538), ("ZoeD_NK", 343_893_147)])
def test_load_release_shaped_file_param_count(name, expected, monkeypatch, tmp_path):
    """zoejax.load on a release-shaped official file (reading stubbed: a 1.4 GB file adds nothing here)."""
    path = tmp_path / f"{name}.pt"
    path.write_bytes(b"stub")
    monkeypatch.setattr("zoejax.conversion.readers.read_checkpoint", lambda p: (manifest_state_dict(name), None))
    model = zoejax.load(path)
    assert count_params(model.params) == expected
    assert model.provenance["format"] == "official"


def test_hf_export_loads_strictly_in_transformers(tmp_path):
    from transformers import ZoeDepthForDepthEstimation

    from zoejax.conversion.convert import export_checkpoint
    from zoejax.storage.converted import save_converted

    cfg = presets.zoed_nk("tiny")
    ref = build_reference(cfg, seed=9)
    _, converted = convert_state_dict(state_dict_numpy(ref))
    save_converted(tmp_path / "zoe", cfg, converted.params, converted.extras, {"source": "test"})
    export_checkpoint(tmp_path / "zoe", tmp_path / "hf", "hf")
    loaded, info = ZoeDepthForDepthEstimation.from_pretrained(tmp_path / "hf", output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]
    assert loaded.config.backbone_config.layer_norm_eps == 1e-6
    images = np.random.default_rng(2).random((1, 64, 96, 3), dtype=np.float32)
    np.testing.assert_array_equal(run_reference(loaded.eval(), images)["metric_depth"],
                                  run_reference(ref, images)["metric_depth"])
