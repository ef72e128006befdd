"""Row-by-row validation of a custom dataset list (``zoejax-data check``)."""

from __future__ import annotations

import dataclasses
import os

import numpy as np
from tqdm import tqdm

from data_pipelines.errors import BadDepthError, CorruptFileError, MissingFileError
from data_pipelines.files import PNG16_MAX, integer_depth_bits
from data_pipelines.sources.custom import load_row, parse_custom_list, row_paths

PROBLEM_KINDS = ("format", "missing file", "unreadable", "size mismatch", "no valid depth", "8-bit depth",
                 "clipped depth")


@dataclasses.dataclass(frozen=True)
class Problem:
    """One bad row: ``where`` = list file and line, ``kind`` in PROBLEM_KINDS, and the details."""

    where: str
    kind: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.kind}: {self.message}"


@dataclasses.dataclass(frozen=True)
class Report:
    """Outcome of :func:`validate_list`: rows seen and one Problem per bad row."""

    num_rows: int
    problems: tuple[Problem, ...]

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        counts = {k: sum(p.kind == k for p in self.problems) for k in PROBLEM_KINDS}
        detail = ", ".join(f"{n} {k}" for k, n in counts.items() if n)
        return (f"checked {self.num_rows} rows: {self.num_rows - len(self.problems)} ok, "
                f"{len(self.problems)} bad" + (f" ({detail})" if detail else ""))


def validate_list(list_file: str, root: str = "", depth_range: tuple[float, float] = (1e-3, 80.0),
                  progress: bool = True) -> Report:
    """Checks every row of a custom CSV/JSONL list: the row parses, its files exist and decode, depth (and
    mask) match the image size, and the depth has at least one pixel strictly inside ``depth_range`` metres.

    The list file itself must exist and have a header (else the error is raised, not reported).
    """
    format_errors: list[tuple[str, str]] = []
    rows = parse_custom_list(list_file, root, errors=format_errors)
    problems = [Problem(where, "format", msg.split(": ", 1)[-1]) for where, msg in format_errors]
    lo, hi = depth_range
    for row in tqdm(rows, desc="checking", unit="row", disable=not progress):
        missing = [path for path in row_paths(row) if not os.path.isfile(path)]
        if missing:
            problems.append(Problem(row.where, "missing file", ", ".join(missing)))
            continue
        try:
            example = load_row(row, domain=0)
        except MissingFileError as e:  # deleted while we were checking
            problems.append(Problem(row.where, "missing file", _strip_where(str(e), row.where)))
            continue
        except CorruptFileError as e:
            problems.append(Problem(row.where, "unreadable", _strip_where(str(e), row.where)))
            continue
        except BadDepthError as e:
            problems.append(Problem(row.where, "size mismatch", _strip_where(str(e), row.where)))
            continue
        depth = example["depth"]
        problem = _stored_range_problem(row.where, row.depth, row.get("depth_scale"), depth, hi)
        if problem is not None:
            problems.append(problem)
        elif not np.any(example["valid"] & (depth > lo) & (depth < hi)):
            problems.append(Problem(row.where, "no valid depth",
                                    f"{row.depth} has no pixel in ({lo}, {hi}) m after scaling by 1/"
                                    f"{row.get('depth_scale')}"))
    problems.sort(key=lambda p: _line_number(p.where))
    return Report(len(rows) + len(format_errors), tuple(problems))


def _stored_range_problem(where: str, path: str, scale: float, depth: np.ndarray, hi: float) -> Problem | None:
    """An integer depth image that cannot hold the depth range: 8 bits reaching less than ``hi`` metres at this
    scale (an 8-bit PNG at millimetres holds at most 0.255 m), or 16 bits saturated at 65535 (the depths beyond
    65535 / scale were clipped when the file was written)."""
    bits = integer_depth_bits(path)
    if bits == 8 and 255 / scale < hi:
        return Problem(where, "8-bit depth", f"{path} is an 8-bit image: at depth_scale {scale:g} it holds at most "
                       f"{255 / scale:.3g} m in steps of {1 / scale:.3g} m (the range checked goes to {hi:g} m); "
                       "save depth as a 16-bit PNG, a float TIFF or .npy")
    saturated = int(np.sum(np.round(depth.astype(np.float64) * scale) >= PNG16_MAX)) if bits == 16 else 0
    if saturated:
        return Problem(where, "clipped depth", f"{path}: {saturated} pixel(s) at 65535, the 16-bit maximum "
                       f"({PNG16_MAX / scale:.3f} m at depth_scale {scale:g}): farther depths were clipped when it "
                       "was written; write it with a smaller depth_scale (256: up to 255.996 m) or as float TIFF/.npy")
    return None


def _strip_where(message: str, where: str) -> str:
    return message.replace(f" ({where})", "")


def _line_number(where: str) -> int:
    tail = where.rsplit(":", 1)[-1]
    return int(tail) if tail.isdigit() else 0
