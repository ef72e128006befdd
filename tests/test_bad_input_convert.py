"""zoejax-convert on checkpoints it used to crash on (issue 28 item 21): bfloat16 weights are converted, and a
non-string key, Swin-marked keys without the patch embedding, and a work directory whose every checkpoint is
damaged each give one line naming the file and what is wrong."""

import json

import numpy as np
import torch

from zoejax.cli import convert as convert_cli
from zoejax.conversion.convert import export_state_dict
from zoejax.conversion.readers import read_torch_checkpoint
from zoejax.models import presets
from zoejax.models.init import init_params
from zoejax.storage.layout import CONFIG_FILE
from zoejax.training import checkpointing


def _run(capsys, *args):
    code = convert_cli.main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _official_state():
    cfg = presets.zoed_n("tiny")
    return export_state_dict(cfg, init_params(cfg, 0), {}, "official")


def _save(path, state, dtype=None):
    tensors = {k: torch.from_numpy(np.array(v)) for k, v in state.items()}
    if dtype is not None:
        tensors = {k: v.to(dtype) if v.is_floating_point() else v for k, v in tensors.items()}
    torch.save({"model": tensors}, path)
    return path


def test_bfloat16_checkpoint_converts_exactly(tmp_path, capsys):
    state = _official_state()
    src = _save(tmp_path / "bf16.pt", state, torch.bfloat16)
    read = read_torch_checkpoint(src)
    key = "core.core.scratch.layer1_rn.weight"
    assert read[key].dtype == np.float32
    np.testing.assert_array_equal(read[key], torch.from_numpy(state[key]).bfloat16().float().numpy())
    code, out, err = _run(capsys, src, tmp_path / "zoe")
    assert code == 0, err
    assert "official layout, ZoeD_N" in out and (tmp_path / "zoe" / CONFIG_FILE).is_file()


def test_a_non_string_key_is_named(tmp_path, capsys):
    state = {k: torch.from_numpy(np.array(v)) for k, v in _official_state().items()}
    state[3] = torch.zeros(2)
    torch.save({"model": state}, tmp_path / "intkey.pt")
    code, _, err = _run(capsys, tmp_path / "intkey.pt", tmp_path / "zoe")
    assert code == 1
    assert err.strip() == (f"zoejax-convert: error: {tmp_path / 'intkey.pt'}: entry key 3 is a int, not a parameter "
                           "name; a state dict maps names (str) to tensors")
    assert not (tmp_path / "zoe").exists()


def test_swin_marker_without_the_patch_embedding_is_named(tmp_path, capsys):
    state = {"core.core.pretrained.model.patch_embed.norm.weight": np.ones(96, np.float32),
             "core.core.scratch.layer1_rn.weight": np.ones((4, 4, 3, 3), np.float32)}
    code, _, err = _run(capsys, _save(tmp_path / "swin.pt", state), tmp_path / "zoe")
    assert code == 1 and len(err.strip().splitlines()) == 1
    assert ("core.core.pretrained.model.patch_embed.norm.weight marks a Swin backbone, but "
            "core.core.pretrained.model.patch_embed.proj.weight (the patch embedding's (width, 3, 4, 4) kernel) is "
            "missing: not a complete Swin state dict") in err


def _workdir(path):
    cfg = presets.zoed_n("tiny")
    path.mkdir()
    (path / CONFIG_FILE).write_text(json.dumps(cfg.to_dict()))
    manager = checkpointing.make_manager(path, async_save=False)
    params = init_params(cfg, 0)
    for step in (10, 20):
        checkpointing.save(manager, step, {"params": params}, {"step": step})
    manager.close()
    return path


def test_a_workdir_whose_every_checkpoint_is_damaged_names_the_files(tmp_path, capsys):
    run = _workdir(tmp_path / "run")
    code, _, err = _run(capsys, "--to", "official", run, tmp_path / "good.pt")
    assert code == 0, err
    for step in (10, 20):  # cut short, as by a copy that stopped
        meta = run / "checkpoints" / str(step) / "state" / "_METADATA"
        meta.write_bytes(meta.read_bytes()[: meta.stat().st_size // 2])
    code, _, err = _run(capsys, "--to", "official", run, tmp_path / "back.pt")
    assert code == 1 and not (tmp_path / "back.pt").exists()
    line = err.strip().splitlines()[-1]  # after the warning that step 20 was skipped
    assert line.startswith(f"zoejax-convert: error: no checkpoint of {run} can be read: step 20 ({run}/checkpoints/"
                           "20/state/_METADATA is not valid JSON): JSONDecodeError: ")
    assert f"; step 10 ({run}/checkpoints/10/state/_METADATA is not valid JSON)" in line
    assert "restore them from a copy, or train again" in line
