"""Every registered backbone preset through the backbone interface, as timm's tests/test_models.py runs every model.

Full-size presets are built abstractly (``jax.eval_shape``, nothing allocated): parameter counts, the official /
MiDaS / Hugging Face tables covering exactly the parameters, and detection of each preset from its exported key
set. Forwards and value round trips run on reduced-size copies (the family's structure -- patch size, windows,
position-bias tables, version -- kept, widths and depths cut; ``REDUCE``), so the whole file stays fast.
"""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from fast_compile import fast_compiles
from flax.traverse_util import flatten_dict
from numerics import random_params

from zoejax.conversion.apply import state_dict_to_params
from zoejax.conversion.convert import export_state_dict
from zoejax.conversion.detect import detect
from zoejax.conversion.hf_table import hf_table
from zoejax.conversion.official_table import midas_table, official_table
from zoejax.models import flops, presets
from zoejax.models.backbones.registry import BACKBONES, all_fixtures, all_presets, backbone_of
from zoejax.models.dpt import DPTConfig
from zoejax.models.init import count_params, param_shapes
from zoejax.models.zoedepth import ZoeDepth

PRESETS = sorted(all_presets())

# ZoeD_N's used parameters on the released architectures: the MiDaS v3.1 / ZoeDepth release files' tensor counts
# minus those the forward never uses (docs/backbones.md; derived in tests/test_model.py and tests/test_swin.py).
RELEASED_ZOED_N_PARAMS = {
    "beit_l384": 342_609_538, "beit_b384": 110_059_138, "swin2_l384": 211_169_782, "swin2_b384": 100_649_850,
    "swin2_t256": 40_228_780, "swin_l384": 211_165_366,
}


def _reduce_beit(enc, dec):
    return (dataclasses.replace(enc, embed_dim=32, num_heads=2, depth=4, hooks=(0, 1, 2, 3)),
            DPTConfig(reassemble_features=(8, 16, 32, 32), features=16, num_relative_features=8))


def _reduce_swin(enc, dec):
    enc = dataclasses.replace(enc, embed_dim=16, depths=(2, 2, 2, 2), num_heads=(2, 2, 4, 4), hooks=(1, 1, 1, 1),
                              cpb_hidden=32)
    return enc, DPTConfig(reassemble_features=enc.stage_dims, features=16, num_relative_features=8)


def _reduce_dinov2(enc, dec):
    # Patch 16 on a 3x3 trained grid, so that the MiDaS decoder's H/4 .. H/32 maps of INPUT line up and every
    # tap is resized by the preset's interpolation rule; registers and SwiGLU kept.
    return (dataclasses.replace(enc, embed_dim=32, num_heads=2, depth=4, hooks=(0, 1, 2, 3), patch_size=16,
                                pretrain_grid=3),
            DPTConfig(reassemble_features=(8, 16, 32, 32), features=16, num_relative_features=8))


# kind -> (backbone config, decoder) -> a reduced copy. A new family adds its line here.
REDUCE = {"beit": _reduce_beit, "swin": _reduce_swin, "dinov2": _reduce_dinov2}
INPUT = (1, 64, 96)  # batch, height, width (non-square)


def _reduced(name: str):
    enc, dec = all_presets()[name]
    enc, dec = REDUCE[enc.kind](enc, dec)
    return dataclasses.replace(presets.zoed_n("tiny"), backbone=enc, decoder=dec)


def _abstract_state(table, shapes) -> dict[str, np.ndarray]:
    """The torch-layout state dict ``table`` exports, as zero-stride arrays (shapes right, nothing allocated)."""
    flat = flatten_dict(shapes)
    state = {}
    for entry in table.entries:
        zeros = np.broadcast_to(np.zeros((), np.float32), flat[entry.flax_path].shape)
        for key, arr in zip(entry.torch_keys, entry.transform.to_torch(zeros), strict=True):
            state[key] = np.broadcast_to(np.zeros((), np.float32), arr.shape)
    return {**state, **table.buffers}


