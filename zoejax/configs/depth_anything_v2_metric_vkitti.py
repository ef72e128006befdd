"""Depth Anything V2 metric, outdoor: depth = sigmoid * 80 m, the model of
``depth_anything_v2_metric_vkitti_{vits,vitb,vitl}.pth``, fine-tuned on Virtual KITTI 2 at 518x518.

The official recipe is the Hypersim one (``depth_anything_v2_metric_hypersim.py``: AdamW lr 5e-6 encoder / 5e-5
head, poly 0.9, 120 epochs at batch 32, the shifted SILog loss, cover-resize to multiples of 14 and random 518x518
crops, flips) with ``--dataset vkitti --max-depth 80``: the split lists 19,559 Camera_0 frames, so an epoch is
ceil(19559 / 8) // 4 = 611 steps and the run 73,320. The official run validates on its KITTI val list (652 frames,
no crop); zoejax-train validates every epoch on ``eval.datasets`` (synthetic streets by default). For the dataset::

  --config.data.sources='[{"name": "vkitti2_da2", "root": "/data/vkitti2", "list_file": "train.txt"}]'

Start the encoder from the relative model with ``--config.init_from=depth_anything_v2_vitl.pth``. Arg: the DINOv2
preset (``dinov2_vitl14`` default; ``dinov2_tiny`` for tests).
"""

from __future__ import annotations

from zoejax.config_base import parse_backbone
from zoejax.configs.depth_anything_v2_metric_hypersim import recipe


def get_config(arg: str | None = None):
    return recipe("vkitti", parse_backbone(arg or "dinov2_vitl14"))
