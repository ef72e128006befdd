"""The zero-shot evaluation sets in their native layouts (zoedepth-training-eval.md 5.3, 5.4, trap 14).

Each class maps an image file to its ground truth and decodes it to metres plus the dataset's own validity
mask (the metric range is applied later). Frames are discovered with sorted globs (the official loaders use
unsorted glob order, which only matters for the order of a per-image mean).
"""

from __future__ import annotations

import glob
import os
from collections.abc import Callable

import numpy as np

from data_pipelines.errors import BadDepthError, CorruptFileError, DataError, ListFormatError, MissingFileError
from data_pipelines.files import read_depth_any, read_depth_png, read_mask, read_rgb, require_file
from data_pipelines.sources.base import (
    INDOOR_RANGE,
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

HYPERSIM_FOCAL = 886.81  # px at 1024x768, hard-coded by the official loader
VKITTI2_FOCAL = 725.0087  # px, Virtual KITTI 2 intrinsics (Camera_0)


def _glob_rows(root: str, pattern: str, to_depth: Callable[[str], str], focal: float = 0.0) -> list[Row]:
    if not os.path.isdir(root):
        raise MissingFileError(f"missing dataset root directory: {root}")
    images = sorted(glob.glob(os.path.join(root, pattern), recursive=True))
    if not images:
        raise MissingFileError(f"no images matching {pattern!r} under {root}")
    return [Row(p, to_depth(p), focal, where=p) for p in images]


def _swap_dir(path: str, old: str, new: str) -> str:
    """Replaces the *last* path component equal to ``old`` by ``new``."""
    parts = path.split(os.sep)
    for i in range(len(parts) - 2, -1, -1):
        if parts[i] == old:
            parts[i] = new
            return os.sep.join(parts)
    raise ListFormatError(f"{path}: expected a '{old}' directory in the path")


class PairSource(RowSource):
    """Image + depth file pairs; subclasses implement ``decode_depth``."""

    def load(self, row: Row) -> Example:
        image = read_rgb(row.image, row.where)
        depth, valid = self.decode_depth(row)
        check_depth_shape(image, depth, row.where)
        valid = valid & np.isfinite(depth)
        return make_example(image, np.where(valid, depth, 0.0), valid, row.focal, self.domain)

    def decode_depth(self, row: Row) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError


class SUNRGBDSource(PairSource):
    """``rgb/rgb/*.jpg`` <-> ``gt/gt/*.png``; metres = uint16 / 1000; > 8 m and 0 invalid.

    The PNGs must already be millimetres (raw SUN RGB-D toolbox PNGs are bit-rotated by 3 and must be
    converted first, as for the official loader).
    """

    info = DatasetInfo("sunrgbd", 0, (0.0, 8.0), (0.0, 8.0))

    def __init__(self, root: str, domain: int | None = None):
        super().__init__(domain)

        def to_depth(p: str) -> str:
            return os.path.join(root, "gt", "gt", os.path.splitext(os.path.basename(p))[0] + ".png")

        self.rows = _glob_rows(root, os.path.join("rgb", "rgb", "*.jpg"), to_depth)

    def decode_depth(self, row):
        depth = read_depth_png(row.depth, 1000.0, row.where)
        return depth, (depth > 0) & (depth <= 8.0)


class IBimsSource(PairSource):
    """iBims-1: ``imagelist.txt`` names; ``rgb|depth|mask_invalid|mask_transp/<name>.png``.

    metres = uint16 * 50 / 65535; invalid wherever mask_invalid * mask_transp == 0.
    """

    info = DatasetInfo("ibims", 0, (0.0, 10.0), (0.0, 10.0))

    def __init__(self, root: str, list_file: str = "", domain: int | None = None):
        super().__init__(domain)
        list_path = resolve_list_file(root, list_file or "imagelist.txt")
        self.rows = []
        for n, line in read_list_lines(list_path):
            for name in line.split():
                stem = os.path.splitext(name)[0]
                self.rows.append(Row(os.path.join(root, "rgb", stem + ".png"),
                                     os.path.join(root, "depth", stem + ".png"), 0.0,
                                     where=f"{list_path}:{n}", extra=(("stem", stem),)))
        if not self.rows:
            raise ListFormatError(f"{list_path}: the list has no rows")
        self.root = root

    def _masks(self, row: Row) -> tuple[str, str]:
        stem = row.get("stem")
        return (os.path.join(self.root, "mask_invalid", stem + ".png"),
                os.path.join(self.root, "mask_transp", stem + ".png"))

    def extra_paths(self, row):
        return self._masks(row)

    def decode_depth(self, row):
        depth = read_depth_png(row.depth, 65535.0 / 50.0, row.where)
        invalid_path, transp_path = self._masks(row)
        keep = read_mask(invalid_path, row.where) & read_mask(transp_path, row.where)
        if keep.shape != depth.shape:
            raise BadDepthError(f"iBims masks are {keep.shape}, depth is {depth.shape} ({row.where})")
        return depth, keep & (depth > 0)


class DIODESource(PairSource):
    """DIODE: ``<scene>/<scan>/<n>.png`` with ``<n>_depth.npy`` (H, W, 1) metres; 0 invalid.

    The ``_depth_mask.npy`` files are ignored, as by the official evaluation (trap 14).
    """

    INDOOR_INFO = DatasetInfo("diode_indoor", 0, INDOOR_RANGE, INDOOR_RANGE, eval_image_size=(480, 640))
    OUTDOOR_INFO = DatasetInfo("diode_outdoor", 1, OUTDOOR_RANGE, OUTDOOR_RANGE, eval_image_size=(480, 640))

    def __init__(self, root: str, outdoor: bool, domain: int | None = None):
        self.info = self.OUTDOOR_INFO if outdoor else self.INDOOR_INFO
        super().__init__(domain)
        self.rows = _glob_rows(root, os.path.join("**", "*.png"), lambda p: p[:-4] + "_depth.npy")

    def decode_depth(self, row):
        depth = read_depth_any(row.depth, 1.0, row.where)
        return depth, depth > 0


def read_hypersim_hdf5(path: str) -> np.ndarray:
    """The ``dataset`` array of a HyperSim ``*.depth_meters.hdf5`` file (needs h5py)."""
    try:
        import h5py
    except ImportError:
        raise ImportError("reading HyperSim .hdf5 depth needs the h5py package (pip install h5py)") from None
    with h5py.File(path, "r") as f:
        return np.asarray(f["dataset"], dtype=np.float32)


def hypersim_distance_to_depth(distance: np.ndarray, focal: float = HYPERSIM_FOCAL) -> np.ndarray:
    """Euclidean ray distance (H, W) metres -> planar depth: d = r * f / sqrt(u^2 + v^2 + f^2).

    u, v are pixel offsets from the image centre ((W-1)/2, (H-1)/2; 511.5, 383.5 at 1024x768).
    """
    h, w = distance.shape
    u = np.arange(w, dtype=np.float32) - np.float32((w - 1) / 2)
    v = np.arange(h, dtype=np.float32) - np.float32((h - 1) / 2)
    f = np.float32(focal)
    norm = np.sqrt(u[None, :] ** 2 + v[:, None] ** 2 + f * f)
    return (distance.astype(np.float32) * f / norm).astype(np.float32)


class HyperSimSource(PairSource):
    """HyperSim: ``<scene>/images/scene_cam_XX_final_preview/*.tonemap.jpg`` with depth in
    ``scene_cam_XX_geometry_hdf5/*.depth_meters.hdf5`` (key ``dataset``, ray distance; NaN invalid).

    Args:
      depth_reader: path -> (H, W) distance array; default :func:`read_hypersim_hdf5` (h5py).
    """

    info = DatasetInfo("hypersim", 0, OUTDOOR_RANGE, OUTDOOR_RANGE, eval_image_size=(480, 640))

    def __init__(self, root: str, domain: int | None = None,
                 depth_reader: Callable[[str], np.ndarray] | None = None):
        super().__init__(domain)
        if depth_reader is None:
            require_h5py()
        self.depth_reader = depth_reader or read_hypersim_hdf5

        def to_depth(p: str) -> str:
            folder, name = os.path.split(p)
            folder = folder[: -len("final_preview")] + "geometry_hdf5"
            return os.path.join(folder, name.replace(".tonemap.jpg", ".depth_meters.hdf5"))

        pattern = os.path.join("*", "images", "scene_cam_*_final_preview", "*.tonemap.jpg")
        self.rows = _glob_rows(root, pattern, to_depth, HYPERSIM_FOCAL)

    def decode_depth(self, row):
        depth = hypersim_distance_to_depth(read_hypersim_distance(row.depth, row.where, self.depth_reader))
        return depth, np.isfinite(depth) & (depth > 0)


def require_h5py() -> None:
    """Raises DataError saying what to install when h5py (needed for HyperSim's .hdf5 depth) is missing."""
    try:
        import h5py  # noqa: F401
    except ImportError:
        raise DataError("reading HyperSim .hdf5 depth needs the h5py package (pip install h5py)") from None


def read_hypersim_distance(path: str, where: str, reader: Callable[[str], np.ndarray]) -> np.ndarray:
    """float32 (H, W) ray distance in metres from one HyperSim depth file through ``reader``; MissingFileError, or
    CorruptFileError for a file that does not read as one (H, W) array (counted and blanked by the bad-example
    policy instead of ending a run)."""
    require_file(path, where)
    try:
        distance = np.asarray(reader(path), dtype=np.float32)
    except (OSError, KeyError, ValueError, TypeError) as e:  # h5py: OSError for a damaged file, KeyError without
        # its "dataset"
        raise CorruptFileError(f"unreadable HyperSim depth {path} ({where}): {type(e).__name__}: "
                               f"{str(e).splitlines()[0] if str(e) else ''}") from None
    if distance.ndim != 2 or distance.size == 0:
        raise CorruptFileError(f"HyperSim depth {path} ({where}) holds shape {distance.shape}, expected (H, W)")
    return distance


class VKITTI2Source(PairSource):
    """Virtual KITTI 2: ``rgb/<scene>/<variant>/frames/rgb/Camera_0/rgb_#####.jpg`` <->
    ``depth/<scene>/<variant>/frames/depth/Camera_0/depth_#####.png``; metres = PNG / 100 (cm); > 80 m
    invalid. The split file ``<split>.txt`` in the root lists image paths relative to the root (ship a
    fixed test.txt: the official split is an unseeded random 8 %); ``split="all"`` takes every Camera_0
    frame.
    """

    info = DatasetInfo("vkitti2", 1, OUTDOOR_RANGE, OUTDOOR_RANGE, kb_crop=True)

    def __init__(self, root: str, split: str = "test", list_file: str = "", domain: int | None = None):
        super().__init__(domain)
        if split == "all" and not list_file:
            pattern = os.path.join("rgb", "**", "frames", "rgb", "Camera_0", "rgb_*.jpg")
            self.rows = _glob_rows(root, pattern, self.depth_path, VKITTI2_FOCAL)
            return
        list_path = resolve_list_file(root, list_file or f"{split}.txt")
        self.rows = [Row(resolve(root, line), self.depth_path(resolve(root, line)), VKITTI2_FOCAL,
                         where=f"{list_path}:{n}") for n, line in read_list_lines(list_path)]
        if not self.rows:
            raise ListFormatError(f"{list_path}: the list has no rows")

    @staticmethod
    def depth_path(image_path: str) -> str:
        parts = image_path.split(os.sep)
        for _ in range(2):  # the 'frames/rgb' directory, then the top-level 'rgb' one
            if "rgb" not in parts:
                raise ListFormatError(f"{image_path}: not in the vKITTI2 rgb/.../frames/rgb/... layout")
            parts[len(parts) - 1 - parts[::-1].index("rgb")] = "depth"
        parts[-1] = parts[-1].replace("rgb_", "depth_", 1).rsplit(".", 1)[0] + ".png"
        return os.sep.join(parts)

    def decode_depth(self, row):
        depth = read_depth_png(row.depth, 100.0, row.where)
        return depth, (depth > 0) & (depth <= 80.0)


class DDADSource(PairSource):
    """DDAD (flat directory): ``*_rgb.png`` <-> ``*_depth.npy`` metres; 0 invalid."""

    # DDAD's config asks for the KB crop but the official loader ignores it; the loader's resize wins.
    info = DatasetInfo("ddad", 1, OUTDOOR_RANGE, OUTDOOR_RANGE, eval_image_size=(352, 1216))

    def __init__(self, root: str, domain: int | None = None):
        super().__init__(domain)
        self.rows = _glob_rows(root, "*_rgb.png", lambda p: p[: -len("_rgb.png")] + "_depth.npy")

    def decode_depth(self, row):
        depth = read_depth_any(row.depth, 1.0, row.where)
        return depth, depth > 0


class DIMLIndoorSource(PairSource):
    """DIML indoor: ``LR/<scene>/color/*_c.png`` <-> ``LR/<scene>/depth_filled/*_depth_filled.png``;
    metres = uint16 / 1000."""

    info = DatasetInfo("diml_indoor", 0, (0.0, 10.0), (0.0, 10.0), eval_image_size=(480, 640))

    def __init__(self, root: str, domain: int | None = None):
        super().__init__(domain)

        def to_depth(p: str) -> str:
            folder, name = os.path.split(_swap_dir(p, "color", "depth_filled"))
            return os.path.join(folder, name[: -len("_c.png")] + "_depth_filled.png")

        self.rows = _glob_rows(root, os.path.join("LR", "*", "color", "*_c.png"), to_depth)

    def decode_depth(self, row):
        depth = read_depth_png(row.depth, 1000.0, row.where)
        return depth, depth > 0


class DIMLOutdoorSource(PairSource):
    """DIML outdoor: ``<scene>/outleft/*.png`` <-> ``<scene>/depthmap/*.png``, metres = uint16 / 1000."""

    info = DatasetInfo("diml_outdoor", 1, (2.0, 80.0), (2.0, 80.0))

    def __init__(self, root: str, domain: int | None = None):
        super().__init__(domain)
        self.rows = _glob_rows(root, os.path.join("*", "outleft", "*.png"),
                               lambda p: _swap_dir(p, "outleft", "depthmap"))

    def decode_depth(self, row):
        depth = read_depth_png(row.depth, 1000.0, row.where)
        return depth, depth > 0
