"""ZoeD_N: NYU Depth v2 metric head (softplus bins, attractors 16/8/4/1), network input 384x512."""

from zoejax.config_base import base_config, parse_backbone
from zoejax.models.presets import zoed_n


def get_config(arg: str | None = None):
    backbone = parse_backbone(arg)
    size = (64, 96) if backbone == "tiny" else (384, 512)
    return base_config(zoed_n(backbone), size)
