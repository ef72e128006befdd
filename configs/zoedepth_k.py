"""ZoeD_K: KITTI metric head (normed bins), network input 384x768.

``model.bins`` max_depth is 10 m by default, as the released hub/HF model runs (outputs clipped at 10 m);
the paper's KITTI protocol uses 80: pass it in the config argument, ``configs/zoedepth_k.py:beit_l384,80``.
"""

from zoejax.config_base import base_config, parse_backbone
from zoejax.models.presets import zoed_k


def get_config(arg: str | None = None):
    backbone, _, max_depth = (arg or "").partition(",")
    backbone = parse_backbone(backbone or None)
    size = (64, 96) if backbone == "tiny" else (384, 768)
    return base_config(zoed_k(backbone, float(max_depth or 10.0)), size)
