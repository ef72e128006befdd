"""How conversion reaches a backbone family's weight tables: the module that the backbone registry
(``zoejax/models/backbones/registry.py``) names for the family's kind.

The registry names the module instead of importing it because models sit below conversion. Every such module
satisfies ``BackboneWeights``; the generic tables (``official_table.py``, ``hf_table.py``), detection
(``detect.py``) and export (``convert.py``) call these functions and never branch on the family.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Set
from types import ModuleType
from typing import Any, Protocol

import numpy as np

from zoejax.conversion.table import Table
from zoejax.models.backbones.registry import BACKBONES, backbone_of


class BackboneWeights(Protocol):
    """What a family's weight-table module defines (module-level functions and one constant).

    ``config`` is always a whole ``ZoeDepthConfig`` on this family's backbone; ``prefix`` is the torch key prefix
    of the MiDaS model: "core.core." in ZoeDepth files, "" in MiDaS v3.1 files.
    """

    MARKER: str  # what identifies the family's keys, for error messages ("BEiT cls_token")

    def official_entries(self, t: Table, config: Any, prefix: str) -> None:
        """Add the encoder's (and its reassemble's) entries, extras and buffers of the official/MiDaS layouts."""

    def hf_entries(self, t: Table, config: Any, naming: str) -> None:
        """Add those of transformers' ``ZoeDepthForDepthEstimation`` (naming "module" or "file"); ValueError when
        the family has no Hugging Face layout."""

    def hf_backbone_config(self, config: Any) -> tuple[str, dict[str, Any]]:
        """(transformers config class name, its keyword arguments) of the backbone; ValueError as above."""

    def default_extras(self, config: Any, seed: int) -> dict[str, np.ndarray]:
        """Encoder extras for export of a model that never had them (they override ``table.default_extras``)."""

    def holds(self, keys: Set[str], prefix: str) -> bool:
        """Whether the official/MiDaS keys under ``prefix`` are this family's encoder."""

    def hf_naming(self, keys: Set[str]) -> str | None:
        """"module" or "file" when the keys are a transformers ZoeDepth on this family, else None."""

    def official_preset(self, state: Mapping[str, np.ndarray], prefix: str) -> str:
        """The family's preset whose encoder is under ``prefix``; ValueError listing the supported sizes."""

    def hf_preset(self, state: Mapping[str, np.ndarray], naming: str) -> str:
        """The same for a transformers state dict."""


def weights_of(config: Any) -> BackboneWeights:
    """The weight tables of a ``ZoeDepthConfig``'s backbone family."""
    return _module(backbone_of(config.backbone).weights)


def all_weights() -> list[BackboneWeights]:
    """Every family's weight tables, in registry order (the order detection tries them)."""
    return [_module(spec.weights) for spec in BACKBONES.values()]


def _module(name: str) -> ModuleType:
    return importlib.import_module(name)
