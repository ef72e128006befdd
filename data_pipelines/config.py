"""Typed, frozen configuration of the input pipelines.

The CLI turns config files into these dataclasses with :meth:`DataConfig.from_dict`, which rejects unknown
keys (a typo must not silently fall back to a default). Nothing below this module reads a ConfigDict.

Example::

    cfg = DataConfig.from_dict({
        "sources": [{"name": "nyu", "root": "/data/nyu/sync", "list_file": "nyudepthv2_train_files.txt"}],
        "batch_size": 16, "image_size": [384, 512], "num_workers": 2,
    })
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from typing import Any

from data_pipelines.sources import DATASETS

# Every dataset a SourceConfig may name: the rows of the dataset table (data_pipelines/sources/__init__.py).
DATASET_NAMES = tuple(DATASETS)
BAD_EXAMPLE_POLICIES = ("skip", "raise")
MIX_MODES = ("batch", "example")
# How a training frame becomes the network input (data_pipelines/pipeline.py TRAIN_RESIZES has one row per mode).
TRAIN_RESIZE_MODES = ("image", "cover_crop")


@dataclasses.dataclass(frozen=True)
class SourceConfig:
    """One dataset of a pipeline.

    Attributes:
      name: one of ``DATASET_NAMES``.
      root: dataset root (NYU/KITTI: the image root the list paths are relative to; tfds: the data_dir;
        synthetic: unused).
      depth_root: root of the ground-truth paths when it differs from ``root`` (KITTI ``gts``).
      list_file: BTS list (nyu, kitti), custom CSV/JSONL list, or vKITTI2/iBims split file; relative paths
        are resolved against ``root``. Empty = the layout's default (iBims ``imagelist.txt``, vKITTI2
        ``<split>.txt``).
      split: tfds split (``train``/``validation``) or vKITTI2 split (``train``/``test``/``all``).
      weight: relative number of *batches* drawn from this source in a mix (NK: one NYU batch per KITTI
        batch with weights 1, 1).
      domain: 0 = indoor (NYU head), 1 = outdoor (KITTI head); None = the dataset's default.
      min_depth, max_depth: valid range in metres (strict); None = the dataset's default for the mode.
      num_examples: synthetic: frames per epoch.
      size: synthetic: native (H, W) of a frame; other datasets: if set, every example is centre-cropped or
        zero-padded (padding invalid) to this (H, W), for datasets whose frames vary in size.
      seed: synthetic: scene seed (frame i is a function of (seed, i) only).
    """

    name: str
    root: str = ""
    depth_root: str = ""
    list_file: str = ""
    split: str = "train"
    weight: float = 1.0
    domain: int | None = None
    min_depth: float | None = None
    max_depth: float | None = None
    num_examples: int = 0
    size: tuple[int, int] | None = None
    seed: int = 0

    def __post_init__(self):
        if self.name not in DATASET_NAMES:
            raise ValueError(f"unknown dataset {self.name!r}; choose one of {', '.join(DATASET_NAMES)}")
        if not self.weight > 0:
            raise ValueError(f"source {self.name}: weight must be > 0, got {self.weight}")
        if self.domain not in (None, 0, 1):
            raise ValueError(f"source {self.name}: domain must be 0 (indoor), 1 (outdoor) or None")
        if self.name.startswith("synthetic") and self.num_examples <= 0:
            raise ValueError(f"source {self.name}: set num_examples > 0 for a synthetic dataset")
        if self.size is not None and (len(self.size) != 2 or min(self.size) <= 0):
            raise ValueError(f"source {self.name}: size must be (H, W) with positive entries, "
                             f"got {self.size}")
        lo, hi = self.min_depth, self.max_depth
        if lo is not None and hi is not None and not lo < hi:
            raise ValueError(f"source {self.name}: min_depth {lo} must be < max_depth {hi}")


@dataclasses.dataclass(frozen=True)
class AugmentConfig:
    """Training augmentation; the defaults are the released ZoeDepth recipe (data_mono.py).

    Attributes:
      enabled: master switch (False: only crops needed for shape, resize and masking).
      rotate_degrees: angle ~ U(-d, d) applied to every sample; 0 disables.
      flip_prob: horizontal flip probability.
      photometric_prob: probability of the joint gamma/brightness/colour jitter.
      gamma, colour: U ranges of the gamma exponent and the per-channel colour factors.
      brightness: U range of the brightness factor; None = dataset default (NYU 0.75-1.25, else 0.9-1.1).
      random_crop: (h, w) random crop before flip; None = off (official).
      remove_white_border: NYU white-border removal (``avoid_boundary``; off in the released models).
    """

    enabled: bool = True
    rotate_degrees: float = 1.0
    flip_prob: float = 0.5
    photometric_prob: float = 0.5
    gamma: tuple[float, float] = (0.9, 1.1)
    brightness: tuple[float, float] | None = None
    colour: tuple[float, float] = (0.9, 1.1)
    random_crop: tuple[int, int] | None = None
    remove_white_border: bool = False

    def __post_init__(self):
        for name in ("flip_prob", "photometric_prob"):
            p = getattr(self, name)
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"augment.{name} must be in [0, 1], got {p}")
        if self.rotate_degrees < 0:
            raise ValueError(f"augment.rotate_degrees must be >= 0, got {self.rotate_degrees}")


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """A training or evaluation input pipeline.

    Attributes:
      sources: one dataset, or several mixed by ``mix``.
      mix: "batch" (each batch from one source, batches in the proportions of the sources' ``weight``: the NK
        mix) or "example" (every batch holds examples of each source in those proportions, as MiDaS mixes its
        datasets: weights 1, 1, 1 and a batch of 12 = 4 of each; the sources' frames must then share one native
        size, set by each source's ``size``). Both are deterministic and resume exactly.
      batch_size: examples per batch *per host* (process).
      image_size: model input (H, W); images are resized to it, depth stays at native size (``train_resize``
        "cover_crop": image and depth end at this size).
      train_resize: how a training frame reaches ``image_size``. "image" (ZoeDepth): the image alone is resized
        to it (bilinear), depth and mask stay native. "cover_crop" (Depth Anything V2's metric training): image
        (bicubic), depth and mask (nearest) are resized together, keeping the aspect, to cover ``image_size``
        with sides at multiples of ``cover_multiple``, then a random ``image_size`` window of all three is taken
        (data_pipelines/transforms/cover.py). Evaluation always resizes the image alone.
      cover_multiple: the side multiple of the "cover_crop" resize (official 14, the patch size).
      augment: training augmentation (ignored by ``build_eval``).
      num_workers: grain multiprocess prefetch workers; 0 = in-process.
      worker_buffer_size: batches each worker may prepare ahead.
      read_threads: threads reading elements within each process (grain ReadOptions); 0 = synchronous.
      read_buffer_size: elements the reading threads may prepare ahead.
      num_epochs: training epochs (None = repeat forever); evaluation always runs one epoch.
      shuffle: global shuffle (training).
      on_bad_example: "skip" (warn, use the next example) or "raise".
      check_files: verify at construction that every listed file exists (fails fast, names the line).
    """

    sources: tuple[SourceConfig, ...]
    mix: str = "batch"
    batch_size: int = 16
    image_size: tuple[int, int] = (384, 512)
    augment: AugmentConfig = AugmentConfig()
    train_resize: str = "image"
    cover_multiple: int = 14
    num_workers: int = 0
    worker_buffer_size: int = 2
    read_threads: int = 2
    read_buffer_size: int = 4
    num_epochs: int | None = None
    shuffle: bool = True
    on_bad_example: str = "skip"
    check_files: bool = True

    def __post_init__(self):
        if not self.sources:
            raise ValueError("DataConfig needs at least one source")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if len(self.image_size) != 2 or min(self.image_size) < 2:
            raise ValueError(f"image_size must be (H, W) with entries >= 2, got {self.image_size}")
        if self.num_workers < 0 or self.read_threads < 0:
            raise ValueError("num_workers and read_threads must be >= 0")
        if self.worker_buffer_size < 1 or self.read_buffer_size < 1:
            raise ValueError("worker_buffer_size and read_buffer_size must be >= 1")
        if self.num_epochs is not None and self.num_epochs < 1:
            raise ValueError(f"num_epochs must be >= 1 or None, got {self.num_epochs}")
        if self.mix not in MIX_MODES:
            raise ValueError(f"mix must be one of {MIX_MODES}, got {self.mix!r}")
        if self.train_resize not in TRAIN_RESIZE_MODES:
            raise ValueError(f"train_resize must be one of {TRAIN_RESIZE_MODES}, got {self.train_resize!r}")
        if self.cover_multiple < 1:
            raise ValueError(f"cover_multiple must be >= 1, got {self.cover_multiple}")
        if self.on_bad_example not in BAD_EXAMPLE_POLICIES:
            raise ValueError(f"on_bad_example must be one of {BAD_EXAMPLE_POLICIES}, "
                             f"got {self.on_bad_example!r}")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DataConfig:
        """Builds a config from plain dicts/lists (e.g. ``ConfigDict.to_dict()``); unknown keys raise."""
        return _build(cls, d, "data")

    @classmethod
    def synthetic(cls, num_examples: int = 256, *, outdoor: bool = False, nk: bool = False, seed: int = 0,
                  size: tuple[int, int] | None = None, **kwargs: Any) -> DataConfig:
        """Synthetic rooms (or streets, or both mixed batch by batch as an NK stand-in): nothing to download.

        ``size`` is the native (H, W) of the frames; other keyword arguments are DataConfig fields.
        """
        def source(name: str) -> SourceConfig:
            return SourceConfig(name, num_examples=num_examples, seed=seed, size=size)

        if nk:
            sources = (source("synthetic_indoor"), source("synthetic_outdoor"))
        else:
            sources = (source("synthetic_outdoor" if outdoor else "synthetic_indoor"),)
        return cls(sources=sources, **kwargs)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> DataConfig:
        return dataclasses.replace(self, **changes)


def _build(cls: type, d: Mapping[str, Any], path: str) -> Any:
    if not isinstance(d, Mapping):
        raise TypeError(f"{path}: expected a mapping, got {type(d).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - set(fields))
    if unknown:
        raise ValueError(f"unknown key(s) {', '.join(repr(k) for k in unknown)} in {path}; "
                         f"valid keys: {', '.join(fields)}")
    hints = typing.get_type_hints(cls)
    kwargs = {k: _coerce(hints[k], v, f"{path}.{k}") for k, v in d.items()}
    return cls(**kwargs)


def _coerce(tp: Any, value: Any, path: str) -> Any:
    """Converts nested dicts to dataclasses and lists to tuples, following the type hint."""
    origin = typing.get_origin(tp)
    if origin in (types.UnionType, typing.Union):
        if value is None:
            return None
        (inner,) = [a for a in typing.get_args(tp) if a is not type(None)]
        return _coerce(inner, value, path)
    if dataclasses.is_dataclass(tp):
        return value if isinstance(value, tp) else _build(tp, value, path)
    if origin is tuple:
        args = typing.get_args(tp)
        if not isinstance(value, list | tuple):
            raise TypeError(f"{path}: expected a list, got {type(value).__name__}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(args[0], v, f"{path}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            raise ValueError(f"{path}: expected {len(args)} entries, got {len(value)}")
        return tuple(_coerce(a, v, f"{path}[{i}]") for i, (a, v) in enumerate(zip(args, value, strict=True)))
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp in (int, float, str, bool) and not isinstance(value, tp):
        raise TypeError(f"{path}: expected {tp.__name__}, got {value!r}")
    return value
