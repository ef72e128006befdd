"""The DINOv2 encoder against transformers 5.24's ``Dinov2Model`` / ``Dinov2WithRegistersModel`` (random weights,
float32), its position-embedding rules against ``F.interpolate``, parameter counts, FLOPs and weight tables.

The parity configs keep the real patch size (14), trained grid (37x37) and interpolation and cut the width and
depth; inputs are the issue's non-square 518x686 and 364x490.
"""

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from fast_compile import fast_compiles
from flax.traverse_util import flatten_dict, unflatten_dict
from transformers import Dinov2Config, Dinov2Model, Dinov2WithRegistersConfig, Dinov2WithRegistersModel

from zoejax.conversion import dinov2_table
from zoejax.conversion.table import Table
from zoejax.models import flops
from zoejax.models.backbones.dinov2 import (
    PRESETS,
    DinoV2Config,
    DinoV2Encoder,
    encoder_flops,
    reassemble,
    resize_position_embedding,
)
from zoejax.ops.platform import ANALYSIS, GENERIC, forms_for

SIZES = [(518, 686), (364, 490)]
TOLERANCE = 1e-5  # max |ours - torch| / max |torch|, per tap


def _torch_model(cfg: DinoV2Config, seed: int = 0):
    """A transformers model of ``cfg``'s architecture, every parameter random (LayerScale and norms far from 1)."""
    kind, kwargs = dinov2_table.hf_config(cfg)
    model_cls, config_cls = ((Dinov2WithRegistersModel, Dinov2WithRegistersConfig) if cfg.num_register_tokens
                             else (Dinov2Model, Dinov2Config))
    assert config_cls.__name__ == kind
    torch.manual_seed(seed)
    model = model_cls(config_cls(**kwargs)).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lambda1" in name or ("norm" in name and name.endswith("weight")):
                p.copy_(1 + 0.5 * torch.randn_like(p))
            elif name.endswith("bias") or "token" in name:
                p.copy_(0.1 * torch.randn_like(p))
    return model


def _params(table: Table, state: dict[str, np.ndarray], root: str) -> dict:
    out = {e.flax_path[1:] if root else e.flax_path: e.transform.to_flax(*[state[k] for k in e.torch_keys])
           for e in table.entries}
    return unflatten_dict(out)


def _state(table: Table, params: dict, extras: dict[str, np.ndarray], root: str) -> dict[str, np.ndarray]:
    flat = flatten_dict(params)
    state = {}
    for e in table.entries:
        arrays = e.transform.to_torch(np.asarray(flat[e.flax_path[1:] if root else e.flax_path]))
        state.update(zip(e.torch_keys, arrays, strict=True))
    for key, name in table.extras.items():
        state[key] = extras[name]
    return state


def _hf_table(cfg: DinoV2Config, naming: str) -> Table:
    t = Table()
    dinov2_table.encoder_hf(t, cfg, "m", "", naming)
    return t


def _relative_error(ours, ref) -> float:
    ours, ref = np.asarray(ours, np.float64), np.asarray(ref, np.float64)
    assert ours.shape == ref.shape, (ours.shape, ref.shape)
    return float(np.max(np.abs(ours - ref)) / np.max(np.abs(ref)))


# ---- position embedding ----------------------------------------------------------------------------------------

def _torch_resize(patch: np.ndarray, **kwargs) -> np.ndarray:
    t = torch.from_numpy(patch).permute(2, 0, 1)[None]
    return F.interpolate(t, mode="bicubic", **kwargs)[0].permute(1, 2, 0).reshape(-1, patch.shape[-1]).numpy()


@pytest.mark.parametrize("grid", [(37, 49), (26, 35), (28, 37), (36, 37), (74, 80)])
@pytest.mark.parametrize("mode", ["original", "registers", "transformers"])
def test_position_embedding_resize_matches_torch(mode, grid, rng):
    table = rng.normal(size=(1, 37 * 37 + 1, 8)).astype(np.float32)
    patch = table[0, 1:].reshape(37, 37, 8)
    gh, gw = grid
    if mode == "original":  # the official interpolate_pos_encoding: the +0.1 offset is in the factor
        ref = _torch_resize(patch, scale_factor=((gh + 0.1) / 37, (gw + 0.1) / 37), antialias=False)
    elif mode == "registers":
        ref = _torch_resize(patch, size=grid, antialias=True)
    else:
        ref = _torch_resize(patch, size=grid, align_corners=False)
    ours = np.asarray(resize_position_embedding(jnp.asarray(table), 37, grid, mode))
    np.testing.assert_array_equal(ours[0, 0], table[0, 0])  # the class token's row is kept
    assert np.max(np.abs(ours[0, 1:] - ref)) < 5e-6


