"""ZoeD_K: KITTI metric head (normed bins), network input 384x768.

``model.bins`` max_depth is 10 m by default, as the released hub/HF model runs (outputs clipped at 10 m);
the paper's KITTI protocol uses 80: pass it in the config argument, ``configs/zoedepth_k.py:beit_l384,80``.
Official recipe: 5 epochs of 1448 steps at batch 16, validation every quarter epoch (362 steps).
"""

from zoejax.config_base import base_config, network_input, parse_backbone, synthetic_data
from zoejax.models.presets import zoed_k


def get_config(arg: str | None = None):
    backbone, _, max_depth = (arg or "").partition(",")
    backbone = parse_backbone(backbone or None)
    max_depth = float(max_depth or 10.0)
    return base_config(zoed_k(backbone, max_depth), network_input(backbone, (384, 768)), num_train_steps=7240,
                       data=synthetic_data(backbone, outdoor=True), eval_every_steps=362,
                       eval_datasets="synthetic_outdoor")
