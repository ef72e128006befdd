"""Which layout and which model a state dict holds, from its keys and shapes (overridable by the caller)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np

from zoejax.models import presets
from zoejax.models.config import SwinConfig, ZoeDepthConfig

FORMATS = ("official", "midas", "hf")
VARIANTS = ("n", "k", "nk")
# (embed_dim, depth) -> backbone preset
# (width, blocks) -> BEiT preset, for every preset (the demo's "small" too, so an exported demo model imports).
_BACKBONES = {(enc.embed_dim, enc.depth): name for name, (enc, _) in presets.BACKBONES.items()
              if not isinstance(enc, SwinConfig)}
_SWIN_MARKER = "pretrained.model.patch_embed.norm.weight"  # BEiT's patch embedding has no norm


@dataclasses.dataclass(frozen=True)
class Detected:
    """format: "official" | "midas" | "hf"; naming: HF "file" or "module" keys; config: the model to build."""

    format: str
    variant: str
    backbone: str
    config: ZoeDepthConfig
    naming: str = ""


def detect_format(state: Mapping[str, np.ndarray]) -> tuple[str, str]:
    """("official" | "midas" | "hf", HF naming or ""), or ValueError naming what was found instead."""
    keys = set(state)
    if "backbone.beit.embeddings.cls_token" in keys:
        return "hf", "module"
    if "backbone.embeddings.cls_token" in keys:
        return "hf", "file"
    if "core.core.pretrained.model.cls_token" in keys:
        return "official", ""
    if "core.core.pretrained.model.patch_embed.norm.weight" in keys:
        return "official", ""  # a ZoeDepth model on a Swin backbone (exported by zoejax; none were released)
    if ("pretrained.model.cls_token" in keys or _SWIN_MARKER in keys) and any(k.startswith("scratch.") for k in keys):
        return "midas", ""
    sample = sorted(keys)[:5]
    raise ValueError("not a ZoeDepth, MiDaS v3.1 BEiT/Swin or transformers ZoeDepth state dict: no BEiT cls_token "
                     f"or Swin patch-embedding norm under any known prefix ({len(keys)} keys, e.g. {sample})")


def _swin_backbone(state: Mapping[str, np.ndarray], prefix: str) -> str:
    """The Swin preset whose (version, width, blocks per stage) the encoder under ``prefix`` has."""
    version = 2 if any(k.startswith(prefix) and k.endswith(".attn.logit_scale") for k in state) else 1
    proj = f"{prefix}patch_embed.proj.weight"
    if proj not in state or np.ndim(state[proj]) != 4:
        found = "missing" if proj not in state else f"of shape {np.shape(state[proj])}"
        raise ValueError(f"{prefix}patch_embed.norm.weight marks a Swin backbone, but {proj} (the patch "
                         f"embedding's (width, 3, 4, 4) kernel) is {found}: not a complete Swin state dict")
    width = int(np.shape(state[proj])[0])
    blocks: dict[int, set[str]] = {}
    for k in state:
        parts = k[len(prefix):].split(".") if k.startswith(prefix + "layers.") else []
        if len(parts) > 3 and parts[2] == "blocks" and parts[1].isdigit():
            blocks.setdefault(int(parts[1]), set()).add(parts[3])
    depths = tuple(len(blocks[s]) for s in sorted(blocks))
    for name, (enc, _) in presets.BACKBONES.items():
        if isinstance(enc, SwinConfig) and (enc.version, enc.embed_dim, tuple(enc.depths)) == (version, width, depths):
            return name
    supported = sorted(n for n, (e, _) in presets.BACKBONES.items() if isinstance(e, SwinConfig))
    raise ValueError(f"unsupported Swin backbone: version {version}, width {width}, blocks per stage {depths} "
                     f"(supported: {supported})")


def _backbone(state: Mapping[str, np.ndarray], cls_key: str, block_prefix: str) -> str:
    if np.ndim(state[cls_key]) == 0:
        raise ValueError(f"{cls_key} is a scalar; a BEiT cls_token has shape (1, 1, width)")
    width = int(np.shape(state[cls_key])[-1])
    depth = len({k[len(block_prefix):].split(".")[0] for k in state if k.startswith(block_prefix)})
    if (width, depth) not in _BACKBONES:
        raise ValueError(f"unsupported BEiT backbone: width {width}, {depth} blocks "
                         f"(supported: {sorted(_BACKBONES.values())})")
    return _BACKBONES[(width, depth)]


def detect(state: Mapping[str, np.ndarray], hf_config: dict[str, Any] | None = None, *,
           format: str | None = None, variant: str | None = None, max_depth: float | None = None) -> Detected:
    """Detect layout, variant (N, K, NK) and backbone; ``format`` / ``variant`` override the guesses.

    ZoeD_K's ``max_depth`` defaults to the released model's 10 m (HF files: their config's value).
    MiDaS files carry no head: the variant defaults to N and the head is initialised fresh.
    """
    fmt, naming = detect_format(state)
    if format is not None:
        if format not in FORMATS:
            raise ValueError(f"format must be one of {FORMATS}, got {format!r}")
        if format != fmt:
            raise ValueError(f"--format {format} given, but the keys are those of a {fmt} checkpoint")
    if fmt == "hf":
        cls = f"backbone.{'beit.' if naming == 'module' else ''}embeddings.cls_token"
        blocks = "backbone.beit.layers." if naming == "module" else "backbone.encoder.layer."
        nk_key, k_key = "metric_head.seed_bin_regressors.", "metric_head.attractors.3.conv2.weight"
    else:
        prefix = "core.core." if fmt == "official" else ""
        cls, blocks = f"{prefix}pretrained.model.cls_token", f"{prefix}pretrained.model.blocks."
        nk_key, k_key = "seed_bin_regressors.", "attractors.3._net.2.weight"
    if fmt != "hf" and cls not in state:
        backbone = _swin_backbone(state, f"{prefix}pretrained.model.")
    else:
        backbone = _backbone(state, cls, blocks)
    if fmt == "midas":
        guessed = "n"
    elif any(k.startswith(nk_key) for k in state):
        guessed = "nk"
    else:
        # Normed (ZoeD_K) attractors emit two channels per attractor; the last level has one attractor.
        guessed = "k" if k_key in state and np.asarray(state[k_key]).shape[0] == 2 else "n"
    chosen = variant or guessed
    if chosen not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {chosen!r}")
    if fmt != "midas" and variant is not None and variant != guessed:
        raise ValueError(f"--variant {variant} given, but the checkpoint holds a ZoeD_{guessed.upper()} head")
    if chosen == "k":
        if max_depth is None and hf_config and hf_config.get("bin_configurations"):
            max_depth = float(hf_config["bin_configurations"][0]["max_depth"])
        config = presets.zoed_k(backbone, 10.0 if max_depth is None else max_depth)
    else:
        config = presets.VARIANTS[f"zoed_{chosen}"](backbone)
    return Detected(fmt, chosen, backbone, config, naming)
