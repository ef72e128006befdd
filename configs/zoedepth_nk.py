"""ZoeD_NK: two metric heads (nyu <= 10 m, kitti <= 80 m) and a domain router, network input 384x512."""

from zoejax.config_base import base_config, parse_backbone
from zoejax.models.presets import zoed_nk


def get_config(arg: str | None = None):
    backbone = parse_backbone(arg)
    size = (64, 96) if backbone == "tiny" else (384, 512)
    return base_config(zoed_nk(backbone), size)
