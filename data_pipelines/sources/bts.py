"""NYU Depth v2 and KITTI Eigen in the BTS layout: a text list of ``rgb_path depth_path focal`` rows.

NYU (zoedepth-training-eval.md 1.1): paths relative to ``sync/`` (train) or ``official_splits/test/``
(test); 480x640 JPEG + 16-bit PNG, metres = PNG / 1000, 0 = invalid. A leading slash in the list is not
absolute (BTS convention) and is stripped.

KITTI (1.2): images relative to ``raw/``, depth relative to ``gts/`` (``depth_root``); metres = PNG / 256,
0 = invalid (sparse LiDAR); a depth path of ``None`` means the row has no ground truth. The KB crop is
applied later by ``transforms.KBCrop`` (it is a property of the dataset, ``info.kb_crop``).
"""

from __future__ import annotations

import numpy as np

from data_pipelines.errors import ListFormatError
from data_pipelines.files import read_depth_png, read_rgb
from data_pipelines.sources.base import (
    INDOOR_RANGE,
    NYU_BRIGHTNESS,
    OUTDOOR_RANGE,
    DatasetInfo,
    Example,
    Row,
    RowSource,
    check_depth_shape,
    make_example,
    read_list_lines,
    resolve,
    resolve_list_file,
)

NYU_FOCAL = 518.8579  # the value on every NYU list row


def parse_bts_list(list_file: str, root: str, depth_root: str, *, keep_missing_depth: bool) -> list[Row]:
    """Rows of a BTS list: 2 or 3 whitespace-separated columns (``rgb depth [focal]``).

    Args:
      list_file: the list.
      root: directory the image paths are relative to.
      depth_root: directory the depth paths are relative to ("" = ``root``).
      keep_missing_depth: keep rows whose depth is ``None`` (evaluation) instead of dropping them (training).
    """
    rows = []
    for n, line in read_list_lines(list_file):
        parts = line.split()
        where = f"{list_file}:{n}"
        if len(parts) not in (2, 3):
            raise ListFormatError(f"{where}: expected 'rgb_path depth_path [focal]', got {line!r}")
        focal = 0.0
        if len(parts) == 3:
            try:
                focal = float(parts[2])
            except ValueError:
                raise ListFormatError(f"{where}: focal {parts[2]!r} is not a number") from None
        depth = None if parts[1] == "None" else resolve(depth_root or root, parts[1])
        if depth is None and not keep_missing_depth:
            continue
        rows.append(Row(resolve(root, parts[0]), depth, focal, where))
    return rows


class _BTSSource(RowSource):
    depth_scale: float

    def __init__(self, root: str, list_file: str, depth_root: str = "", *, keep_missing_depth: bool = False,
                 domain: int | None = None):
        super().__init__(domain)
        list_path = resolve_list_file(root, list_file)
        self.rows = parse_bts_list(list_path, root, depth_root, keep_missing_depth=keep_missing_depth)
        if not self.rows:
            kept = "" if keep_missing_depth else " with ground truth (rows whose depth is None are left out)"
            raise ListFormatError(f"{list_path}: the list has no rows{kept}")

    def load(self, row: Row) -> Example:
        image = read_rgb(row.image, row.where)
        if row.depth is None:
            zeros = np.zeros(image.shape[:2], np.float32)
            return make_example(image, zeros, zeros > 0, row.focal, self.domain, has_depth=False)
        depth = read_depth_png(row.depth, self.depth_scale, row.where)
        check_depth_shape(image, depth, row.where)
        return make_example(image, depth, depth > 0, row.focal, self.domain)


class NYUSource(_BTSSource):
    """NYU Depth v2 in the BTS layout (metres = PNG / 1000)."""

    info = DatasetInfo("nyu", 0, INDOOR_RANGE, INDOOR_RANGE, NYU_BRIGHTNESS)
    depth_scale = 1000.0


class KITTISource(_BTSSource):
    """KITTI Eigen split in the BTS layout (metres = PNG / 256; ``None`` depth rows kept only for eval)."""

    info = DatasetInfo("kitti", 1, OUTDOOR_RANGE, OUTDOOR_RANGE, kb_crop=True)
    depth_scale = 256.0
