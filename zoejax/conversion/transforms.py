"""Tensor layout transforms between PyTorch state dicts and Flax params, each with its inverse.

They are the only place where layouts change (design decision 3): Linear (out, in) -> Dense (in, out);
Conv2d (O, I, kh, kw) -> Conv (kh, kw, I, O); ConvTranspose2d (I, O, k, k) -> (k, k, I, O); fused q|k|v.
Everything is numpy: torch is imported only at the edges (readers and tests).
"""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class Transform:
    """How one Flax array is made from ``n_inputs`` torch tensors, and back.

    Attributes:
      name: short label used in error reports.
      n_inputs: how many torch tensors feed this one Flax array.
    """

    name: str
    n_inputs: int = 1

    def to_flax(self, *tensors: np.ndarray) -> np.ndarray:
        if len(tensors) != self.n_inputs:
            raise ValueError(f"{self.name}: expected {self.n_inputs} tensors, got {len(tensors)}")
        t = tensors
        if self.name == "identity":
            return t[0]
        if self.name == "linear":
            _need_ndim(t[0], 2, self.name)
            return t[0].T
        if self.name == "conv":
            _need_ndim(t[0], 4, self.name)
            return t[0].transpose(2, 3, 1, 0)
        if self.name == "conv_transpose":
            _need_ndim(t[0], 4, self.name)
            return t[0].transpose(2, 3, 0, 1)
        if self.name.startswith("concat_linear"):
            for x in t:
                _need_ndim(x, 2, self.name)
            return np.concatenate(t, axis=0).T
        if self.name.startswith("concat_vector"):
            for x in t:
                _need_ndim(x, 1, self.name)
            return np.concatenate(t, axis=0)
        raise ValueError(f"unknown transform {self.name}")

    def to_torch(self, array: np.ndarray) -> tuple[np.ndarray, ...]:
        if self.name == "identity":
            return (array,)
        if self.name == "linear":
            return (array.T,)
        if self.name == "conv":
            return (array.transpose(3, 2, 0, 1),)
        if self.name == "conv_transpose":
            return (array.transpose(2, 3, 0, 1),)
        if self.name.startswith("concat_linear"):
            return tuple(np.split(array.T, self.n_inputs, axis=0))
        if self.name.startswith("concat_vector"):
            return tuple(np.split(array, self.n_inputs, axis=0))
        raise ValueError(f"unknown transform {self.name}")


def _need_ndim(x: np.ndarray, ndim: int, name: str) -> None:
    if x.ndim != ndim:
        raise ValueError(f"{name}: expected a {ndim}-d tensor, got shape {tuple(x.shape)}")


IDENTITY = Transform("identity")
LINEAR = Transform("linear")
CONV = Transform("conv")
CONV_TRANSPOSE = Transform("conv_transpose")
QKV = Transform("concat_linear_qkv", 3)
QKV_BIAS = Transform("concat_vector_qkv", 3)
