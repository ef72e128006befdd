"""Evaluating one set of parameters on several datasets: the input pipeline per protocol, then the Evaluator.

Used by ``zoejax-eval`` and by periodic evaluation during training, so both score exactly the same way.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import jax

from data_pipelines.config import DataConfig
from data_pipelines.pipeline import build_eval_counted
from zoejax.evaluation.evaluator import EvalResult, Evaluator
from zoejax.evaluation.protocols import PROTOCOLS, EvalProtocol


@dataclasses.dataclass(frozen=True)
class EvalDataSettings:
    """Where the evaluation data lives and how it is read.

    Attributes:
      data_root: base folder of the protocols' default layouts (``zoejax-eval --list-protocols``).
      overrides: {dataset: {"root" | "list_file" | "depth_root": path}} replacing the default layout.
      batch_size: examples per batch per host.
      image_size: network input (H, W) (multiples of 32): the model's ``input_size``.
      synthetic_examples: frames per synthetic dataset.
      max_examples: evaluate at most N examples of every dataset per host (0 = all), for quick checks.
      num_workers, read_threads: grain reading parallelism.
    """

    data_root: str = ""
    overrides: Mapping[str, Mapping[str, str]] = dataclasses.field(default_factory=dict)
    batch_size: int = 4
    image_size: tuple[int, int] = (384, 512)
    synthetic_examples: int = 64
    max_examples: int = 0
    num_workers: int = 0
    read_threads: int = 2


def eval_data_config(protocol: EvalProtocol, settings: EvalDataSettings) -> DataConfig:
    """The one-source evaluation pipeline config of ``protocol``."""
    extra: dict[str, Any] = dict(settings.overrides.get(protocol.dataset, {}))
    if protocol.dataset.startswith("synthetic"):
        extra.setdefault("num_examples", settings.synthetic_examples)
        extra.setdefault("seed", 10**9)  # held out: training pipelines use small seeds
    source = protocol.source(settings.data_root, **extra)
    return DataConfig(sources=(source,), batch_size=settings.batch_size, image_size=tuple(settings.image_size),
                      num_workers=settings.num_workers, read_threads=settings.read_threads, shuffle=False)


def evaluate_datasets(evaluator: Evaluator, params: Any, datasets: Sequence[str], settings: EvalDataSettings, *,
                      flip_tta: bool | None = None, progress: bool = True) -> list[EvalResult]:
    """Scores ``params`` on every dataset in ``datasets`` (keys of ``PROTOCOLS``), in order."""
    results = []
    for name in datasets:
        protocol = PROTOCOLS[name]
        batches, num_batches = build_eval_counted(eval_data_config(protocol, settings), jax.process_index(),
                                                  jax.process_count())
        batches = iter(batches)
        if settings.max_examples:
            num_batches = min(num_batches, -(-settings.max_examples // settings.batch_size))
            batches = (b for _, b in zip(range(num_batches), batches, strict=False))
        results.append(evaluator.evaluate(params, batches, protocol, flip_tta=flip_tta, total=num_batches,
                                          progress=progress))
    return results
