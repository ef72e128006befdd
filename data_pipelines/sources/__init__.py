"""The table of datasets: one row per dataset a ``SourceConfig`` may name, with its kind, its evaluation
protocol (crop and default layout) and its source builder; :func:`make_source` builds a source from it.

Each dataset's constants (``DatasetInfo``: name, domain, depth ranges, crops) are written once, next to its
loader; this table refers to them, ``SourceConfig`` takes its names from it and ``zoejax.evaluation.protocols``
derives the protocols from it. Adding a dataset is one loader and one row.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from data_pipelines.sources.base import DatasetInfo, Example
from data_pipelines.sources.bts import KITTISource, NYUSource
from data_pipelines.sources.custom import CUSTOM_INFO, CustomSource
from data_pipelines.sources.da2_splits import HypersimSplitSource, VKITTI2SplitSource
from data_pipelines.sources.synthetic import INDOOR_INFO, OUTDOOR_INFO, SyntheticSource
from data_pipelines.sources.tfds_nyu import TFDSNYUSource
from data_pipelines.sources.zero_shot import (
    DDADSource,
    DIMLIndoorSource,
    DIMLOutdoorSource,
    DIODESource,
    HyperSimSource,
    IBimsSource,
    SUNRGBDSource,
    VKITTI2Source,
)

__all__ = [
    "DATASETS", "CustomSource", "DDADSource", "DIMLIndoorSource", "DIMLOutdoorSource", "DIODESource", "Dataset",
    "DatasetInfo", "EvalLayout", "Example", "HyperSimSource", "HypersimSplitSource", "IBimsSource", "KITTISource",
    "NYUSource", "SUNRGBDSource", "SyntheticSource", "TFDSNYUSource", "VKITTI2Source", "VKITTI2SplitSource",
    "make_source",
]

KINDS = {
    "list": "a BTS list file of image / depth pairs under a root",
    "folder": "the dataset's own folder layout (found by globbing)",
    "split": "a split file of 'image depth' path pairs (Depth Anything V2's training lists)",
    "tfds": "a prepared tensorflow-datasets split",
    "custom": "your CSV / JSONL list (data_pipelines/sources/custom.py)",
    "synthetic": "procedural scenes rendered on the fly (nothing on disk)",
}


@dataclasses.dataclass(frozen=True)
class EvalLayout:
    """How a dataset is evaluated (zoedepth-training-eval.md 5.4): the metric mask's crop ("eigen": the fixed
    NYU box, "garg": fractions of the ground truth's size, None) and its default ``SourceConfig`` fields relative
    to ``zoejax-eval --data-root`` (root, list_file, depth_root), and its scoring rules by name
    (``zoejax.evaluation.protocols.SCORING``: "zoedepth", or "da2" for Depth Anything V2's metric validation)."""

    crop: str | None
    layout: tuple[tuple[str, str], ...] = ()
    scoring: str = "zoedepth"


@dataclasses.dataclass(frozen=True)
class Dataset:
    """One row of the table.

    Attributes:
      info: the dataset's constants (its ``name``, domain, training / evaluation depth ranges, crops).
      kind: how it is stored, a key of ``KINDS``.
      build: (SourceConfig, training) -> the grain RandomAccessDataSource of raw examples (sources/base.py);
        training drops rows without ground truth (KITTI ``None``), evaluation keeps them.
      protocol: how it is evaluated; None = a training set only.
    """

    info: DatasetInfo
    kind: str
    build: Callable[[Any, bool], Any]
    protocol: EvalLayout | None

    @property
    def name(self) -> str:
        return self.info.name


def _require(cfg: Any, *fields: str) -> None:
    missing = [f for f in fields if not getattr(cfg, f)]
    if missing:
        raise ValueError(f"source {cfg.name!r} needs {', '.join(missing)} to be set")


def _bts(cls: type) -> Callable[[Any, bool], Any]:
    def build(cfg: Any, training: bool) -> Any:
        _require(cfg, "root", "list_file")
        return cls(cfg.root, cfg.list_file, cfg.depth_root, keep_missing_depth=not training, domain=cfg.domain)
    return build


def _folder(make: Callable[[Any], Any]) -> Callable[[Any, bool], Any]:
    def build(cfg: Any, training: bool) -> Any:
        _require(cfg, "root")
        return make(cfg)
    return build


def _split(cls: type) -> Callable[[Any, bool], Any]:
    def build(cfg: Any, training: bool) -> Any:
        _require(cfg, "list_file")
        return cls(cfg.root, cfg.list_file, domain=cfg.domain)
    return build


def _tfds(cfg: Any, training: bool) -> Any:
    _require(cfg, "root")
    return TFDSNYUSource(cfg.root, cfg.split, domain=cfg.domain)


def _custom(cfg: Any, training: bool) -> Any:
    _require(cfg, "list_file")
    return CustomSource(cfg.list_file, cfg.root, domain=cfg.domain)


def _synthetic(outdoor: bool) -> Callable[[Any, bool], Any]:
    def build(cfg: Any, training: bool) -> Any:
        return SyntheticSource(cfg.num_examples, outdoor=outdoor, seed=cfg.seed, size=cfg.size, domain=cfg.domain)
    return build


def _eval(crop: str | None, scoring: str = "zoedepth", **layout: str) -> EvalLayout:
    return EvalLayout(crop, tuple(layout.items()), scoring)


DATASETS: dict[str, Dataset] = {d.name: d for d in (
    Dataset(NYUSource.info, "list", _bts(NYUSource),
            _eval("eigen", root="nyu/official_splits/test", list_file="nyu/nyudepthv2_test_files_with_gt.txt")),
    Dataset(TFDSNYUSource.info, "tfds", _tfds, None),
    Dataset(KITTISource.info, "list", _bts(KITTISource),
            _eval("garg", root="kitti/raw", depth_root="kitti/gts",
                  list_file="kitti/kitti_eigen_test_files_with_gt.txt")),
    Dataset(SUNRGBDSource.info, "folder", _folder(lambda c: SUNRGBDSource(c.root, domain=c.domain)),
            _eval("eigen", root="sunrgbd")),
    Dataset(IBimsSource.info, "folder", _folder(lambda c: IBimsSource(c.root, c.list_file, domain=c.domain)),
            _eval("eigen", root="ibims")),
    Dataset(DIODESource.INDOOR_INFO, "folder",
            _folder(lambda c: DIODESource(c.root, outdoor=False, domain=c.domain)),
            _eval("eigen", root="diode_indoor")),
    Dataset(DIODESource.OUTDOOR_INFO, "folder",
            _folder(lambda c: DIODESource(c.root, outdoor=True, domain=c.domain)),
            _eval("garg", root="diode_outdoor")),
    Dataset(HyperSimSource.info, "folder", _folder(lambda c: HyperSimSource(c.root, domain=c.domain)),
            _eval("eigen", root="hypersim")),
    Dataset(VKITTI2Source.info, "folder",
            _folder(lambda c: VKITTI2Source(c.root, c.split, c.list_file, domain=c.domain)),
            _eval("garg", root="vkitti2")),
    # Depth Anything V2's metric training sets (configs/depth_anything_v2_metric_{hypersim,vkitti}.py); Hypersim's
    # split source also reads the official splits/hypersim/val.txt, scored as the official validation.
    Dataset(HypersimSplitSource.info, "split", _split(HypersimSplitSource),
            _eval(None, "da2", root="hypersim", list_file="hypersim/val.txt")),
    Dataset(VKITTI2SplitSource.info, "split", _split(VKITTI2SplitSource), None),
    Dataset(DDADSource.info, "folder", _folder(lambda c: DDADSource(c.root, domain=c.domain)),
            _eval("garg", root="ddad")),
    Dataset(DIMLIndoorSource.info, "folder", _folder(lambda c: DIMLIndoorSource(c.root, domain=c.domain)),
            _eval("eigen", root="diml_indoor")),
    Dataset(DIMLOutdoorSource.info, "folder", _folder(lambda c: DIMLOutdoorSource(c.root, domain=c.domain)),
            _eval("garg", root="diml_outdoor")),
    Dataset(CUSTOM_INFO, "custom", _custom, _eval(None)),
    Dataset(INDOOR_INFO, "synthetic", _synthetic(False), _eval(None)),
    Dataset(OUTDOOR_INFO, "synthetic", _synthetic(True), _eval(None)),
)}


def make_source(cfg: Any, *, training: bool) -> Any:
    """The source of ``cfg`` (a ``data_pipelines.config.SourceConfig``): a grain RandomAccessDataSource of raw
    examples (see sources/base.py). ``training`` drops rows without ground truth (KITTI ``None``); evaluation
    keeps them."""
    if cfg.name not in DATASETS:  # SourceConfig validates the name; this guards direct callers
        raise ValueError(f"no source for dataset {cfg.name!r}; choose one of {', '.join(DATASETS)}")
    return DATASETS[cfg.name].build(cfg, training)
