"""Random-access sources, one per dataset layout, and :func:`make_source` to build one from a SourceConfig."""

from __future__ import annotations

from typing import Any

from data_pipelines.config import SourceConfig
from data_pipelines.sources.base import DATASET_INFO, DatasetInfo, Example
from data_pipelines.sources.bts import KITTISource, NYUSource
from data_pipelines.sources.custom import CustomSource
from data_pipelines.sources.synthetic import SyntheticSource
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
    "DATASET_INFO", "CustomSource", "DDADSource", "DIMLIndoorSource", "DIMLOutdoorSource", "DIODESource",
    "DatasetInfo", "Example", "HyperSimSource", "IBimsSource", "KITTISource", "NYUSource", "SUNRGBDSource",
    "SyntheticSource", "TFDSNYUSource", "VKITTI2Source", "make_source",
]


def _require(cfg: SourceConfig, *fields: str) -> None:
    missing = [f for f in fields if not getattr(cfg, f)]
    if missing:
        raise ValueError(f"source {cfg.name!r} needs {', '.join(missing)} to be set")


def make_source(cfg: SourceConfig, *, training: bool) -> Any:
    """The source for ``cfg``: a grain RandomAccessDataSource of raw examples (see sources/base.py).

    Args:
      cfg: which dataset and where it lives.
      training: training drops rows without ground truth (KITTI ``None``); evaluation keeps them.
    """
    name, dom = cfg.name, cfg.domain
    if name in ("nyu", "kitti"):
        _require(cfg, "root", "list_file")
        cls = NYUSource if name == "nyu" else KITTISource
        return cls(cfg.root, cfg.list_file, cfg.depth_root, keep_missing_depth=not training, domain=dom)
    if name == "nyu_tfds":
        _require(cfg, "root")
        return TFDSNYUSource(cfg.root, cfg.split, domain=dom)
    if name == "custom":
        _require(cfg, "list_file")
        return CustomSource(cfg.list_file, cfg.root, domain=dom)
    if name in ("synthetic_indoor", "synthetic_outdoor"):
        return SyntheticSource(cfg.num_examples, outdoor=name == "synthetic_outdoor", seed=cfg.seed,
                               size=cfg.size, domain=dom)
    _require(cfg, "root")
    if name == "sunrgbd":
        return SUNRGBDSource(cfg.root, domain=dom)
    if name == "ibims":
        return IBimsSource(cfg.root, cfg.list_file, domain=dom)
    if name in ("diode_indoor", "diode_outdoor"):
        return DIODESource(cfg.root, outdoor=name == "diode_outdoor", domain=dom)
    if name == "hypersim":
        return HyperSimSource(cfg.root, domain=dom)
    if name == "vkitti2":
        return VKITTI2Source(cfg.root, cfg.split, cfg.list_file, domain=dom)
    if name == "ddad":
        return DDADSource(cfg.root, domain=dom)
    if name == "diml_indoor":
        return DIMLIndoorSource(cfg.root, domain=dom)
    if name == "diml_outdoor":
        return DIMLOutdoorSource(cfg.root, domain=dom)
    raise ValueError(f"no source for dataset {name!r}")  # unreachable: SourceConfig validates the name
