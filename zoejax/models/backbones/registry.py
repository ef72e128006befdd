"""The one table of encoder families: a backbone ``kind`` -> its config class, encoder, the features it hands the
DPT decoder, its FLOP count, its weight tables and its presets.

Everything outside a family's own modules reaches the family through this table (``backbone_of(config)``):
nothing else branches on the type of a backbone config. ``docs/backbones.md`` says how to add a family.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from zoejax.models.backbones import beit, dinov2, swin_encoder

# A family's encoder is built as ``encoder(config, remat, dtype, param_dtype, ops=ops, name="model")`` and maps
# (B, H, W, 3) images in [-1, 1] to its four hooked taps; ``ops`` (``zoejax.ops.platform.OpForms``) is the form of
# the platform-dependent ops, which the encoder passes to each of them.
# ``reassemble(config, reassemble_features, taps, image_hw, dtype, param_dtype, ops)`` turns the taps into the four maps
# at H/4, H/8, H/16, H/32 the decoder's ``scratch`` reads; it runs inside ``MidasPretrained``, so the modules it
# creates are named there (``act_postprocess{j}``).
# ``flops(config, reassemble_features, batch, height, width)`` is the encoder's and reassemble's matmul/conv
# FLOPs of one forward, by component (see ``zoejax.models.flops``).


@dataclasses.dataclass(frozen=True)
class Backbone:
    """One encoder family.

    Attributes:
      config: its frozen config dataclass. Fields ``kind`` (this table's key) and ``hooks`` (four taps); methods
        ``validate(reassemble_features)`` (ValueError naming the field) and ``describe()`` (one phrase); property
        ``num_features`` (width of the encoder's last stage).
      encoder: its flax module class (see above).
      reassemble: the features it hands the decoder (see above).
      flops: its analytic FLOP count (see above).
      weights: the module of its weight tables in ``zoejax.conversion`` (official / MiDaS / Hugging Face layouts,
        detection, export defaults; the interface is in ``zoejax/conversion/backbone_weights.py``). Named here,
        never imported: models sit below conversion.
      presets: preset name -> (backbone config, ``DPTConfig``), full-size architectures and test fixtures.
      fixtures: the names in ``presets`` that are test fixtures (their ZoeDepth heads are shrunk too).
    """

    config: type
    encoder: type
    reassemble: Callable[..., list[Any]]
    flops: Callable[..., dict[str, int]]
    weights: str
    presets: Mapping[str, tuple[Any, Any]]
    fixtures: tuple[str, ...] = ()


BACKBONES: dict[str, Backbone] = {
    "beit": Backbone(beit.BeitConfig, beit.BeitEncoder, beit.reassemble, beit.encoder_flops,
                     "zoejax.conversion.beit_table", beit.PRESETS, beit.FIXTURES),
    "swin": Backbone(swin_encoder.SwinConfig, swin_encoder.SwinEncoder, swin_encoder.reassemble,
                     swin_encoder.encoder_flops, "zoejax.conversion.swin_table", swin_encoder.PRESETS,
                     swin_encoder.FIXTURES),
    "dinov2": Backbone(dinov2.DinoV2Config, dinov2.DinoV2Encoder, dinov2.reassemble, dinov2.encoder_flops,
                       "zoejax.conversion.dinov2_table", dinov2.PRESETS, dinov2.FIXTURES),
}

# Config files and checkpoints written before Swin existed carry no ``kind``: they are BEiT.
DEFAULT_KIND = "beit"


def backbone_of(config: Any) -> Backbone:
    """The family of a backbone config (its ``kind``); ValueError if the kind or the config's class is unknown."""
    kind = getattr(config, "kind", None)
    spec = BACKBONES.get(kind)
    if spec is None or type(config) is not spec.config:
        expected = ", ".join(f"{s.config.__name__} (kind {k!r})" for k, s in BACKBONES.items())
        raise ValueError(f"backbone must be one of {expected}, got {type(config).__name__} with kind {kind!r}")
    return spec


def config_class(kind: str) -> type:
    """The config class of ``model.backbone.kind``; ValueError listing the registered kinds."""
    if kind not in BACKBONES:
        raise ValueError(f"model.backbone.kind={kind!r} is not one of {sorted(BACKBONES)}")
    return BACKBONES[kind].config


def all_presets() -> dict[str, tuple[Any, Any]]:
    """Every family's presets in one dict (names are unique across families)."""
    out: dict[str, tuple[Any, Any]] = {}
    for spec in BACKBONES.values():
        clash = set(out) & set(spec.presets)
        if clash:
            raise ValueError(f"preset names {sorted(clash)} are registered by two backbone families")
        out.update(spec.presets)
    return out


def all_fixtures() -> tuple[str, ...]:
    """The test-fixture presets of every family."""
    return tuple(name for spec in BACKBONES.values() for name in spec.fixtures)
