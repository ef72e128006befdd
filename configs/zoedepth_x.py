"""ZoeD_X (the paper's ZoeD-X-N): the ZoeD_N architecture and recipe trained on NYU *without* MiDaS
relative-depth pre-training: every weight starts from random initialisation (``init_from`` is "").

The paper uses it to measure what the relative-depth pre-training of ZoeD_M12_N buys. Point the data at NYU
(see README "Data") and evaluate on it:

  zoejax-train --config configs/zoedepth_x.py --workdir runs/x \\
      --config.eval.datasets=nyu --config.eval.data_root=/data
"""

from zoejax.config_base import base_config, network_input, parse_backbone, synthetic_data
from zoejax.models.presets import zoed_n


def get_config(arg: str | None = None):
    backbone = parse_backbone(arg)
    config = base_config(zoed_n(backbone), network_input(backbone, (384, 512)), num_train_steps=7575,
                         data=synthetic_data(backbone), eval_every_steps=378, eval_datasets="synthetic_indoor")
    config.init_from = ""  # no MiDaS pre-training: random init (do not pass a MiDaS checkpoint here)
    return config
