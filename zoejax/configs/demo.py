"""The demo (``make demo``): a small ZoeD_N (6-block BEiT of width 192) trained from scratch on synthetic rooms.

Sized to train in a few minutes on a 2-core CPU: 96x128 network input, batch 4, 160 steps. Without MiDaS
weights the encoder trains at the full learning rate; clipping at 1.0 instead of 0.1 lets the random init move
fast. The held-out evaluation uses rooms of a scene seed training never sees.

  zoejax-train --config configs/demo.py --workdir runs/demo       # the same training without the demo's extras
"""

from data_pipelines.config import DataConfig
from zoejax.config_base import base_config
from zoejax.models.presets import zoed_n

SIZE = (96, 128)


def get_config(arg: str | None = None):
    backbone = arg or "small"
    config = base_config(zoed_n(backbone), SIZE, lr=3e-4, num_train_steps=160,
                         data=DataConfig.synthetic(4096, size=SIZE), eval_datasets="synthetic_indoor")
    config.global_batch_size = 4
    config.log_every_steps = 20
    config.checkpoint_every_steps = 160
    config.mesh_shape = (-1, 1, 1)
    config.optim.encoder_lr_factor = 1.0
    config.optim.pos_enc_lr_factor = 1.0
    config.optim.grad_clip_norm = 1.0
    config.eval.num_examples = 16
    config.eval.batch_size = 4
    config.eval.flip_tta = True  # the final-evaluation protocol (official evaluate.py)
    return config
