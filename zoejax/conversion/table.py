"""Parameter tables: one explicit list of entries (Flax path <- torch key(s) + layout transform) per checkpoint
layout, generated per model config by walking the architecture section by section (``hf_table.py``,
``official_table.py``). The same table serves import and export.

Tensors a checkpoint holds that the forward pass never uses are not dropped silently:
  * ``extras``: learned tensors kept beside the params under a layout-independent name (the BEiT classifier
    head and ``fc_norm``, refinenet4's unused first residual unit), so export is lossless;
  * ``buffers``: constants the official code computes (relative-position index, log-binomial ``k_idx`` and
    ``K_minus_1``): checked against the recomputed value on import, regenerated on export.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from zoejax.conversion.transforms import CONV, IDENTITY, LINEAR, Transform

Path = tuple[str, ...]

# Why each extra exists, for reports.
EXTRA_REASONS = {
    "encoder.fc_norm": "timm BEiT's classification pooling norm: not used by MiDaS/ZoeDepth",
    "encoder.head": "timm BEiT's / Swin's ImageNet classifier: not used by MiDaS/ZoeDepth",
    "encoder.norm": "timm Swin's final norm before pooling: not used by MiDaS/ZoeDepth",
    "encoder.mask_token": "DINOv2's masked-image-modelling token: not used by Depth Anything",
    "refinenet4.resConfUnit1": "refinenet4's first residual unit: built by MiDaS, never called",
}


def extra_group(name: str) -> str:
    """The ``EXTRA_REASONS`` key an extra tensor belongs to (e.g. 'refinenet4.resConfUnit1.conv1.weight')."""
    for group in EXTRA_REASONS:
        if name.startswith(group + "."):
            return group
    return name


@dataclasses.dataclass(frozen=True)
class Entry:
    """One Flax array and the torch tensor(s) it is made from."""

    flax_path: Path
    torch_keys: tuple[str, ...]
    transform: Transform


@dataclasses.dataclass
class Table:
    """Entries, extras (torch key -> extra name) and buffers (torch key -> the value the official code has)."""

    entries: list[Entry] = dataclasses.field(default_factory=list)
    extras: dict[str, str] = dataclasses.field(default_factory=dict)
    buffers: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)

    def add(self, flax_path: str, torch_keys: str | tuple[str, ...], transform: Transform) -> None:
        keys = (torch_keys,) if isinstance(torch_keys, str) else tuple(torch_keys)
        self.entries.append(Entry(tuple(flax_path.split("/")), keys, transform))

    def dense(self, flax: str, torch: str) -> None:
        self.add(f"{flax}/kernel", f"{torch}.weight", LINEAR)
        self.add(f"{flax}/bias", f"{torch}.bias", IDENTITY)

    def conv(self, flax: str, torch: str, bias: bool = True) -> None:
        self.add(f"{flax}/kernel", f"{torch}.weight", CONV)
        if bias:
            self.add(f"{flax}/bias", f"{torch}.bias", IDENTITY)

    def norm(self, flax: str, torch: str) -> None:
        self.add(f"{flax}/scale", f"{torch}.weight", IDENTITY)
        self.add(f"{flax}/bias", f"{torch}.bias", IDENTITY)

    def extra(self, name: str, torch: str, params: tuple[str, ...] = ("weight", "bias")) -> None:
        for p in params:
            self.extras[f"{torch}.{p}"] = f"{name}.{p}"

    def unused_residual_unit(self, torch: str, conv_names: tuple[str, str]) -> None:
        """refinenet4's first residual unit (two 3x3 convs) under the torch prefix ``torch``."""
        for i, conv in enumerate(conv_names, start=1):
            self.extra(f"refinenet4.resConfUnit1.conv{i}", f"{torch}.{conv}")


def default_extras(features: int, embed_dim: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Extras for a model that never had them, initialised as the official code would (float32, seeded).

    fc_norm: ones / zeros (LayerNorm); head: truncated normal(0.02) scaled by timm's head_init_scale 1e-3,
    zero bias; the unused residual unit: PyTorch's default Conv2d init, U(+-1/sqrt(fan_in)).
    """
    rng = np.random.default_rng(seed)
    bound = 1.0 / np.sqrt(features * 9)
    out = {
        "encoder.fc_norm.weight": np.ones(embed_dim, np.float32),
        "encoder.fc_norm.bias": np.zeros(embed_dim, np.float32),
        "encoder.head.weight": (np.clip(rng.normal(0, 0.02, (1000, embed_dim)), -0.04, 0.04) * 1e-3).astype(
            np.float32),
        "encoder.head.bias": np.zeros(1000, np.float32),
    }
    for i in (1, 2):
        out[f"refinenet4.resConfUnit1.conv{i}.weight"] = rng.uniform(
            -bound, bound, (features, features, 3, 3)).astype(np.float32)
        out[f"refinenet4.resConfUnit1.conv{i}.bias"] = rng.uniform(-bound, bound, features).astype(np.float32)
    return out
