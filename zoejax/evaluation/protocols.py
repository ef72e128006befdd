"""The evaluation protocol of every dataset (the paper's Table 7 as the official code runs it), derived from the
one table of datasets (``data_pipelines.sources.DATASETS``).

Per dataset: the crop of the metric mask, the evaluation depth range (metres; predictions are clamped to it and
ground truth is valid strictly inside it), whether flip test-time augmentation is used, the domain label
(ZoeD_NK's head when routing by label), and where the data lives under ``--data-root`` by default.
The depth ranges and domains are the input pipeline's own (each dataset's ``DatasetInfo``) so the mask the
pipeline builds and the clamp the metrics apply can never disagree.
"""

from __future__ import annotations

import dataclasses
import os

from data_pipelines.config import SourceConfig
from data_pipelines.sources import DATASETS, DatasetInfo
from data_pipelines.sources.custom import custom_info


@dataclasses.dataclass(frozen=True)
class EvalProtocol:
    """How one dataset is scored (zoedepth-training-eval.md 5.4).

    Attributes:
      dataset: the ``data_pipelines`` dataset key.
      crop: "eigen" (fixed NYU box), "garg" (fractions of the ground truth's size) or None.
      min_depth, max_depth: evaluation range in metres.
      flip_tta: average the prediction with the mirrored prediction of the mirrored image (official: True).
      domain: 0 indoor (NYU head), 1 outdoor (KITTI head).
      layout: default ``SourceConfig`` fields relative to ``--data-root`` (root, list_file, depth_root).
      silog, inclusive_range, clamp_predictions, min_valid_pixels: the scoring rules (``metrics.compute_metrics``:
        ``silog``, ``inclusive``, ``clamp``, ``min_valid``); ZoeDepth's by default, ``SCORING["da2"]`` for Depth
        Anything V2's metric validation.
    """

    dataset: str
    crop: str | None
    min_depth: float
    max_depth: float
    domain: int
    flip_tta: bool = True
    layout: tuple[tuple[str, str], ...] = ()
    silog: str = "zoedepth"
    inclusive_range: bool = False
    clamp_predictions: bool = True
    min_valid_pixels: int = 1

    def source(self, data_root: str = "", **overrides: str) -> SourceConfig:
        """The evaluation ``SourceConfig``: the default layout under ``data_root``, then ``overrides``
        (absolute paths, or paths relative to ``data_root``)."""
        fields = dict(self.layout)
        fields.update({k: v for k, v in overrides.items() if v not in (None, "")})
        # Absolute, so that the source does not resolve the list file against the (already joined) image root.
        paths = {k: os.path.abspath(os.path.join(data_root, v)) if data_root and not os.path.isabs(v) else v
                 for k, v in fields.items() if k in ("root", "list_file", "depth_root")}
        rest = {k: v for k, v in fields.items() if k not in paths}
        return SourceConfig(self.dataset, split="test", **paths, **rest)


# Scoring rules by name (a dataset row's ``EvalLayout.scoring``). "da2": Depth Anything V2's metric validation
# (DepthAnything/Depth-Anything-V2@a561b84 metric_depth): its SILog, gt valid on the closed range, predictions not
# clamped, images with fewer than 10 valid pixels skipped, no flip TTA.
SCORING: dict[str, dict[str, object]] = {
    "zoedepth": {},
    "da2": {"silog": "da2", "inclusive_range": True, "clamp_predictions": False, "min_valid_pixels": 10,
            "flip_tta": False},
}


def _from_info(info: DatasetInfo, crop: str | None, layout: tuple[tuple[str, str], ...] = (),
               scoring: str = "zoedepth") -> EvalProtocol:
    lo, hi = info.eval_range
    return EvalProtocol(info.name, crop, lo, hi, info.domain, layout=layout, **SCORING[scoring])


# Every dataset of the table that has an evaluation protocol, in the table's order.
PROTOCOLS: dict[str, EvalProtocol] = {name: _from_info(d.info, d.protocol.crop, d.protocol.layout, d.protocol.scoring)
                                      for name, d in DATASETS.items() if d.protocol is not None}


def custom_protocol(domain: int) -> EvalProtocol:
    """The custom dataset's protocol for ``domain`` 0 (indoor, 1e-3..10 m) or 1 (outdoor, 1e-3..80 m): the range
    and head its source uses (``data_pipelines.sources.custom.custom_info``)."""
    return _from_info(custom_info(domain), PROTOCOLS["custom"].crop)


# The paper's zero-shot groups (official ALL_INDOOR / ALL_OUTDOOR; diml_indoor is in neither).
GROUPS: dict[str, tuple[str, ...]] = {
    "all_indoor": ("nyu", "ibims", "sunrgbd", "diode_indoor", "hypersim"),
    "all_outdoor": ("kitti", "diml_outdoor", "diode_outdoor", "vkitti2", "ddad"),
}


def resolve_datasets(spec: str) -> list[str]:
    """"nyu,kitti" or "all_indoor" (or a mix) -> dataset keys in order, duplicates dropped; unknown names raise
    ValueError listing the choices."""
    names: list[str] = []
    for part in (p.strip().lower() for p in spec.split(",") if p.strip()):
        for name in GROUPS.get(part, (part,)):
            if name not in PROTOCOLS:
                raise ValueError(f"unknown dataset {name!r}; choose from {', '.join(PROTOCOLS)} "
                                 f"or the groups {', '.join(GROUPS)}")
            if name not in names:
                names.append(name)
    if not names:
        raise ValueError("no dataset given")
    return names


def describe() -> str:
    """The protocol table as text (``zoejax-eval --list-protocols``)."""
    lines = [f"{'dataset':<18}{'crop':<8}{'min m':>7}{'max m':>7}  {'flip':<5}{'domain':<8}{'scoring':<9}"
             "default layout"]
    for p in PROTOCOLS.values():
        layout = ", ".join(f"{k}={v}" for k, v in p.layout) or "-"
        lines.append(f"{p.dataset:<18}{p.crop or '-':<8}{p.min_depth:>7g}{p.max_depth:>7g}  "
                     f"{'yes' if p.flip_tta else 'no':<5}{'outdoor' if p.domain else 'indoor':<8}"
                     f"{'da2' if p.silog == 'da2' else 'zoedepth':<9}{layout}")
    return "\n".join(lines)
