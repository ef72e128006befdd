"""What every dataset source returns, the per-dataset constants, and the shared file-list machinery.

A source is a grain ``RandomAccessDataSource`` (``__len__`` + ``__getitem__``) whose elements are *raw
examples*: a dict with

- ``image``: uint8 (H, W, 3) RGB at native resolution;
- ``depth``: float32 (H, W) metres, 0 where the dataset encodes "no measurement";
- ``valid``: bool (H, W), the dataset's own validity (encoding, masks, special rules); the metric range
  (min_depth, max_depth) is applied later by ``transforms.Finalize``;
- ``focal``: float32 () focal length in pixels at native resolution (0 if unknown);
- ``domain``: int32 () 0 = indoor, 1 = outdoor;
- ``has_depth``: bool () False for rows without ground truth (KITTI test rows with ``None``);
- ``dataset``: str, the dataset key (``DatasetInfo.name``); dropped from batches (numpy has no string
  arrays worth shipping to a device).

Sources must pickle (grain ships them to worker processes), so they hold paths, never open files.
"""

from __future__ import annotations

import dataclasses
import io
import os
from typing import Any

import numpy as np

from data_pipelines.errors import BadDepthError, ListFormatError, MissingFileError

Example = dict[str, Any]


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """Constants of one dataset (reference: zoedepth-training-eval.md sections 1, 2 and 5.3/5.4).

    Attributes:
      name: dataset key.
      domain: 0 = indoor, 1 = outdoor.
      train_range: (min_depth, max_depth) metres used for the training mask.
      eval_range: (min_depth_eval, max_depth_eval) metres of the official evaluation.
      brightness: U range of the brightness augmentation.
      kb_crop: apply the KITTI benchmark crop (352 x 1216, bottom-centre) to image and depth.
      eval_image_size: (H, W) the official eval loader pre-resizes the *image* to (bilinear,
        align_corners=False); ground truth stays native. None = no pre-resize.
    """

    name: str
    domain: int
    train_range: tuple[float, float]
    eval_range: tuple[float, float]
    brightness: tuple[float, float] = (0.9, 1.1)
    kb_crop: bool = False
    eval_image_size: tuple[int, int] | None = None


# Depth ranges (metres) and the brightness augmentation range shared by several datasets' constants; each
# dataset's DatasetInfo is written once, next to its loader (the table of datasets: data_pipelines/sources/__init__).
INDOOR_RANGE, OUTDOOR_RANGE = (1e-3, 10.0), (1e-3, 80.0)
NYU_BRIGHTNESS = (0.75, 1.25)


def make_example(image: np.ndarray, depth: np.ndarray, valid: np.ndarray, focal: float, domain: int,
                 has_depth: bool = True, dataset: str = "") -> Example:
    """Packs a raw example, casting to the documented dtypes."""
    return {
        "dataset": dataset,
        "image": np.ascontiguousarray(image, dtype=np.uint8),
        "depth": np.ascontiguousarray(depth, dtype=np.float32),
        "valid": np.ascontiguousarray(valid, dtype=bool),
        "focal": np.float32(focal),
        "domain": np.int32(domain),
        "has_depth": np.bool_(has_depth),
    }


def check_depth_shape(image: np.ndarray, depth: np.ndarray, where: str) -> None:
    """Raises BadDepthError when the depth map is not the image's (H, W)."""
    if depth.shape != image.shape[:2]:
        raise BadDepthError(f"depth map is {depth.shape[0]}x{depth.shape[1]} but its image is "
                            f"{image.shape[0]}x{image.shape[1]} ({where})")


def resolve(root: str, path: str) -> str:
    """``path`` joined to ``root`` unless absolute (a BTS list's leading slash is *not* absolute)."""
    if os.path.isabs(path) and os.path.exists(path):
        return path
    return os.path.join(root, path.lstrip("/")) if root else path


def resolve_list_file(root: str, list_file: str) -> str:
    """A list's own path: relative to ``root`` unless absolute. (The leading-slash rule of ``resolve`` is for
    the entries of BTS lists; an absolute list path that does not exist must be reported as itself.)"""
    return list_file if os.path.isabs(list_file) else resolve(root, list_file)


@dataclasses.dataclass(frozen=True)
class Row:
    """One listed example: file paths (depth None = no ground truth) and where it was listed."""

    image: str
    depth: str | None
    focal: float = 0.0
    where: str = ""
    extra: tuple[tuple[str, Any], ...] = ()

    def get(self, key: str, default: Any = None) -> Any:
        return dict(self.extra).get(key, default)


class RowSource:
    """Base of the file-based sources: a list of :class:`Row` and a ``load(row)`` that decodes one.

    Subclasses set ``info`` and ``rows`` in ``__init__`` and implement ``load``.
    """

    info: DatasetInfo
    rows: list[Row]

    def __init__(self, domain: int | None = None):
        self.domain = self.info.domain if domain is None else int(domain)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> Example:
        example = self.load(self.rows[index])
        example["dataset"] = self.info.name
        return example

    def load(self, row: Row) -> Example:
        raise NotImplementedError

    def describe(self, index: int) -> str:
        """Human-readable location of example ``index`` for error messages."""
        row = self.rows[index]
        return row.where or row.image

    def check_files(self, max_report: int = 20) -> None:
        """Raises MissingFileError naming every missing listed file (up to ``max_report``) and its line."""
        missing = []
        for row in self.rows:
            for path in (row.image, row.depth, *self.extra_paths(row)):
                if path is not None and not os.path.isfile(path):
                    missing.append(f"  {path} ({row.where})" if row.where else f"  {path}")
        if missing:
            shown = "\n".join(missing[:max_report])
            more = f"\n  ... and {len(missing) - max_report} more" if len(missing) > max_report else ""
            raise MissingFileError(f"{type(self).__name__}: {len(missing)} listed file(s) do not exist:\n"
                                   f"{shown}{more}")

    def extra_paths(self, row: Row) -> tuple[str, ...]:
        """Files besides image and depth that ``load`` opens (masks); checked by ``check_files``."""
        return ()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(n={len(self)})"


def read_list_text(path: str) -> str:
    """A list file's text: UTF-8, with or without a byte-order mark (spreadsheet exports write one).

    Raises MissingFileError, or ListFormatError naming the line of the first byte that is not UTF-8 (a list
    saved as Latin-1 or Windows-1252): decoding it another way would name files that do not exist."""
    if not os.path.isfile(path):
        raise MissingFileError(f"missing list file: {path}")
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:  # a folder, no permission
        raise ListFormatError(f"{path}: cannot read the list file ({e.strerror or e})") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[:e.start].count(b"\n") + 1
        column = e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1
        raise ListFormatError(f"{path}:{line}: not UTF-8 text (byte 0x{data[e.start]:02x} at column {column}, "
                              "e.g. Latin-1 or Windows-1252); save the list as UTF-8") from None


def read_list_lines(path: str) -> list[tuple[int, str]]:
    """Non-empty, non-comment lines of a text list with their 1-based line numbers."""
    lines = [(n, s.strip()) for n, s in enumerate(io.StringIO(read_list_text(path)), start=1)]
    return [(n, s) for n, s in lines if s and not s.startswith("#")]
