"""Checkpoints for converter tests: manifest-shaped official files and tiny real-weight ones in every layout."""

from __future__ import annotations

import json
import os

import numpy as np

from zoejax.models.backbones.beit import relative_position_index

# Every key, shape and dtype of the released files (recorded from them; nothing is downloaded).
REFERENCE = os.path.join(os.path.dirname(__file__), "fixtures")


def manifest(name: str) -> dict[str, tuple[list[int], str]]:
    """Key -> (shape, dtype) of a released file: ZoeD_N / ZoeD_NK, dpt_beit_large_384 / dpt_beit_base_384."""
    for file in ("official_checkpoint_keys.json", "midas_v31_checkpoint_keys.json"):
        with open(os.path.join(REFERENCE, file)) as f:
            data = json.load(f)
        if name in data:
            return {k: (v[0], v[1]) for k, v in data[name].items()}
    raise KeyError(name)


def manifest_state_dict(name: str, seed: int = 0, materialise: bool = False) -> dict[str, np.ndarray]:
    """A state dict with the released key set and shapes: buffers with their real values, float tensors
    constant (cheap read-only views) or random (``materialise``)."""
    rng = np.random.default_rng(seed)
    state = {}
    for key, (shape, dtype) in manifest(name).items():
        if key.endswith("relative_position_index"):
            window = int(round((shape[0] - 1) ** 0.5))
            state[key] = relative_position_index((window, window)).astype(np.int64)
        elif key.endswith("k_idx"):
            state[key] = np.arange(shape[1], dtype=np.int64).reshape(shape)
        elif key.endswith("K_minus_1"):
            state[key] = np.full(shape, 63, np.float32)
        elif materialise:
            state[key] = rng.standard_normal(shape, dtype=np.float32) * 0.02
        else:
            assert dtype == "torch.float32", key
            state[key] = np.broadcast_to(np.float32(0.01), shape)
    return state
