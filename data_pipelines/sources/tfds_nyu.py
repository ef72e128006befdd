"""NYU Depth v2 through the ``tensorflow-datasets`` builder ``nyu_depth_v2`` (an already prepared data_dir).

The tfds records are ``{"image": uint8 (480, 640, 3), "depth": float16 (480, 640) metres}`` (the FastDepth
export of NYU); 0 depth = invalid. This source never downloads: it refuses an unprepared data_dir, so
prepare it once with ``tfds build nyu_depth_v2 --data_dir DIR`` (needs TensorFlow and h5py) or copy a
prepared directory (ArrayRecord format, readable without TensorFlow).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from data_pipelines.errors import CorruptFileError, DataError
from data_pipelines.sources.base import (
    INDOOR_RANGE,
    NYU_BRIGHTNESS,
    DatasetInfo,
    Example,
    check_depth_shape,
    make_example,
)
from data_pipelines.sources.bts import NYU_FOCAL

TFDS_NAME = "nyu_depth_v2"


def _default_builder(data_dir: str) -> Any:
    # tfds imports its dependencies through etils' lazy-import hook; a warning shown during that import makes the
    # warnings module import tracemalloc inside the hook, which then fails ('LazyModule' object is not callable).
    import tracemalloc  # noqa: F401

    import tensorflow_datasets as tfds  # heavy import, only when this source is used

    return tfds.builder(TFDS_NAME, data_dir=data_dir)


class TFDSNYUSource:
    """Random access to a prepared tfds ``nyu_depth_v2`` split.

    Args:
      data_dir: the tfds data_dir containing ``nyu_depth_v2/<version>/``.
      split: ``train`` or ``validation`` (tfds split syntax such as ``train[:10]`` works too).
      domain: override of the indoor domain label.
      builder: a builder object (anything with ``is_prepared()`` and ``as_data_source(split=...)``) to use
        instead of ``tfds.builder`` (tests, custom builder versions). Not pickled: the source re-creates it
        from ``data_dir`` in worker processes.
    """

    info = DatasetInfo("nyu_tfds", 0, INDOOR_RANGE, INDOOR_RANGE, NYU_BRIGHTNESS)

    def __init__(self, data_dir: str, split: str = "train", domain: int | None = None, builder: Any = None):
        self.data_dir = data_dir
        self.split = split
        self.domain = self.info.domain if domain is None else int(domain)
        builder = builder if builder is not None else _default_builder(data_dir)
        if not builder.is_prepared():
            raise DataError(f"tfds dataset {TFDS_NAME!r} is not prepared in data_dir {data_dir!r}; this "
                            f"pipeline never downloads. Run `tfds build {TFDS_NAME} --data_dir "
                            f"{data_dir}` first.")
        self._builder = builder
        self._records = builder.as_data_source(split=split)
        self._len = len(self._records)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_builder"] = state["_records"] = None  # array-record readers hold file handles
        return state

    def _data(self) -> Any:
        if self._records is None:
            self._builder = _default_builder(self.data_dir)
            self._records = self._builder.as_data_source(split=self.split)
        return self._records

    def __len__(self) -> int:
        return self._len

    def __getitem__(self, index: int) -> Example:
        record = self._data()[index]
        where = self.describe(index)
        image = np.asarray(record["image"])
        depth = np.asarray(record["depth"], dtype=np.float32)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise CorruptFileError(f"{where}: image has shape {image.shape} and dtype {image.dtype}")
        check_depth_shape(image, depth, where)
        valid = np.isfinite(depth) & (depth > 0)
        return make_example(image, np.where(valid, depth, 0.0), valid, NYU_FOCAL, self.domain,
                            dataset=self.info.name)

    def describe(self, index: int) -> str:
        return f"tfds {TFDS_NAME} split {self.split!r} record {index} in {self.data_dir}"

    def check_files(self) -> None:
        """Nothing to check beyond ``is_prepared`` (done at construction)."""

    def __repr__(self) -> str:
        return f"TFDSNYUSource(data_dir={self.data_dir!r}, split={self.split!r}, n={self._len})"
