"""ZoeD_NK: two metric heads (nyu <= 10 m, kitti <= 80 m) and a domain router, network input 384x512.

Official recipe: lr 2.512e-4, decoder lr / 10, domain loss weight 100, 5 "epochs" of 3032 NK steps; validation
every quarter epoch (758 steps) on the indoor set only (NYU in the official run).
"""

from zoejax.config_base import base_config, network_input, parse_backbone, synthetic_data
from zoejax.models.presets import zoed_nk


def get_config(arg: str | None = None):
    backbone = parse_backbone(arg)
    return base_config(zoed_nk(backbone), network_input(backbone, (384, 512)), lr=2.512e-4, midas_lr_factor=10.0,
                       num_train_steps=15160, w_domain=100.0, data=synthetic_data(backbone, nk=True),
                       eval_every_steps=758, eval_datasets="synthetic_indoor")
