"""ZoeD_N: NYU Depth v2 metric head (softplus bins, attractors 16/8/4/1), network input 384x512.

Official recipe: AdamW lr 1.61e-4 (encoder / 10), OneCycle over 5 epochs of 1515 steps at batch 16, validation
every quarter epoch (378 steps) keeping the best checkpoint by abs_rel. The default data are synthetic rooms
(nothing to download); for NYU set data.sources and ``--config.eval.datasets=nyu --config.eval.data_root=...``.
"""

from zoejax.config_base import base_config, network_input, parse_backbone, synthetic_data
from zoejax.models.presets import zoed_n


def get_config(arg: str | None = None):
    backbone = parse_backbone(arg)
    return base_config(zoed_n(backbone), network_input(backbone, (384, 512)), num_train_steps=7575,
                       data=synthetic_data(backbone), eval_every_steps=378, eval_datasets="synthetic_indoor")
