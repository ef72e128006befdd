"""Reading checkpoint files into ``key -> numpy array`` dicts. Checkpoints are untrusted input.

* ``.pt`` / ``.pth`` / ``.bin``: ``torch.load(weights_only=True)``: a pickle that would run code is refused;
  the official ``{"model": state_dict, ...}`` wrapper and ``module.`` prefixes are unwrapped; bfloat16 tensors
  are widened to float32 (exactly).
* ``.safetensors`` (optionally with a ``config.json`` beside it, the Hugging Face layout).
torch and safetensors are imported here only (the edge), lazily, with a clear message when missing.
"""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np


class CheckpointReadError(ValueError):
    """A file that is missing, not a checkpoint, corrupt, or unsafe to load."""


def _torch():
    try:
        import torch
    except ImportError as e:  # pragma: no cover - depends on the install
        raise CheckpointReadError("reading PyTorch checkpoints needs torch: pip install 'zoejax[convert]'") from e
    return torch


def read_torch_checkpoint(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """A ``.pt`` file as ``key -> numpy array`` (weights only; ``model`` wrapper and ``module.`` removed)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointReadError(f"checkpoint file not found: {path}")
    torch = _torch()
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        text = str(e)
        reason = _weights_only_reason(text)
        if "global" in reason.lower():
            raise CheckpointReadError(
                f"refusing to load {path}: it contains a pickle that would execute code or build arbitrary "
                f"objects, which a weights file never needs (loaded with weights_only=True): {reason}") from None
        # Garbage, or a pickle using opcodes the weights-only loader lacks (raw protocol-4 pickles included): it
        # cannot be told apart from a malicious one without running it, so it is not run.
        raise CheckpointReadError(
            f"refusing to load {path}: torch's weights-only loader cannot read it ({reason}); a PyTorch weights "
            f"file holds only tensors and plain containers, so this is not one") from None
    except Exception as e:  # torch raises RuntimeError, EOFError, IndexError, ... for garbage input
        detail = (str(e).splitlines() or [type(e).__name__])[0]
        raise CheckpointReadError(f"{path} is not a readable PyTorch checkpoint (truncated or corrupt?): "
                                  f"{type(e).__name__}: {detail}") from None
    if isinstance(obj, dict) and "model" in obj and isinstance(obj["model"], dict):
        obj = obj["model"]  # the official trainer's {"model": ..., "optimizer": ..., "epoch": ...}
    if not isinstance(obj, dict) or not obj:
        raise CheckpointReadError(f"{path} does not hold a state dict (found {type(obj).__name__})")
    state = {}
    for key, value in obj.items():
        if not isinstance(key, str):
            raise CheckpointReadError(f"{path}: entry key {key!r} is a {type(key).__name__}, not a parameter name; "
                                      "a state dict maps names (str) to tensors")
        if not isinstance(value, torch.Tensor):
            raise CheckpointReadError(f"{path}: entry {key!r} is a {type(value).__name__}, not a tensor")
        state[key.removeprefix("module.")] = _to_numpy(torch, value, path, key)
    return state


def _to_numpy(torch, tensor, path: Path, key: str) -> np.ndarray:
    """A tensor as a numpy array; bfloat16 (which numpy lacks) widened to float32, which is exact."""
    tensor = tensor.detach().cpu()
    if tensor.dtype == torch.bfloat16:
        tensor = tensor.float()
    try:
        return tensor.numpy()
    except (TypeError, RuntimeError) as e:  # float8, complex32, quantized or sparse tensors
        raise CheckpointReadError(f"{path}: entry {key!r} has dtype {tensor.dtype} ({str(e).splitlines()[0]}); "
                                  "save the weights as float32, float16 or bfloat16") from None


def _weights_only_reason(text: str) -> str:
    """What torch's ``weights_only`` error says was wrong, without its paragraphs about PyTorch 2.6's defaults
    and filing issues (their wording changes between torch versions)."""
    marker = "WeightsUnpickler error:"
    if marker in text:
        reason = text.split(marker, 1)[1].strip().split("\n\n", 1)[0]
        return " ".join(reason.split()).split(" Please use ", 1)[0]
    boilerplate = ("Weights only load failed", "Please file an issue", "Check the documentation", "Re-running")
    lines = [line.strip() for line in text.splitlines()]
    lines = [line for line in lines if line and not line.startswith(boilerplate)]
    return lines[0] if lines else (text.splitlines() or ["unpickling failed"])[0]


def read_safetensors(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """A ``.safetensors`` file as ``key -> numpy array``."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointReadError(f"checkpoint file not found: {path}")
    try:
        from safetensors.numpy import load_file
    except ImportError as e:  # pragma: no cover
        raise CheckpointReadError("reading safetensors needs safetensors: pip install 'zoejax[convert]'") from e
    try:
        return dict(load_file(str(path)))
    except Exception as e:  # safetensors raises its own SafetensorError for corrupt headers / truncation
        raise CheckpointReadError(f"{path} is not a readable safetensors file (truncated or corrupt?): {e}") from None


def read_hf_config(path: str | os.PathLike) -> dict[str, Any] | None:
    """The ``config.json`` next to a safetensors file (or in a folder), or None when there is none."""
    path = Path(path)
    candidate = path / "config.json" if path.is_dir() else path.with_name("config.json")
    if not candidate.is_file():
        return None
    try:
        return json.loads(candidate.read_text())
    except json.JSONDecodeError as e:
        raise CheckpointReadError(f"{candidate} is not valid JSON: {e}") from None


def read_checkpoint(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict[str, Any] | None]:
    """Read any supported file (or an HF folder with ``model.safetensors``): (state dict, HF config or None)."""
    path = Path(path)
    if path.is_dir():
        weights = path / "model.safetensors"
        if not weights.is_file():
            raise CheckpointReadError(f"{path} is a folder without model.safetensors (not an HF model folder)")
        return read_safetensors(weights), read_hf_config(path)
    if not path.exists():
        raise CheckpointReadError(f"checkpoint file not found: {path}")
    if path.suffix == ".safetensors":
        return read_safetensors(path), read_hf_config(path)
    return read_torch_checkpoint(path), None
