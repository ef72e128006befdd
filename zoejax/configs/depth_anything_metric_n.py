"""Depth Anything V1 metric, indoor: ZoeD_N's head (softplus bins, nyu <= 10 m) on DINOv2-L/14 + the Depth Anything
DPT head, the model of ``depth_anything_metric_depth_indoor.pt``; network input 392x518 (multiples of 14).

Official recipe (LiheYoung/Depth-Anything@1d03336, metric_depth ``train_mono.py -m zoedepth -d nyu``,
``config_zoedepth.json``): ZoeD_N's (AdamW lr 1.61e-4, wd 0.01, OneCycle div 1 / final 1e4 / pct 0.7 with cycled
momentum, batch 16, 5 epochs of 1515 steps, validation every quarter epoch) with the learning-rate factors 50 / 50 /
50 for the decoder (``core/depth_head``), the encoder and its position embedding (``pos_embed``). The core starts
from the relative model: ``--config.init_from=depth_anything_vitl14.pth`` (its encoder and DPT head; the metric head
is initialised fresh), as the official ``DepthAnythingCore.build`` loads it. Arg: the backbone preset
(``dinov2_vitl14``; ``dinov2_tiny`` for tests). The default data are synthetic rooms; for NYU set data.sources.
"""

from data_pipelines.config import DataConfig
from zoejax.config_base import base_config, parse_backbone
from zoejax.models.presets import da1_metric_n

OFFICIAL_INPUT = (392, 518)  # config_zoedepth.json img_size
TINY_INPUT = {"dinov2_tiny": (28, 42)}  # the test fixture: a 2x3 token grid
LR_FACTOR = 50.0  # midas_lr_factor, encoder_lr_factor, pos_enc_lr_factor


def recipe(model, backbone: str, *, lr: float, num_train_steps: int, eval_every_steps: int, nk: bool = False,
           w_domain: float = 0.0):
    """The run of a DA1 metric model: ``base_config`` with the Depth Anything input size and lr factors."""
    size = TINY_INPUT.get(backbone, OFFICIAL_INPUT)
    data = DataConfig.synthetic(4096, size=TINY_INPUT.get(backbone), nk=nk)  # frames 480x640 unless tiny
    config = base_config(model, size, lr=lr, midas_lr_factor=LR_FACTOR, num_train_steps=num_train_steps,
                         w_domain=w_domain, data=data, eval_every_steps=eval_every_steps,
                         eval_datasets="synthetic_indoor")
    config.optim.encoder_lr_factor = LR_FACTOR
    config.optim.pos_enc_lr_factor = LR_FACTOR
    return config


def get_config(arg: str | None = None):
    backbone = parse_backbone(arg or "dinov2_vitl14")
    return recipe(da1_metric_n(backbone), backbone, lr=1.61e-4, num_train_steps=7575, eval_every_steps=378)
