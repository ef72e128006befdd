"""Training and evaluation input pipelines built from grain datasets.

Training, per source::

    source -> guard (bad-data policy) -> global shuffle(seed) -> repeat -> [trim to whole global steps]
      -> joint transforms (seeded by the global stream position) -> this host's slice -> batch

then, for several sources, a batch-level ``MapDataset.mix`` (each batch from one source: the official NK
round-robin is weights 1, 1) or, with ``mix="example"``, the same mix of the sources' examples before the batch
(every batch holds each source in the weights' proportions: MiDaS's mixing), ``to_iter_dataset`` and optional
``mp_prefetch`` workers. Every step above
is a deterministic function of the element index, so the output is identical for any worker count, and
the iterator's state (``get_state``/``set_state``, or orbax via ``grain.checkpoint.CheckpointSave``) is
just positions: restoring mid-epoch replays exactly the batches an uninterrupted run would have produced.
"""

from __future__ import annotations

import grain
import numpy as np
from absl import flags

from data_pipelines.config import DataConfig, SourceConfig
from data_pipelines.guard import EvalShard, GuardedSource
from data_pipelines.sources import DatasetInfo, make_source
from data_pipelines.transforms import (
    CenterCropOrPad,
    CoverResizeCrop,
    Finalize,
    KBCrop,
    PhotometricJitter,
    RandomCrop,
    RandomHorizontalFlip,
    RandomRotate,
    RemoveWhiteBorder,
    ResizeImage,
)


def _depth_range(src: SourceConfig, default: tuple[float, float]) -> tuple[float, float]:
    lo = default[0] if src.min_depth is None else src.min_depth
    hi = default[1] if src.max_depth is None else src.max_depth
    return float(lo), float(hi)


def _shape_transforms(src: SourceConfig, info: DatasetInfo) -> list[grain.transforms.Map]:
    """Crops that fix the native shape, applied first in training and evaluation."""
    out: list[grain.transforms.Map] = []
    if info.kb_crop:
        out.append(KBCrop())
    if src.size is not None and not src.name.startswith("synthetic"):
        out.append(CenterCropOrPad(tuple(src.size)))
    return out


# How a training frame reaches the network size (DataConfig.train_resize, whose names are config.TRAIN_RESIZE_MODES):
# one row per mode, applied last before masking.
TRAIN_RESIZES = {
    "image": lambda cfg: ResizeImage(tuple(cfg.image_size)),  # ZoeDepth: the image alone; depth stays native
    "cover_crop": lambda cfg: CoverResizeCrop(tuple(cfg.image_size), cfg.cover_multiple),  # Depth Anything V2
}


def train_transforms(cfg: DataConfig, src: SourceConfig, info: DatasetInfo) -> list:
    """The official training order: KB crop, white border, rotate, crop, flip, photometric; then the resize to
    the network size (``TRAIN_RESIZES``) and masking."""
    out: list = _shape_transforms(src, info)
    aug = cfg.augment
    if aug.enabled:
        if aug.remove_white_border and info.name in ("nyu", "nyu_tfds"):
            out.append(RemoveWhiteBorder())
        if aug.rotate_degrees > 0:
            out.append(RandomRotate(aug.rotate_degrees))
        if aug.random_crop is not None:
            out.append(RandomCrop(tuple(aug.random_crop)))
        if aug.flip_prob > 0:
            out.append(RandomHorizontalFlip(aug.flip_prob))
        if aug.photometric_prob > 0:
            out.append(PhotometricJitter(aug.photometric_prob, tuple(aug.gamma),
                                         tuple(aug.brightness or info.brightness), tuple(aug.colour)))
    out.append(TRAIN_RESIZES[cfg.train_resize](cfg))
    out.append(Finalize(*_depth_range(src, info.train_range)))
    return out


def eval_transforms(cfg: DataConfig, src: SourceConfig, info: DatasetInfo) -> list:
    """Shape crops, the official loader's image pre-resize (if any), the model-input resize, masking."""
    out: list = _shape_transforms(src, info)
    if info.eval_image_size is not None:
        out.append(ResizeImage(info.eval_image_size, align_corners=False))
    out.append(ResizeImage(tuple(cfg.image_size)))
    out.append(Finalize(*_depth_range(src, info.eval_range)))
    return out


def _sub_seed(seed: int, k: int) -> int:
    """Independent 32-bit seed of source k (grain seeds must be < 2**32)."""
    return int(np.random.SeedSequence([int(seed), k]).generate_state(1)[0])


def _shard(process_index: int | None, process_count: int | None) -> grain.sharding.ShardOptions:
    if process_index is None or process_count is None:
        return grain.sharding.ShardByJaxProcess(drop_remainder=True)
    return grain.sharding.ShardOptions(process_index, process_count, drop_remainder=True)


