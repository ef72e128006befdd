"""Synthetic RGB-D frames rendered on the fly (no download): the default dataset for demos and tests."""

from __future__ import annotations

import dataclasses

from data_pipelines.sources.base import (
    INDOOR_RANGE,
    NYU_BRIGHTNESS,
    OUTDOOR_RANGE,
    DatasetInfo,
    Example,
    make_example,
)
from data_pipelines.synthetic.scenes import INDOOR, OUTDOOR, render_frame

DEFAULT_SIZE = {INDOOR: (480, 640), OUTDOOR: (352, 1216)}
INDOOR_INFO = DatasetInfo("synthetic_indoor", 0, INDOOR_RANGE, INDOOR_RANGE, NYU_BRIGHTNESS)
OUTDOOR_INFO = DatasetInfo("synthetic_outdoor", 1, OUTDOOR_RANGE, OUTDOOR_RANGE)


@dataclasses.dataclass(frozen=True)
class SyntheticSource:
    """``num_examples`` procedural frames of one domain; frame i depends only on (seed, i, domain).

    Attributes:
      num_examples: dataset length.
      outdoor: False = rooms (depth <= 10 m), True = streets (<= 80 m, sky invalid).
      seed: scene seed.
      size: native (H, W); default 480x640 indoor, 352x1216 outdoor (NYU / KITTI-crop sized).
      domain: label override (default 0 indoor, 1 outdoor).
    """

    num_examples: int
    outdoor: bool = False
    seed: int = 0
    size: tuple[int, int] | None = None
    domain: int | None = None

    @property
    def info(self):
        return OUTDOOR_INFO if self.outdoor else INDOOR_INFO

    def __len__(self) -> int:
        return self.num_examples

    def __getitem__(self, index: int) -> Example:
        scene_domain = OUTDOOR if self.outdoor else INDOOR
        h, w = self.size or DEFAULT_SIZE[scene_domain]
        image, depth, focal = render_frame(self.seed, int(index) % self.num_examples, scene_domain, h, w)
        domain = self.info.domain if self.domain is None else self.domain
        return make_example(image, depth, depth > 0, focal, domain, dataset=self.info.name)

    def describe(self, index: int) -> str:
        return f"synthetic frame {index} (seed {self.seed}, {'outdoor' if self.outdoor else 'indoor'})"

    def check_files(self) -> None:
        """Nothing on disk."""