def test_position_embedding_modes_differ_and_trained_grid_is_kept(rng):
    table = jnp.asarray(rng.normal(size=(1, 37 * 37 + 1, 4)).astype(np.float32))
    for mode in ("original", "registers", "transformers"):
        np.testing.assert_array_equal(resize_position_embedding(table, 37, (37, 37), mode), table)
    a, b, c = (np.asarray(resize_position_embedding(table, 37, (37, 49), m))
               for m in ("original", "registers", "transformers"))
    # The original resamples even the unchanged 37-high axis (scale 37.1 / 37); the others keep it.
    assert min(np.abs(a - c).max(), np.abs(b - c).max(), np.abs(a - b).max()) > 1e-3


# ---- parity with transformers ------------------------------------------------------------------------------------

PARITY = {
    "mlp": DinoV2Config(embed_dim=64, depth=4, num_heads=2, hooks=(0, 1, 2, 3), pos_interpolation="transformers"),
    "swiglu_registers": DinoV2Config(embed_dim=64, depth=4, num_heads=2, hooks=(0, 1, 2, 3), ffn="swiglu",
                                     num_register_tokens=4, pos_interpolation="registers"),
}


@pytest.mark.parametrize("ops_name", ["cpu", "generic"])
@pytest.mark.parametrize("name", sorted(PARITY))
def test_matches_transformers(name, ops_name):
    cfg = PARITY[name]
    model = _torch_model(cfg)
    state = {k: v.numpy() for k, v in model.state_dict().items()}
    table = _hf_table(cfg, "module")
    assert {k for e in table.entries for k in e.torch_keys} | set(table.extras) == set(state)
    params = _params(table, state, "m")
    ops = forms_for("cpu") if ops_name == "cpu" else GENERIC
    forward = jax.jit(lambda p, x: DinoV2Encoder(cfg, ops=ops).apply({"params": p}, x))
    r = 1 + cfg.num_register_tokens
    sizes = SIZES if ops_name == "cpu" else SIZES[1:]
    for h, w in sizes:
        x = np.random.default_rng(h).normal(size=(1, h, w, 3)).astype(np.float32)
        with torch.no_grad():
            out = model(torch.from_numpy(x).permute(0, 3, 1, 2), output_hidden_states=True)
            refs = [model.layernorm(out.hidden_states[i + 1]).numpy() for i in cfg.hooks]
        taps = forward(params, jnp.asarray(x))
        assert len(taps) == 4
        for (tokens, cls), ref in zip(taps, refs, strict=True):
            assert tokens.shape == (1, h // 14, w // 14, cfg.embed_dim)
            assert _relative_error(np.asarray(tokens).reshape(1, -1, cfg.embed_dim), ref[:, r:]) < TOLERANCE
            assert _relative_error(cls, ref[:, 0]) < TOLERANCE
        final = out.last_hidden_state.numpy()  # the last block through the final norm = the last tap
        assert _relative_error(np.asarray(taps[-1][0]).reshape(1, -1, cfg.embed_dim), final[:, r:]) < TOLERANCE


def _original_interpolation(self, embeddings, height, width):
    """facebookresearch/dinov2's interpolate_pos_encoding as Depth Anything vendors it (the reference for the
    "original" rule), patched into transformers' embeddings."""
    n, positions = embeddings.shape[1] - 1, self.position_embeddings.shape[1] - 1
    if n == positions and height == width:
        return self.position_embeddings
    side, (h0, w0) = int(positions**0.5), (height // 14, width // 14)
    pos = self.position_embeddings.float()
    patch = F.interpolate(pos[:, 1:].reshape(1, side, side, -1).permute(0, 3, 1, 2), mode="bicubic",
                          scale_factor=((h0 + 0.1) / side, (w0 + 0.1) / side))
    assert tuple(patch.shape[-2:]) == (h0, w0)
    return torch.cat([pos[:, :1], patch.permute(0, 2, 3, 1).reshape(1, h0 * w0, -1)], dim=1)


def test_vits14_full_size_with_the_original_interpolation(monkeypatch):
    from transformers.models.dinov2 import modeling_dinov2

    monkeypatch.setattr(modeling_dinov2.Dinov2Embeddings, "interpolate_pos_encoding", _original_interpolation)
    cfg = PRESETS["dinov2_vits14"][0]
    assert cfg.pos_interpolation == "original"
    model = _torch_model(cfg)
    state = {k: v.numpy() for k, v in model.state_dict().items()}
    params = _params(_hf_table(cfg, "module"), state, "m")
    h, w = SIZES[1]
    x = np.random.default_rng(1).normal(size=(1, h, w, 3)).astype(np.float32)
    with torch.no_grad():
        out = model(torch.from_numpy(x).permute(0, 3, 1, 2), output_hidden_states=True)
        refs = [model.layernorm(out.hidden_states[i + 1]).numpy() for i in cfg.hooks]
    taps = jax.jit(lambda p, x: DinoV2Encoder(cfg, ops=forms_for("cpu")).apply({"params": p}, x))(params, x)
    for (tokens, cls), ref in zip(taps, refs, strict=True):
        assert _relative_error(np.asarray(tokens).reshape(1, -1, cfg.embed_dim), ref[:, 1:]) < TOLERANCE
        assert _relative_error(cls, ref[:, 0]) < TOLERANCE


# ---- sizes, FLOPs, bad input ---------------------------------------------------------------------------------

def _count_ours(cfg: DinoV2Config) -> int:
    shapes = jax.eval_shape(DinoV2Encoder(cfg).init, jax.random.key(0), jax.ShapeDtypeStruct((1, 14, 14, 3),
                                                                                             jnp.float32))
    return sum(int(np.prod(s.shape)) for s in jax.tree.leaves(shapes))


@pytest.mark.parametrize("name", [n for n in sorted(PRESETS) if "tiny" not in n])
def test_parameter_count_equals_transformers(name):
    cfg = PRESETS[name][0]
    kind, kwargs = dinov2_table.hf_config(cfg)
    config_cls, model_cls = ((Dinov2WithRegistersConfig, Dinov2WithRegistersModel) if cfg.num_register_tokens
                             else (Dinov2Config, Dinov2Model))
    with torch.device("meta"):  # nothing allocated
        model = model_cls(config_cls(**kwargs))
    counts = {n: p.numel() for n, p in model.named_parameters()}
    # transformers builds the unused mask_token (1 x D) too; zoejax keeps it as an extra, not a parameter.
    assert counts.pop("embeddings.mask_token") == cfg.embed_dim
    assert _count_ours(cfg) == sum(counts.values())


def test_vitl14_count_is_the_released_one():
    # Depth Anything's ViT-L/14 (shared/reference/depth-anything-v1-metric.md): 304,368,640 with the unused
    # mask_token (1 x 1024), which zoejax keeps as an extra.
    assert _count_ours(PRESETS["dinov2_vitl14"][0]) + 1024 == 304_368_640


class _EncoderAndReassemble(nn.Module):
    config: DinoV2Config
    reassemble_features: tuple[int, ...]

    @nn.compact
    def __call__(self, x):
        taps = DinoV2Encoder(self.config, ops=ANALYSIS, name="model")(x)
        return reassemble(self.config, self.reassemble_features, taps, x.shape[1:3], jnp.float32, jnp.float32,
                          ANALYSIS)


def test_flops_match_xla():
    cfg, dec = PRESETS["dinov2_vits14"]
    h, w = SIZES[1]
    model = _EncoderAndReassemble(cfg, dec.reassemble_features)
    images = jax.ShapeDtypeStruct((1, h, w, 3), jnp.float32)
    shapes = jax.eval_shape(model.init, jax.random.key(0), images)
    xla = flops.xla_flops(lambda p, x: model.apply(p, x), shapes, images)
    analytic = sum(encoder_flops(cfg, dec.reassemble_features, 1, h, w).values())
    # XLA also counts the norms, softmax, GELU and the position-embedding resize.
    assert 0.95 * xla <= analytic <= xla, (analytic, xla, analytic / xla)


def test_reassemble_shapes():
    cfg, dec = PRESETS["dinov2_tiny"]
    model = _EncoderAndReassemble(cfg, dec.reassemble_features)
    images = jax.ShapeDtypeStruct((2, 28 * 14, 37 * 14, 3), jnp.float32)
    maps = jax.eval_shape(lambda x: model.init_with_output(jax.random.key(0), x)[0], images)
    # 4x, 2x, 1x and ceil(1/2 x) the 28x37 token grid (Depth Anything's 392x518 maps)
    assert [m.shape for m in maps] == [(2, 112, 148, 8), (2, 56, 74, 16), (2, 28, 37, 32), (2, 14, 19, 32)]


def test_bad_input_is_named():
    cfg = PRESETS["dinov2_tiny"][0]
    with pytest.raises(ValueError, match="multiples of the patch size 14, got 64x70"):
        jax.eval_shape(DinoV2Encoder(cfg).init, jax.random.key(0), jax.ShapeDtypeStruct((1, 64, 70, 3),
                                                                                        jnp.float32))
    for field, value in (("hooks", (0, 1, 2, 9)), ("ffn", "geglu"), ("pos_interpolation", "bilinear"),
                         ("num_heads", 5)):
        with pytest.raises(ValueError, match=field if field != "num_heads" else "divisible"):
            dataclasses.replace(cfg, **{field: value}).validate((8, 16, 32, 32))


# ---- weight tables -----------------------------------------------------------------------------------------

TINY = {"dinov2_tiny": PRESETS["dinov2_tiny"][0],
        "registers_swiglu": dataclasses.replace(PRESETS["dinov2_tiny"][0], ffn="swiglu", num_register_tokens=4,
                                                pos_interpolation="registers")}


@pytest.mark.parametrize("name", sorted(TINY))
def test_round_trips_are_lossless(name, rng):
    cfg = TINY[name]
    shapes = flatten_dict(nn.unbox(jax.eval_shape(DinoV2Encoder(cfg).init, jax.random.key(0),
                                                  jax.ShapeDtypeStruct((1, 14, 14, 3), jnp.float32))["params"]))
    params = unflatten_dict({k: rng.normal(size=s.shape).astype(np.float32) for k, s in shapes.items()})
    extras = {"encoder.mask_token": rng.normal(size=(1, cfg.embed_dim)).astype(np.float32)}
    official = Table()
    dinov2_table.encoder_official(official, cfg, "m", "pretrained")
    for table in (official, _hf_table(cfg, "file"), _hf_table(cfg, "module")):
        assert {e.flax_path[1:] for e in table.entries} == set(shapes)
        state = _state(table, params, extras, "m")
        back = _params(table, state, "m")
        jax.tree.map(np.testing.assert_array_equal, back, params)
        again = _state(table, back, extras, "m")
        assert again.keys() == state.keys()
        for k in state:
            np.testing.assert_array_equal(again[k], state[k])
    # The official keys are Depth Anything's, the extra its unused mask_token.
    state = _state(official, params, extras, "m")
    assert "pretrained.blocks.3.ls2.gamma" in state and "pretrained.mask_token" in state
    assert ("pretrained.register_tokens" in state) == bool(cfg.num_register_tokens)
    if name in PRESETS:
        assert dinov2_table.official_preset(state, "") == name
    else:
        with pytest.raises(ValueError, match="unsupported DINOv2 backbone: width 32, 4 blocks, 4 registers"):
            dinov2_table.official_preset(state, "")


@pytest.mark.parametrize("name", sorted(PARITY))
def test_file_naming_is_what_save_pretrained_writes(name, tmp_path):
    from safetensors.numpy import load_file

    cfg = PARITY[name]
    model = _torch_model(cfg, seed=1)
    model.save_pretrained(tmp_path)
    stored = load_file(str(tmp_path / "model.safetensors"))
    table = _hf_table(cfg, "file")
    assert {k for e in table.entries for k in e.torch_keys} | set(table.extras) == set(stored)
    module = {k: v.numpy() for k, v in model.state_dict().items()}
    from_file = _params(table, stored, "m")
    from_module = _params(_hf_table(cfg, "module"), module, "m")
    jax.tree.map(np.testing.assert_array_equal, from_file, from_module)


def test_remat_and_bfloat16_keep_the_values(rng):
    from zoejax.models.backbones.dinov2 import last_four
    from zoejax.models.layers import RematPolicy

    cfg = TINY["registers_swiglu"]
    assert last_four(PRESETS["dinov2_vitl14"][0]).hooks == (20, 21, 22, 23)  # Depth Anything V1's taps
    x = jnp.asarray(rng.normal(size=(1, 56, 84, 3)).astype(np.float32))
    params = jax.eval_shape(DinoV2Encoder(cfg).init, jax.random.key(0), x)["params"]
    params = jax.tree.map(lambda s: jnp.asarray(rng.normal(size=s.shape).astype(np.float32) * 0.2),
                          nn.unbox(params))

    def loss(p, remat, dtype=jnp.float32):
        taps = DinoV2Encoder(cfg, remat, dtype, ops=forms_for("cpu")).apply({"params": p}, x)
        return sum(jnp.sum(jnp.sin(t.astype(jnp.float32))) + jnp.sum(c.astype(jnp.float32)) for t, c in taps)

    with fast_compiles():  # both sides compile alike; the values are checked against each other
        value, grads = jax.jit(jax.value_and_grad(loss), static_argnums=1)(params, RematPolicy.NONE)
        v, g = jax.jit(jax.value_and_grad(loss), static_argnums=1)(params, RematPolicy.FULL)
        half = jax.jit(loss, static_argnums=(1, 2))(params, RematPolicy.NONE, jnp.bfloat16)
    np.testing.assert_allclose(v, value, rtol=1e-6)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6), g, grads)
    assert np.isfinite(half) and abs(float(half) - float(value)) < 0.05 * abs(float(value)) + 1.0


def test_a_transformers_dinov2_backbone_is_not_taken_for_beit():
    from zoejax.conversion import beit_table

    t = Table()
    dinov2_table.encoder_hf(t, PRESETS["dinov2_tiny"][0], "m", "backbone", "file")
    keys = {k for e in t.entries for k in e.torch_keys} | set(t.extras)
    assert "backbone.embeddings.cls_token" in keys
    assert beit_table.hf_naming(keys) is None and dinov2_table.hf_naming(keys) is None