def _to_iter(ds: grain.MapDataset, cfg: DataConfig) -> grain.IterDataset:
    read = grain.ReadOptions(num_threads=cfg.read_threads, prefetch_buffer_size=cfg.read_buffer_size)
    it = ds.to_iter_dataset(read)
    if cfg.num_workers > 0:
        # grain's worker start-up reads absl flags; programs not started by absl.app (pytest, argparse CLIs)
        # have not parsed them, which would raise UnparsedFlagAccessError. Their defaults are what we want.
        if not flags.FLAGS.is_parsed():
            flags.FLAGS.mark_as_parsed()
        it = it.mp_prefetch(grain.MultiprocessingOptions(num_workers=cfg.num_workers,
                                                         per_worker_buffer_size=cfg.worker_buffer_size))
    return it


def _guarded_source(cfg: DataConfig, src: SourceConfig, training: bool) -> tuple[GuardedSource, DatasetInfo]:
    """The dataset's source (files checked up front when configured), wrapped to count and skip bad examples."""
    source = make_source(src, training=training)
    if cfg.check_files:
        source.check_files()
    info = source.info
    depth_range = _depth_range(src, info.train_range if training else info.eval_range)
    return GuardedSource(source, on_error=cfg.on_bad_example, training=training, depth_range=depth_range), info


def _train_source(cfg: DataConfig, src: SourceConfig, seed: int, shard: grain.sharding.ShardOptions,
                  batched: bool = True) -> grain.MapDataset:
    guarded, info = _guarded_source(cfg, src, training=True)
    ds = grain.MapDataset.source(guarded).seed(seed)
    if cfg.shuffle:
        ds = ds.shuffle()
    ds = ds.repeat(cfg.num_epochs)
    if cfg.num_epochs is not None:
        # Every host must run the same number of full batches, or a multi-host step would hang.
        step = shard.shard_count * cfg.batch_size
        if len(ds) < step:
            raise ValueError(f"source {src.name}: {len(ds)} examples x epochs < one global batch of {step}")
        ds = ds[: len(ds) // step * step]
    # Random transforms before the host slice: their generators are keyed by the global stream position,
    # so hosts do not repeat each other's augmentation draws.
    ds = ds.apply(train_transforms(cfg, src, info))
    ds = ds[shard.shard_index:: shard.shard_count]
    return ds.batch(cfg.batch_size, drop_remainder=True) if batched else ds


def build_train(cfg: DataConfig, seed: int, process_index: int | None = None,
                process_count: int | None = None) -> grain.IterDataset:
    """The training pipeline of this host.

    Args:
      cfg: the data config (several sources = a mix weighted by ``SourceConfig.weight``, by batch or by
        example as ``cfg.mix`` says).
      seed: shuffle and augmentation seed (use the same on every host).
      process_index, process_count: this host's shard; None = ``jax.process_index()/process_count()``.

    Returns:
      A grain IterDataset; ``iter()`` of it yields batches in the format of data_pipelines/batch.py
      (``batch_size`` examples per host) and has ``get_state()``/``set_state()``.
    """
    shard = _shard(process_index, process_count)
    by_example = cfg.mix == "example" and len(cfg.sources) > 1
    per_source = [_train_source(cfg, src, _sub_seed(seed, k), shard, batched=not by_example)
                  for k, src in enumerate(cfg.sources)]
    if len(per_source) == 1:
        ds = per_source[0]
    else:
        # grain's mix interleaves by the normalised weights deterministically (element i's source is a function
        # of i), so either mix is a pure function of the position and resumes exactly.
        ds = grain.MapDataset.mix(per_source, weights=[src.weight for src in cfg.sources])
        if by_example:
            ds = ds.batch(cfg.batch_size, drop_remainder=True)
    return _to_iter(ds, cfg)


def build_eval(cfg: DataConfig, process_index: int | None = None,
               process_count: int | None = None) -> grain.IterDataset:
    """One pass over an evaluation set (one source), in order, without augmentation.

    Each host reads a contiguous share; shares are padded with blank examples (valid all False) to the
    same number of full batches, so shapes never change and hosts stay in step. Evaluators skip examples
    without valid pixels (also KITTI rows without ground truth, as the official evaluation does).
    The valid mask uses the dataset's official evaluation depth range unless the source overrides it.
    """
    return build_eval_counted(cfg, process_index, process_count)[0]


def build_eval_counted(cfg: DataConfig, process_index: int | None = None,
                       process_count: int | None = None) -> tuple[grain.IterDataset, int]:
    """``build_eval`` and the number of batches every host will yield (for progress bars)."""
    if len(cfg.sources) != 1:
        raise ValueError(f"build_eval takes one source per pipeline, got {len(cfg.sources)}")
    src = cfg.sources[0]
    shard = _shard(process_index, process_count)
    guarded, info = _guarded_source(cfg, src, training=False)
    padded = EvalShard(guarded, cfg.batch_size, shard.shard_index, shard.shard_count)
    ds = grain.MapDataset.source(padded).apply(eval_transforms(cfg, src, info))
    return _to_iter(ds.batch(cfg.batch_size, drop_remainder=True), cfg), padded.num_batches
