"""Depth Anything V2's metric training sets as its split files list them: Hypersim (indoor) and Virtual KITTI 2
(outdoor), with the official conversions to metres (DepthAnything/Depth-Anything-V2@a561b84, metric_depth/dataset/).

A split file holds one frame a line: the image path and the depth path, separated by white space (the official
``splits/hypersim/train.txt`` and ``splits/vkitti2/train.txt`` are such lists, with absolute paths on the authors'
machine: cut their prefix once, e.g. ``sed 's|/mnt/bn/liheyang/DepthDatasets/HyperSim/all/||g'``). Relative paths
are resolved against ``root``. The frames are as the datasets ship them:

* Hypersim: ``<scene>/images/scene_cam_XX_final_preview/frame.NNNN.tonemap.jpg`` and
  ``<scene>/images/scene_cam_XX_geometry_hdf5/frame.NNNN.depth_meters.hdf5`` (array ``dataset``, float, metres of
  Euclidean distance from the camera centre along each pixel's ray; NaN where nothing was rendered). The distance
  becomes planar depth d = r * f / sqrt(u^2 + v^2 + f^2), f = 886.81 px, (u, v) the pixel centre's offset from the
  image centre (-511.5 .. 511.5 and -383.5 .. 383.5 at 1024x768); NaN is invalid. A ``.npy`` of the same distance array
  (converted once, without h5py) is read as well.
* Virtual KITTI 2: ``<Scene>/<variant>/frames/rgb/Camera_0/rgb_NNNNN.jpg`` and
  ``.../frames/depth/Camera_0/depth_NNNNN.png`` (uint16 centimetres; sky is 65535 = 655.35 m). metres = PNG / 100;
  beyond 80 m (the sky) is invalid.
"""

from __future__ import annotations

import numpy as np

from data_pipelines.errors import ListFormatError
from data_pipelines.files import read_depth_png
from data_pipelines.sources.base import DatasetInfo, Row, read_list_lines, resolve, resolve_list_file
from data_pipelines.sources.zero_shot import (
    HYPERSIM_FOCAL,
    VKITTI2_FOCAL,
    PairSource,
    hypersim_distance_to_depth,
    read_hypersim_distance,
    read_hypersim_hdf5,
    require_h5py,
)

# The official training's depth range (train.py --min-depth 0.001, --max-depth 20 / 80) and the farthest valid
# Virtual KITTI 2 depth (vkitti2.py: valid_mask = depth <= 80).
HYPERSIM_RANGE, VKITTI2_RANGE = (1e-3, 20.0), (1e-3, 80.0)
VKITTI2_MAX_VALID = 80.0


def read_split(root: str, list_file: str, focal: float) -> list[Row]:
    """The rows of a two-column split file (``IMAGE DEPTH`` a line); ListFormatError naming the line otherwise."""
    list_path = resolve_list_file(root, list_file)
    rows = []
    for n, line in read_list_lines(list_path):
        fields = line.split()
        if len(fields) != 2:
            raise ListFormatError(f"{list_path}:{n}: expected 'IMAGE DEPTH' (two paths separated by a space), got "
                                  f"{len(fields)} field(s)")
        rows.append(Row(resolve(root, fields[0]), resolve(root, fields[1]), focal, where=f"{list_path}:{n}"))
    if not rows:
        raise ListFormatError(f"{list_path}: the list has no rows")
    return rows


def _read_distance_file(path: str) -> np.ndarray:
    """A Hypersim ray-distance array from its ``.depth_meters.hdf5`` (h5py) or a ``.npy`` converted from it."""
    # Errors (a damaged file, no ``dataset``) become CorruptFileError naming the list line (read_hypersim_distance).
    return np.load(path, allow_pickle=False) if path.lower().endswith(".npy") else read_hypersim_hdf5(path)


class HypersimSplitSource(PairSource):
    """Hypersim frames of a Depth Anything V2 split file; depth = planar depth from the ray distance, NaN invalid."""

    info = DatasetInfo("hypersim_da2", 0, HYPERSIM_RANGE, HYPERSIM_RANGE)

    def __init__(self, root: str, list_file: str, domain: int | None = None):
        super().__init__(domain)
        self.rows = read_split(root, list_file, HYPERSIM_FOCAL)
        if any(not row.depth.lower().endswith(".npy") for row in self.rows):
            require_h5py()  # said when the source is made, before any reading

    def decode_depth(self, row):
        depth = hypersim_distance_to_depth(read_hypersim_distance(row.depth, row.where, _read_distance_file))
        return depth, np.isfinite(depth)


class VKITTI2SplitSource(PairSource):
    """Virtual KITTI 2 frames of a Depth Anything V2 split file; metres = PNG / 100, beyond 80 m (sky) invalid.

    No KITTI benchmark crop: the official training resizes the whole 375x1242 frame.
    """

    info = DatasetInfo("vkitti2_da2", 1, VKITTI2_RANGE, VKITTI2_RANGE)

    def __init__(self, root: str, list_file: str, domain: int | None = None):
        super().__init__(domain)
        self.rows = read_split(root, list_file, VKITTI2_FOCAL)

    def decode_depth(self, row):
        depth = read_depth_png(row.depth, 100.0, row.where)
        return depth, (depth > 0) & (depth <= VKITTI2_MAX_VALID)
