"""The one evaluation path: which data each dataset is scored on, its input pipeline, then the Evaluator.

``zoejax-eval``, periodic evaluation during training (``zoejax-train``) and the demo all build their datasets
here from an :class:`EvalDataSettings`, so a dataset is the same data scored the same way in all three: the
same default layouts, the same held-out synthetic scenes (``HELD_OUT_SCENE_SEED``, rendered at the network
input size), a custom dataset scored indoor (<= 10 m) or outdoor (<= 80 m) by ``custom_domain``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import jax

from data_pipelines.config import DataConfig, SourceConfig
from data_pipelines.pipeline import build_eval_counted
from zoejax.evaluation.evaluator import EvalResult, Evaluator
from zoejax.evaluation.protocols import PROTOCOLS, EvalProtocol, custom_protocol

# The scene seed of every held-out synthetic evaluation set. Training data use small seeds (configs: 0), and a
# synthetic frame is a function of (seed, index) only, so these scenes are never trained on.
HELD_OUT_SCENE_SEED = 1_000_003


@dataclasses.dataclass(frozen=True)
class EvalDataSettings:
    """Where the evaluation data live and how they are read.

    Attributes:
      data_root: base folder of the protocols' default layouts (``zoejax-eval --list-protocols``).
      overrides: {dataset: {SourceConfig field: value}} replacing the default layout ("root", "list_file",
        "depth_root": absolute paths or paths relative to ``data_root``) or other source fields ("size").
      batch_size: examples per batch per host.
      image_size: network input (H, W) (multiples of 32): the model's ``input_size``. Synthetic frames are
        rendered at this size unless ``overrides`` gives them a "size".
      synthetic_examples: frames per synthetic dataset.
      custom_domain: the custom dataset's domain: 0 indoor (scored on 1e-3..10 m, NK: NYU head), 1 outdoor
        (1e-3..80 m, NK: KITTI head).
      max_batches: evaluate at most N batches of every dataset per host (0 = all), for quick checks.
      num_workers, read_threads: grain reading parallelism.
    """

    data_root: str = ""
    overrides: Mapping[str, Mapping[str, Any]] = dataclasses.field(default_factory=dict)
    batch_size: int = 4
    image_size: tuple[int, int] = (384, 512)
    synthetic_examples: int = 64
    custom_domain: int = 0
    max_batches: int = 0
    num_workers: int = 0
    read_threads: int = 2

    def __post_init__(self):
        if self.custom_domain not in (0, 1):
            raise ValueError(f"custom_domain must be 0 (indoor) or 1 (outdoor), got {self.custom_domain!r}")


@dataclasses.dataclass(frozen=True)
class EvalSet:
    """One dataset ready to score: its protocol and its one-source evaluation pipeline config."""

    protocol: EvalProtocol
    data: DataConfig


def eval_protocol(name: str, settings: EvalDataSettings) -> EvalProtocol:
    """The protocol ``name`` (a key of ``PROTOCOLS``) is scored under with these settings."""
    return custom_protocol(settings.custom_domain) if name == "custom" else PROTOCOLS[name]


def eval_source(protocol: EvalProtocol, settings: EvalDataSettings) -> SourceConfig:
    """The evaluation ``SourceConfig`` of ``protocol``: its default layout under ``settings.data_root`` with
    ``settings.overrides`` applied; held-out scenes for the synthetic datasets."""
    extra: dict[str, Any] = dict(settings.overrides.get(protocol.dataset, {}))
    if protocol.dataset.startswith("synthetic"):
        extra.setdefault("num_examples", settings.synthetic_examples)
        extra.setdefault("seed", HELD_OUT_SCENE_SEED)
        extra.setdefault("size", tuple(settings.image_size))
    elif protocol.dataset == "custom":
        if not extra.get("list_file"):
            raise ValueError("the custom dataset needs its list file: zoejax-eval --list custom=VAL.csv, or "
                             "zoejax-train --config.eval.list_file=VAL.csv")
        extra["domain"] = protocol.domain
    return protocol.source(settings.data_root, **extra)


def eval_sets(datasets: Sequence[str], settings: EvalDataSettings) -> list[EvalSet]:
    """An :class:`EvalSet` per name of ``datasets`` (keys of ``PROTOCOLS``), in order."""
    out = []
    for name in datasets:
        protocol = eval_protocol(name, settings)
        data = DataConfig(sources=(eval_source(protocol, settings),), batch_size=settings.batch_size,
                          image_size=tuple(settings.image_size), num_workers=settings.num_workers,
                          read_threads=settings.read_threads, shuffle=False)
        out.append(EvalSet(protocol, data))
    return out


class DatasetEvaluation:
    """The pipelines of ``datasets`` built once (files checked once), scored as often as asked.

    Args:
      datasets: keys of ``PROTOCOLS``, in the order results come back.
      settings: where the data live and how they are read.
      process_index, process_count: this host's share; None = ``jax.process_index()`` / ``process_count()``.
    """

    def __init__(self, datasets: Sequence[str], settings: EvalDataSettings, process_index: int | None = None,
                 process_count: int | None = None):
        self.settings = settings
        index = jax.process_index() if process_index is None else process_index
        count = jax.process_count() if process_count is None else process_count
        self.pipelines = []
        for item in eval_sets(datasets, settings):
            batches, num_batches = build_eval_counted(item.data, index, count)
            if settings.max_batches:
                num_batches = min(num_batches, settings.max_batches)
            self.pipelines.append((item.protocol, batches, num_batches))

    def __call__(self, evaluator: Evaluator, params: Any, *, flip_tta: bool | None = None,
                 progress: bool = True) -> list[EvalResult]:
        """Scores ``params`` on every dataset, in order (``flip_tta`` None: each protocol's own)."""
        results = []
        for protocol, batches, num_batches in self.pipelines:
            it = (b for _, b in zip(range(num_batches), iter(batches), strict=False))
            results.append(evaluator.evaluate(params, it, protocol, flip_tta=flip_tta, total=num_batches,
                                              progress=progress))
        return results


def evaluate_datasets(evaluator: Evaluator, params: Any, datasets: Sequence[str], settings: EvalDataSettings, *,
                      flip_tta: bool | None = None, progress: bool = True) -> list[EvalResult]:
    """Scores ``params`` on every dataset in ``datasets`` (keys of ``PROTOCOLS``), in order."""
    return DatasetEvaluation(datasets, settings)(evaluator, params, flip_tta=flip_tta, progress=progress)
