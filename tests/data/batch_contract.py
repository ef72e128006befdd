"""The batch contract of ``data_pipelines/batch.py``, checked: what the pipeline tests assert of every batch."""

from __future__ import annotations

import numpy as np

from data_pipelines.batch import BATCH_KEYS


def check_batch(batch: dict[str, np.ndarray], batch_size: int | None = None,
                image_size: tuple[int, int] | None = None) -> None:
    """Raises ValueError describing the first way ``batch`` breaks the contract above.

    Args:
      batch: a batch from a pipeline.
      batch_size: expected B, if known.
      image_size: expected model input (H, W), if known.
    """
    keys = set(batch)
    if keys != set(BATCH_KEYS):
        raise ValueError(f"batch keys {sorted(keys)} != {sorted(BATCH_KEYS)}")
    expected = {"image": (np.float32, 4), "depth": (np.float32, 3), "valid": (np.bool_, 3),
                "domain": (np.int32, 1), "focal": (np.float32, 1), "disparity": (np.bool_, 1)}
    for key, (dtype, ndim) in expected.items():
        arr = batch[key]
        if not isinstance(arr, np.ndarray):
            raise ValueError(f"batch[{key!r}] is a {type(arr).__name__}, not a numpy array")
        if arr.dtype != dtype or arr.ndim != ndim:
            raise ValueError(f"batch[{key!r}] is {arr.dtype} with {arr.ndim} dims; expected "
                             f"{np.dtype(dtype)} with {ndim}")
    b = batch["image"].shape[0]
    if batch_size is not None and b != batch_size:
        raise ValueError(f"batch size {b} != expected {batch_size}")
    if any(batch[k].shape[0] != b for k in BATCH_KEYS):
        raise ValueError(f"leading dims differ: { {k: batch[k].shape for k in BATCH_KEYS} }")
    if batch["image"].shape[3] != 3:
        raise ValueError(f"image has {batch['image'].shape[3]} channels, expected 3")
    if image_size is not None and batch["image"].shape[1:3] != tuple(image_size):
        raise ValueError(f"image size {batch['image'].shape[1:3]} != model input {tuple(image_size)}")
    if batch["depth"].shape != batch["valid"].shape:
        raise ValueError(f"depth {batch['depth'].shape} and valid {batch['valid'].shape} differ")
    image = batch["image"]
    if not np.all(np.isfinite(image)) or image.min(initial=0.0) < 0.0 or image.max(initial=0.0) > 1.0:
        raise ValueError("image values must be finite and in [0, 1]")
    depth, valid = batch["depth"], batch["valid"]
    if not np.all(np.isfinite(depth)):
        raise ValueError("depth has non-finite values")
    if np.any(depth[~valid] != 0):
        raise ValueError("depth must be 0 wherever valid is False")
    if np.any(depth[valid] <= 0):
        raise ValueError("valid depth must be > 0 metres")
    if not np.all(np.isin(batch["domain"], (0, 1))):
        raise ValueError(f"domain values {np.unique(batch['domain'])} not in {{0, 1}}")
    if np.any(batch["focal"] < 0) or not np.all(np.isfinite(batch["focal"])):
        raise ValueError("focal must be finite and >= 0")
