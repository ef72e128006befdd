"""Bad-data policy around a source, and the padded per-host shards of evaluation.

A corrupt file must not kill a multi-day run deep inside a worker, and a training batch must keep its shape.
So under the "skip" policy a bad training example is counted, warned about and replaced by the next good
one (deterministically: index + 1, + 2, ...), which keeps batches full and resumption exact. Evaluation
must not count an example twice, so there a bad example becomes a blank one (valid all False) that the
evaluator skips. Under "raise" the error propagates with the file and list line in its message.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from data_pipelines.errors import DataError, NoValidDepthError, error_kind, record_bad_example
from data_pipelines.sources.base import Example, make_example

MAX_CONSECUTIVE_BAD = 32


def _describe(source: Any, index: int) -> str:
    return source.describe(index) if hasattr(source, "describe") else f"example {index}"


class GuardedSource:
    """A source wrapper applying the bad-example policy.

    Args:
      source: a raw-example source.
      on_error: "skip" or "raise".
      training: skip (training) or blank out (evaluation) bad examples; in training an example with no
        valid pixel inside ``depth_range`` is bad too (it would contribute nothing to the loss).
      depth_range: (min, max) metres used for the all-invalid check.
    """

    def __init__(self, source: Any, *, on_error: str, training: bool, depth_range: tuple[float, float]):
        self.source = source
        self.on_error = on_error
        self.training = training
        self.depth_range = depth_range
        self._template: tuple[tuple[int, int], int] | None = None

    def __len__(self) -> int:
        return len(self.source)

    def describe(self, index: int) -> str:
        return _describe(self.source, index)

    def _has_valid(self, example: Example) -> bool:
        if example.get("disparity", False):  # no range in metres: any valid pixel counts
            return bool(np.any(example["valid"]))
        lo, hi = self.depth_range
        d = example["depth"]
        return bool(np.any(example["valid"] & (d > lo) & (d < hi)))

    def _policy(self, err: DataError) -> None:
        if self.on_error == "raise":
            raise err
        kind = error_kind(err)
        record_bad_example(kind, f"{'skipping' if self.training else 'blanking'} bad example ({kind}): {err}")

    def __getitem__(self, index: int) -> Example:
        n = len(self.source)
        for attempt in range(MAX_CONSECUTIVE_BAD):
            i = (int(index) + attempt) % n
            try:
                example = self.source[i]
            except DataError as e:
                self._policy(e)
                if not self.training:
                    return self.blank()
                continue
            if example["has_depth"] and not self._has_valid(example):
                err = NoValidDepthError(f"no valid depth pixel in {self.depth_range} m: {self.describe(i)}")
                if not self.training:
                    # Reported but kept: the evaluator skips it like any example without ground truth.
                    record_bad_example("no_valid_depth", f"evaluation example without ground truth: {err}")
                    return example
                self._policy(err)
                continue
            return example
        raise DataError(f"{MAX_CONSECUTIVE_BAD} consecutive bad examples starting at "
                        f"{self.describe(int(index) % n)}; check the dataset with `zoejax-data check`")

    def blank(self) -> Example:
        """An example without ground truth, shaped like the first readable example of the dataset (always
        the same one, so padding shapes do not depend on which thread or worker got there first)."""
        if self._template is None:
            for i in range(min(len(self.source), MAX_CONSECUTIVE_BAD)):
                try:
                    ex = self.source[i]
                except DataError:
                    continue
                self._template = (ex["image"].shape[:2], int(ex["domain"]))
                break
            else:
                raise DataError("no readable example among the first ones to shape a blank example")
        (h, w), domain = self._template
        zeros = np.zeros((h, w), np.float32)
        name = getattr(getattr(self.source, "info", None), "name", "")
        return make_example(np.zeros((h, w, 3), np.uint8), zeros, zeros > 0, 0.0, domain, has_depth=False,
                            dataset=name)


class EvalShard:
    """Host ``process_index``'s contiguous share of an evaluation source, padded with blank examples to
    ``num_batches * batch_size`` so every host runs the same number of equally shaped batches.
    """

    def __init__(self, source: GuardedSource, batch_size: int, process_index: int, process_count: int):
        n = len(source)
        per_host = math.ceil(n / process_count)
        self.start = min(process_index * per_host, n)
        self.stop = min(self.start + per_host, n)
        self.num_batches = max(math.ceil(per_host / batch_size), 1)
        self.length = self.num_batches * batch_size
        self.source = source

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> Example:
        i = self.start + int(index)
        if i < self.stop:
            return self.source[i]
        return self.source.blank()

    def __repr__(self) -> str:
        return f"EvalShard(start={self.start}, stop={self.stop}, length={self.length})"