def _hf_table_or_none(cfg, naming):
    try:
        return hf_table(cfg, naming)
    except ValueError as e:  # a family without a Hugging Face layout says so
        assert "Hugging Face" in str(e)
        return None


def test_registry_is_complete():
    assert set(REDUCE) == set(BACKBONES)
    assert set(RELEASED_ZOED_N_PARAMS) <= set(PRESETS) and set(all_fixtures()) <= set(PRESETS)
    for kind, spec in BACKBONES.items():
        assert spec.config().kind == kind
        for enc, dec in spec.presets.values():
            assert type(enc) is spec.config and backbone_of(enc) is spec
            assert isinstance(dec, DPTConfig)


@pytest.mark.parametrize("name", PRESETS)
def test_full_size_preset_builds_and_its_tables_cover_it(name):
    cfg = presets.zoed_n(name)
    shapes = param_shapes(cfg)
    used = count_params(shapes)
    if name in RELEASED_ZOED_N_PARAMS:
        assert used == RELEASED_ZOED_N_PARAMS[name]
    want = set(flatten_dict(shapes))
    for table in (official_table(cfg), _hf_table_or_none(cfg, "file"), _hf_table_or_none(cfg, "module")):
        if table is None:
            continue
        paths = [e.flax_path for e in table.entries]
        assert len(paths) == len(set(paths)) and set(paths) == want
        state = _abstract_state(table, shapes)
        assert sum(v.size for k, v in state.items() if k not in table.buffers) == used
    core = midas_table(cfg)
    assert {e.flax_path for e in core.entries} == {p for p in want if p[0] == "core"}
    assert flops.forward_flops(cfg, 1, 384, 512) > 0


@pytest.mark.parametrize("name", PRESETS)
def test_full_size_preset_is_detected_from_its_keys(name):
    cfg = presets.zoed_n(name)
    shapes = param_shapes(cfg)
    layouts = [("official", "", official_table(cfg)), ("midas", "", midas_table(cfg))]
    layouts += [("hf", n, t) for n in ("file", "module") if (t := _hf_table_or_none(cfg, n)) is not None]
    for fmt, naming, table in layouts:
        found = detect(_abstract_state(table, shapes))
        assert (found.format, found.naming, found.backbone) == (fmt, naming, name)
        assert found.config == cfg


@functools.cache
def _reduced_forward(cfg):
    """Initialised params and the forward's outputs of a reduced config. Presets of one family that differ only
    in size reduce to the same config (BEiT-L/B, small and tiny; DINOv2 S/B/L and its fixture): compiled once."""
    b, h, w = INPUT
    images = jnp.asarray(np.random.default_rng(0).uniform(0, 1, (b, h, w, 3)), jnp.float32)
    with fast_compiles():
        params = random_params(cfg)
        out = jax.jit(lambda p, x: ZoeDepth(cfg).apply({"params": p}, x, return_intermediates=True))(params, images)
    return params, out


@pytest.mark.parametrize("name", PRESETS)
def test_reduced_copy_forward_and_round_trip(name):
    cfg = _reduced(name)
    b, h, w = INPUT
    params, out = _reduced_forward(cfg)
    assert out["metric_depth"].shape == out["rel_depth"].shape == (b, h, w)
    assert bool(jnp.all(jnp.isfinite(out["metric_depth"])))
    # The features the backbone hands the decoder: H/4 .. H/32 at the decoder's reassemble widths.
    assert [m.shape for m in out["reassembled"]] == [
        (b, h // s, w // s, f) for s, f in zip((4, 8, 16, 32), cfg.decoder.reassemble_features, strict=True)]
    assert len(out["encoder_taps"]) == 4

    host = jax.device_get(params)
    for to, table in (("official", official_table(cfg)), ("hf", _hf_table_or_none(cfg, "file"))):
        if table is None:
            continue
        state = export_state_dict(cfg, host, {}, to)
        back = state_dict_to_params(state, table, param_shapes(cfg)).params
        jax.tree.map(np.testing.assert_array_equal, back, host)
