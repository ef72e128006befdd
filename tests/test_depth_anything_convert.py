"""zoejax-convert on Depth Anything checkpoints: an official ``.pth`` (plain state dict) and a transformers
``DepthAnythingForDepthEstimation`` folder in, a zoejax folder out, and export back to both layouts, bit-exact."""

import jax
import numpy as np
import pytest
import torch
import transformers
from flax.traverse_util import flatten_dict

from zoejax.cli.convert import main
from zoejax.conversion.apply import state_dict_to_params
from zoejax.conversion.depth_anything_convert import export_state_dict, param_shapes
from zoejax.conversion.depth_anything_table import config_from_hf, detect, hf_table
from zoejax.models.depth_anything_config import PRESETS
from zoejax.storage.converted import read_converted


def _random_params(cfg, seed):
    rng = np.random.default_rng(seed)
    return jax.tree_util.tree_map(lambda s: rng.standard_normal(s.shape).astype(np.float32), param_shapes(cfg))


def again_config(model):
    return config_from_hf({k: v.numpy() for k, v in model.state_dict().items()}, model.config.to_dict(), "module")


def _same(a, b):
    fa, fb = flatten_dict(a), flatten_dict(b)
    return fa.keys() == fb.keys() and all(np.array_equal(np.asarray(fa[k]), np.asarray(fb[k])) for k in fa)


def test_official_pth_and_hf_folder_round_trip(tmp_path, capsys):
    cfg = PRESETS["da_tiny_metric"]
    state = export_state_dict(cfg, _random_params(cfg, 0), {}, "official")
    state["pretrained.mask_token"] = np.random.default_rng(1).standard_normal((1, 32)).astype(np.float32)
    pth = tmp_path / "finetuned.pth"
    torch.save({k: torch.from_numpy(v) for k, v in state.items()}, pth)

    assert main([str(pth), str(tmp_path / "nopreset")]) == 1  # the weights cannot say which model
    assert "--preset" in capsys.readouterr().err
    assert main([str(pth), str(tmp_path / "da"), "--preset", "da_tiny_metric"]) == 0
    printed = capsys.readouterr().out
    assert "Depth Anything official .pth, da_tiny_metric: metric depth <= 20 m" in printed
    stored = read_converted(tmp_path / "da")
    assert stored.config == cfg and "encoder.mask_token" in stored.extras

    assert main(["--to", "official", str(tmp_path / "da"), str(tmp_path / "back.pth")]) == 0
    back = torch.load(tmp_path / "back.pth", weights_only=True)
    assert back.keys() == state.keys() and all(np.array_equal(back[k].numpy(), state[k]) for k in state)

    assert main(["--to", "hf", str(tmp_path / "da"), str(tmp_path / "hf")]) == 0
    model = transformers.DepthAnythingForDepthEstimation.from_pretrained(tmp_path / "hf")
    assert model.config.depth_estimation_type == "metric" and model.config.max_depth == 20
    loaded = {k: v.numpy() for k, v in model.state_dict().items()}  # every tensor arrived (none left at init)
    from_transformers = state_dict_to_params(loaded, hf_table(again_config(model), "module"), param_shapes(cfg))
    assert _same(from_transformers.params, stored.params)
    assert main([str(tmp_path / "hf"), str(tmp_path / "da_hf")]) == 0
    assert "transformers folder (file keys)" in capsys.readouterr().out
    again = read_converted(tmp_path / "da_hf")
    assert _same(again.params, stored.params)
    assert again.config.backbone.pos_interpolation == "transformers"  # a transformers model resizes its own way
    assert again.config.head == cfg.head and again.config.backbone.hooks == cfg.backbone.hooks



@pytest.mark.parametrize("release", ["depth_anything_v2_vits.pth", "depth_anything_vits14.pth"])
def test_relative_pth_round_trips_through_a_folder_and_transformers(release, tmp_path, capsys):
    """A relative .pth (V2's or V1's file name; the tiny encoder, so the preset is named) -> folder -> .pth: the
    same keys and every tensor equal; -> transformers folder: a relative model whose tensors are the folder's."""
    cfg = PRESETS["da_tiny_relative"]
    state = export_state_dict(cfg, _random_params(cfg, 4), {}, "official")
    state["pretrained.mask_token"] = np.random.default_rng(5).standard_normal((1, 32)).astype(np.float32)
    pth = tmp_path / release
    torch.save({k: torch.from_numpy(v) for k, v in state.items()}, pth)
    assert main([str(pth), str(tmp_path / "da"), "--preset", "da_tiny_relative"]) == 0
    assert "Depth Anything official .pth, da_tiny_relative: relative inverse depth" in capsys.readouterr().out
    stored = read_converted(tmp_path / "da")
    assert stored.config == cfg and stored.config.head.depth_type == "relative"
    assert main(["--to", "official", str(tmp_path / "da"), str(tmp_path / "back.pth")]) == 0
    back = torch.load(tmp_path / "back.pth", weights_only=True)
    assert back.keys() == state.keys() and all(np.array_equal(back[k].numpy(), state[k]) for k in state)
    assert main(["--to", "hf", str(tmp_path / "da"), str(tmp_path / "hf")]) == 0
    model = transformers.DepthAnythingForDepthEstimation.from_pretrained(tmp_path / "hf")
    assert model.config.depth_estimation_type == "relative"
    loaded = {k: v.numpy() for k, v in model.state_dict().items()}
    assert _same(state_dict_to_params(loaded, hf_table(again_config(model), "module"), param_shapes(cfg)).params,
                 stored.params)

def test_zoedepth_options_are_refused_for_depth_anything(tmp_path, capsys):
    cfg = PRESETS["da_tiny_relative"]
    state = export_state_dict(cfg, _random_params(cfg, 2), {}, "official")
    pth = tmp_path / "x.pth"
    torch.save({k: torch.from_numpy(v) for k, v in state.items()}, pth)
    assert main([str(pth), str(tmp_path / "out"), "--variant", "n"]) == 1
    assert "--preset" in capsys.readouterr().err
    with pytest.raises(ValueError, match="needs its config.json"):  # a transformers state dict alone
        detect(export_state_dict(cfg, _random_params(cfg, 3), {}, "hf"), None)
    with pytest.raises(ValueError, match="name the preset"):  # zoejax.load takes it, but needs to know which
        import zoejax

        zoejax.load(pth)
