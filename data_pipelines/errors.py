"""Errors raised by the data pipelines, the warning that reports a skipped example, and the process-local tally
of skipped examples (``zoejax-eval`` reports it under its table).

Every error names the offending file and, for list-based datasets, the list file and line, so a bad row can
be fixed without a debugger. Exceptions take a single message argument so they pickle cleanly out of grain
worker processes.
"""

from __future__ import annotations

import collections
import threading
import warnings


class DataError(Exception):
    """Base class: a dataset on disk does not match what its source expects."""


class MissingFileError(DataError, FileNotFoundError):
    """A file named by a dataset list (or implied by a layout) does not exist."""


class CorruptFileError(DataError):
    """A file exists but cannot be decoded (truncated PNG, not an image, bad .npy, ...)."""


class BadDepthError(DataError):
    """A depth map decodes but is unusable: wrong size for its image, or no valid pixel."""


class NoValidDepthError(BadDepthError):
    """A depth map has no pixel inside the valid range (all zeros, all sky, wrong scale, ...)."""


class ListFormatError(DataError):
    """A dataset list file has a malformed row (wrong column count, bad number, unknown column)."""


class BadExampleWarning(UserWarning):
    """Emitted when a corrupt or unusable example is skipped instead of raised; ``kind`` says why ("corrupt",
    "missing", "bad_depth", "no_valid_depth", "other")."""

    def __init__(self, message: str, kind: str = "other"):
        super().__init__(message)
        self.kind = kind


_lock = threading.Lock()
_counts: collections.Counter[str] = collections.Counter()


def record_bad_example(kind: str, message: str) -> None:
    """Counts one skipped (or blanked) example of ``kind`` and warns with ``message`` naming its file and line.

    The tally is per process: with multiprocess prefetch each worker keeps its own (its warnings still reach
    the terminal, since workers share the parent's stderr).
    """
    with _lock:
        _counts[kind] += 1
    warnings.warn(BadExampleWarning(message, kind), stacklevel=3)


def bad_example_counts() -> dict[str, int]:
    """Skipped examples by kind ("corrupt", "missing", "bad_depth", "no_valid_depth") in this process."""
    with _lock:
        return dict(_counts)


def reset_bad_example_counts() -> None:
    with _lock:
        _counts.clear()


def error_kind(err: DataError) -> str:
    """The tally key of an error."""
    if isinstance(err, MissingFileError):
        return "missing"
    if isinstance(err, CorruptFileError):
        return "corrupt"
    if isinstance(err, NoValidDepthError):
        return "no_valid_depth"
    if isinstance(err, BadDepthError):
        return "bad_depth"
    return "other"
