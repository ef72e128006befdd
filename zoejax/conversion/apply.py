"""Apply a parameter table to a state dict, strictly: every tensor consumed (as a parameter, an extra or a checked
buffer), every Flax parameter filled, every shape checked, and all problems reported together in one error.

Checkpoint files are untrusted input, so this also rejects non-numeric and non-finite tensors.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np
from flax.traverse_util import flatten_dict, unflatten_dict

from zoejax.conversion.table import Table


class ConversionError(ValueError):
    """A state dict does not fit the model; ``problems`` lists every missing, extra or mis-shaped tensor."""

    def __init__(self, problems: list[str], source: str = "state dict"):
        self.problems = problems
        head = f"{source} does not match the model ({len(problems)} problem(s)):"
        super().__init__("\n  ".join([head, *problems]))


def _buffer_matches(value: np.ndarray, expected: np.ndarray) -> bool:
    """Integer buffers must be equal; float ones (computed with transcendental functions, e.g. SwinV2's
    log-spaced coordinates) equal to float32 rounding."""
    if value.shape != expected.shape:
        return False
    if np.issubdtype(expected.dtype, np.floating):
        return bool(np.allclose(value, expected, rtol=1e-6, atol=1e-6))
    return bool(np.array_equal(value, expected))


def _shape(x: Any) -> tuple[int, ...]:
    return tuple(int(s) for s in x.shape)


@dataclasses.dataclass
class Converted:
    """``params`` (nested dict of float32 arrays) and ``extras`` (extra name -> torch-layout float32 array)."""

    params: dict
    extras: dict[str, np.ndarray]


def state_dict_to_params(state_dict: Mapping[str, np.ndarray], table: Table, target: Any,
                         source: str = "state dict") -> Converted:
    """Build the Flax ``params`` tree from a torch-layout state dict.

    Args:
      state_dict: key -> numpy array (torch tensors converted by the caller; torch stays at the edges).
      table: the key table for the model config (``zoejax.conversion.table``).
      target: the params tree (or its ``jax.eval_shape``) whose paths and shapes must be filled exactly.
      source: name used in error messages (e.g. the file path).
    Returns:
      ``Converted``: params with the structure of ``target``, and the extras found (possibly none).
    Raises:
      ConversionError listing every missing key, unexpected key, unfilled parameter, shape mismatch,
      non-float or non-finite tensor, and buffer that differs from its recomputed value.
    """
    want = {k: _shape(v) for k, v in flatten_dict(target).items()}
    problems: list[str] = []
    out: dict[tuple[str, ...], np.ndarray] = {}
    consumed: set[str] = set()
    for entry in table.entries:
        path = "/".join(entry.flax_path)
        missing = [k for k in entry.torch_keys if k not in state_dict]
        if missing:
            problems.extend(f"missing key: {k} (for {path})" for k in missing)
            consumed.update(entry.torch_keys)
            continue
        consumed.update(entry.torch_keys)
        tensors = [np.asarray(state_dict[k]) for k in entry.torch_keys]
        bad = [k for k, t in zip(entry.torch_keys, tensors, strict=True)
               if not np.issubdtype(t.dtype, np.floating)]
        if bad:
            problems.extend(f"non-float tensor: {k} has dtype {state_dict[k].dtype}" for k in bad)
            continue
        try:
            value = entry.transform.to_flax(*tensors)
        except ValueError as e:
            shapes = ", ".join(f"{k} {_shape(t)}" for k, t in zip(entry.torch_keys, tensors, strict=True))
            problems.append(f"shape mismatch: {shapes} for {path}: {e}")
            continue
        if entry.flax_path not in want:
            problems.append(f"table error: {path} is not a parameter of this model")
            continue
        if _shape(value) != want[entry.flax_path]:
            shapes = ", ".join(f"{k} {_shape(t)}" for k, t in zip(entry.torch_keys, tensors, strict=True))
            problems.append(f"shape mismatch: {shapes} -> {path} {_shape(value)}, model expects "
                            f"{want[entry.flax_path]}")
            continue
        if not np.all(np.isfinite(value)):
            problems.append(f"non-finite values in {', '.join(entry.torch_keys)}")
            continue
        out[entry.flax_path] = np.ascontiguousarray(value, dtype=np.float32)
    extras: dict[str, np.ndarray] = {}
    for key, name in table.extras.items():
        if key in state_dict:
            value = np.asarray(state_dict[key])
            if not np.issubdtype(value.dtype, np.floating) or not np.all(np.isfinite(value)):
                problems.append(f"non-float or non-finite values in {key}")
            extras[name] = np.ascontiguousarray(value, dtype=np.float32)
    for key, expected in table.buffers.items():
        if key in state_dict and not _buffer_matches(np.asarray(state_dict[key]), expected):
            problems.append(f"buffer differs from the value the official code computes: {key}")
    known = consumed | set(table.extras) | set(table.buffers)
    unexpected = sorted(k for k in state_dict if k not in known)
    problems.extend(f"unexpected key: {k} {_shape(np.asarray(state_dict[k]))}" for k in unexpected)
    filled = set(out) | {e.flax_path for e in table.entries}
    problems.extend(f"unfilled parameter: {'/'.join(p)} {want[p]}" for p in sorted(want) if p not in filled)
    if problems:
        raise ConversionError(problems, source)
    return Converted(unflatten_dict(out), extras)


def params_to_state_dict(params: Any, table: Table, extras: Mapping[str, np.ndarray] | None = None,
                         defaults: Mapping[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """The inverse: a torch-layout state dict with every table entry, extra and buffer.

    Extras come from ``extras`` (kept at import) or, for a model that never had them, from ``defaults``
    (``table.default_extras``); without either they are left out.
    """
    flat = flatten_dict(params)
    missing = ["/".join(e.flax_path) for e in table.entries if e.flax_path not in flat]
    if missing:
        raise ConversionError([f"parameter not in params: {p}" for p in missing], "params")
    state: dict[str, np.ndarray] = {}
    for entry in table.entries:
        arrays = entry.transform.to_torch(np.asarray(flat[entry.flax_path], dtype=np.float32))
        for key, arr in zip(entry.torch_keys, arrays, strict=True):
            state[key] = np.ascontiguousarray(arr)
    for key, name in table.extras.items():
        source = extras if extras and name in extras else defaults
        if source is not None and name in source:
            state[key] = np.ascontiguousarray(source[name], dtype=np.float32)
    for key, value in table.buffers.items():
        state[key] = value.copy()
    return state
