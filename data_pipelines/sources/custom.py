"""Custom datasets: one CSV or JSONL list file describing image/depth pairs (see docs/data.md).

Columns (CSV header row, or keys of each JSON object):

- ``image`` (required): RGB image path (any format Pillow reads).
- ``depth`` (required): depth path: integer PNG, float TIFF or ``.npy``; metres = stored value / depth_scale;
  0, NaN and inf mean "no measurement".
- ``depth_scale`` (required): e.g. 1000 for millimetre PNGs, 256 for KITTI-style PNGs, 1 for metres.
- ``focal`` or ``fx`` (optional): focal length in pixels; ``fy``, ``cx``, ``cy`` are accepted and checked.
- ``valid_mask`` (optional): mask image, nonzero = valid, same size as the depth map.
- ``sky_mask`` (optional): mask image, nonzero = sky, same size as the depth map; sky pixels are not valid (their
  depth is unknown, not zero), for datasets that segment the sky instead of leaving it empty.
- ``kind`` (optional): ``depth`` (default: metres as above) or ``disparity``: the file holds inverse depth up to
  an unknown scale and shift (stored value / depth_scale; 0, NaN, inf = no measurement), as stereo and
  relative-depth datasets give it. Such rows carry ``disparity`` = True in the batch; no metric depth range is
  applied to them, and only the relative objective trains on them (``zoejax.training.objectives``).

Relative paths are resolved against the source ``root``, or the list file's directory when root is empty.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import os
from typing import Any

import numpy as np

from data_pipelines.errors import ListFormatError
from data_pipelines.files import read_depth_any, read_mask, read_rgb
from data_pipelines.sources.base import (
    INDOOR_RANGE,
    OUTDOOR_RANGE,
    DatasetInfo,
    Example,
    Row,
    RowSource,
    check_depth_shape,
    make_example,
    read_list_text,
)

# Indoor by default; ``custom_info`` gives the constants of either domain.
CUSTOM_INFO = DatasetInfo("custom", 0, INDOOR_RANGE, INDOOR_RANGE)
REQUIRED_COLUMNS = ("image", "depth", "depth_scale")
OPTIONAL_COLUMNS = ("focal", "fx", "fy", "cx", "cy", "valid_mask", "sky_mask", "kind")
KINDS = ("depth", "disparity")


def _number(value: Any, name: str, where: str, positive: bool) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ListFormatError(f"{where}: {name} {value!r} is not a number") from None
    if not math.isfinite(x) or (x <= 0 if positive else x < 0):
        raise ListFormatError(f"{where}: {name} must be {'> 0' if positive else '>= 0'}, got {value!r}")
    return x


def _records(path: str) -> list[tuple[str, dict[str, Any]]]:
    """(where, record) pairs of a .csv or .jsonl list; raises ListFormatError on structural problems."""
    text = read_list_text(path)  # UTF-8, a byte-order mark dropped
    out = []
    if path.lower().endswith((".jsonl", ".json")):
        with io.StringIO(text) as f:
            for n, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as e:
                    raise ListFormatError(f"{path}:{n}: not valid JSON ({e.msg})") from None
                if not isinstance(record, dict):
                    raise ListFormatError(f"{path}:{n}: expected a JSON object per line")
                out.append((f"{path}:{n}", record))
        return out
    with io.StringIO(text, newline="") as f:
        reader = csv.DictReader(f)
        try:
            if reader.fieldnames is None:
                raise ListFormatError(f"{path}: empty list (a CSV header row is required)")
            for record in reader:
                if None in record:
                    raise ListFormatError(f"{path}:{reader.line_num}: more cells than header columns")
                out.append((f"{path}:{reader.line_num}", {k.strip(): v for k, v in record.items()}))
        except csv.Error as e:  # a field over csv's size limit, a quote where it may not be; line_num: lines done
            raise ListFormatError(f"{path}:{reader.line_num + 1}: not a valid CSV row ({e})") from None
    return out


def parse_row(record: dict[str, Any], where: str, base: str) -> Row:
    """One list record -> Row (focal = ``focal`` or ``fx``, 0 if absent); raises ListFormatError."""
    present = {k: v for k, v in record.items() if v not in (None, "")}
    unknown = sorted(set(present) - set(REQUIRED_COLUMNS) - set(OPTIONAL_COLUMNS))
    if unknown:
        raise ListFormatError(f"{where}: unknown column(s) {unknown}; allowed: "
                              f"{', '.join(REQUIRED_COLUMNS + OPTIONAL_COLUMNS)}")
    missing = [k for k in REQUIRED_COLUMNS if k not in present]
    if missing:
        raise ListFormatError(f"{where}: missing required column(s) {missing}")
    scale = _number(present["depth_scale"], "depth_scale", where, positive=True)
    focal = 0.0
    for key in ("focal", "fx"):
        if key in present:
            focal = _number(present[key], key, where, positive=True)
            break
    for key in ("fy", "cx", "cy"):
        if key in present:
            _number(present[key], key, where, positive=False)
    kind = str(present.get("kind", "depth")).strip().lower()
    if kind not in KINDS:
        raise ListFormatError(f"{where}: kind must be one of {', '.join(KINDS)}, got {present['kind']!r}")
    mask, sky = present.get("valid_mask"), present.get("sky_mask")
    extra = (("depth_scale", scale), ("valid_mask", os.path.join(base, mask) if mask else None),
             ("sky_mask", os.path.join(base, sky) if sky else None), ("kind", kind))
    return Row(os.path.join(base, str(present["image"])), os.path.join(base, str(present["depth"])), focal,
               where, extra=extra)


def parse_custom_list(path: str, root: str = "", errors: list[tuple[str, str]] | None = None) -> list[Row]:
    """Rows of a custom list. With ``errors`` given, malformed rows are appended there and skipped."""
    base = root or os.path.dirname(os.path.abspath(path))
    rows = []
    for where, record in _records(path):
        try:
            rows.append(parse_row(record, where, base))
        except ListFormatError as e:
            if errors is None:
                raise
            errors.append((where, str(e)))
    return rows


def row_paths(row: Row) -> tuple[str, ...]:
    """Every file a row names: image, depth and, if given, the valid and sky masks."""
    masks = tuple(m for m in (row.get("valid_mask"), row.get("sky_mask")) if m)
    return (row.image, row.depth) + masks


def load_row(row: Row, domain: int) -> Example:
    """Decodes one custom row into a raw example (sources/base.py)."""
    image = read_rgb(row.image, row.where)
    depth = read_depth_any(row.depth, row.get("depth_scale"), row.where)
    check_depth_shape(image, depth, row.where)
    valid = np.isfinite(depth) & (depth > 0)
    mask_path = row.get("valid_mask")
    if mask_path:
        mask = read_mask(mask_path, row.where)
        check_depth_shape(image, mask, row.where + ", valid_mask")
        valid &= mask
    sky_path = row.get("sky_mask")
    if sky_path:
        sky = read_mask(sky_path, row.where)
        check_depth_shape(image, sky, row.where + ", sky_mask")
        valid &= ~sky
    example = make_example(image, np.where(valid, depth, 0.0), valid, row.focal, domain)
    example["disparity"] = np.bool_(row.get("kind") == "disparity")
    return example


def custom_info(domain: int | None) -> DatasetInfo:
    """The constants of a custom dataset of ``domain`` (None = 0): indoor data are valid on 1e-3..10 m, outdoor
    data on 1e-3..80 m, in training and in evaluation (the NYU / KITTI ranges)."""
    domain = 0 if domain is None else int(domain)
    depth_range = INDOOR_RANGE if domain == 0 else OUTDOOR_RANGE
    return dataclasses.replace(CUSTOM_INFO, domain=domain, train_range=depth_range,
                               eval_range=depth_range)


class CustomSource(RowSource):
    """A user dataset described by one CSV/JSONL list (module docstring)."""

    def __init__(self, list_file: str, root: str = "", domain: int | None = None):
        self.info = custom_info(domain)
        super().__init__(self.info.domain)
        self.rows = parse_custom_list(list_file, root)
        if not self.rows:
            raise ListFormatError(f"{list_file}: the list has no rows")

    def extra_paths(self, row):
        return row_paths(row)[2:]

    def load(self, row: Row) -> Example:
        return load_row(row, self.domain)
