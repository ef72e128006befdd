"""Which layout and which model a state dict holds, from its keys and shapes (overridable by the caller)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np

from zoejax.conversion.backbone_weights import BackboneWeights, all_weights
from zoejax.conversion.da1_metric_table import da1_metric_config, holds_da1_metric
from zoejax.models import presets
from zoejax.models.config import ZoeDepthConfig

FORMATS = ("official", "midas", "hf")
VARIANTS = ("n", "k", "nk")


@dataclasses.dataclass(frozen=True)
class Detected:
    """format: "official" | "midas" | "hf"; naming: HF "file" or "module" keys; config: the model to build;
    preset: the Depth Anything V1 metric preset ("da1_metric_n" ...) when the core is Depth Anything's, else ""."""

    format: str
    variant: str
    backbone: str
    config: ZoeDepthConfig
    naming: str = ""
    preset: str = ""

    def describe(self) -> str:
        """One phrase for ``zoejax-convert``, e.g. 'official layout, ZoeD_N, beit_l384' or 'official layout,
        Depth Anything V1 metric da1_metric_n (ZoeD_N head, nyu <= 10 m), dinov2_vitl14'."""
        head = f"ZoeD_{self.variant.upper()}"
        if self.preset:
            bins = ", ".join(f"{b.name} <= {b.max_depth:g} m" for b in self.config.bins)
            kind = self.config.head.bin_centers_type
            head = f"Depth Anything V1 metric {self.preset} ({head} head, {kind} bins, {bins})"
        return f"{self.format} layout, {head}, {self.backbone}"


def detect_format(state: Mapping[str, np.ndarray]) -> tuple[str, str]:
    """("official" | "midas" | "hf", HF naming or ""), or ValueError naming what was found instead."""
    fmt, naming, _ = _detect_layout(state)
    return fmt, naming


def _detect_layout(state: Mapping[str, np.ndarray]) -> tuple[str, str, BackboneWeights]:
    """(format, HF naming or "", the weight tables of the backbone family whose keys these are)."""
    keys = set(state)
    families = all_weights()
    for weights in families:
        naming = weights.hf_naming(keys)
        if naming:
            return "hf", naming, weights
    for weights in families:
        if weights.holds(keys, "core.core."):
            return "official", "", weights  # a Swin one was exported by zoejax (none were released)
    for weights in families:
        if weights.holds(keys, "") and any(k.startswith("scratch.") for k in keys):
            return "midas", "", weights
    sample = sorted(keys)[:5]
    markers = " or ".join(w.MARKER for w in families)
    raise ValueError(f"not a ZoeDepth, MiDaS v3.1 or transformers ZoeDepth state dict: no {markers} under any "
                     f"known prefix ({len(keys)} keys, e.g. {sample})")


def detect(state: Mapping[str, np.ndarray], hf_config: dict[str, Any] | None = None, *,
           format: str | None = None, variant: str | None = None, max_depth: float | None = None,
           source: str = "") -> Detected:
    """Detect layout, variant (N, K, NK) and backbone; ``format`` / ``variant`` override the guesses.

    ZoeD_K's ``max_depth`` defaults to the released model's 10 m (HF files: their config's value).
    MiDaS files carry no head: the variant defaults to N and the head is initialised fresh.
    A Depth Anything V1 metric file (``da1_metric_table``) is told indoor / outdoor by ``variant`` or by the file
    name in ``source``.
    """
    fmt, naming, weights = _detect_layout(state)
    if format is not None:
        if format not in FORMATS:
            raise ValueError(f"format must be one of {FORMATS}, got {format!r}")
        if format != fmt:
            raise ValueError(f"--format {format} given, but the keys are those of a {fmt} checkpoint")
    if fmt == "hf":
        backbone = weights.hf_preset(state, naming)
        nk_key, k_key = "metric_head.seed_bin_regressors.", "metric_head.attractors.3.conv2.weight"
    else:
        backbone = weights.official_preset(state, "core.core." if fmt == "official" else "")
        nk_key, k_key = "seed_bin_regressors.", "attractors.3._net.2.weight"
    if fmt == "midas":
        guessed = "n"
    elif any(k.startswith(nk_key) for k in state):
        guessed = "nk"
    else:
        # Normed (ZoeD_K) attractors emit two channels per attractor; the last level has one attractor.
        guessed = "k" if k_key in state and np.asarray(state[k_key]).shape[0] == 2 else "n"
    if variant is not None and variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    if fmt == "official" and holds_da1_metric(set(state)):
        chosen, config = da1_metric_config(backbone, guessed, variant, source, max_depth)
        return Detected(fmt, chosen, backbone, config, naming, f"da1_metric_{chosen}")
    chosen = variant or guessed
    if fmt != "midas" and variant is not None and variant != guessed:
        raise ValueError(f"--variant {variant} given, but the checkpoint holds a ZoeD_{guessed.upper()} head")
    if chosen == "k":
        if max_depth is None and hf_config and hf_config.get("bin_configurations"):
            max_depth = float(hf_config["bin_configurations"][0]["max_depth"])
        config = presets.zoed_k(backbone, 10.0 if max_depth is None else max_depth)
    else:
        config = presets.VARIANTS[f"zoed_{chosen}"](backbone)
    return Detected(fmt, chosen, backbone, config, naming)
