"""Depth Anything relative depth: the DINOv2 encoder and the Depth Anything DPT head with its ReLU output (relative
inverse depth), trained with the scale-and-shift invariant loss in disparity, as ``configs/midas_relative.py``
trains MiDaS' DPT. Arg: the DINOv2 preset (``dinov2_vitl14`` default, ``dinov2_vitb14``, ``dinov2_vits14``;
``dinov2_tiny`` for tests); V1's taps (the last four blocks, the model of ``depth_anything_vitl14.pth``), or V2's
with ``--config.model.backbone.hooks='(4, 11, 17, 23)'`` (L; S/B ``(2, 5, 8, 11)``).

NOT an official recipe: Depth Anything V1 released its relative models and the metric fine-tune code, not the code
that trained the relative models (V2 likewise), so what follows is zoejax's reading of the V1 paper (Yang et al.,
CVPR 2024, Sec. 3-4) where it says something, and zoejax's choice where it does not. From the paper: the encoder
is DINOv2, the decoder DPT; the labelled loss is MiDaS' affine-invariant one, in disparity (each map shifted by its
median and scaled by its mean absolute deviation, then the mean absolute difference: ``relative_data="ssitrim"``
with ``relative_trim=0``, no gradient term); AdamW, the encoder at lr 5e-6 and the fresh decoder at 10x (the rates
the public V2 metric code also uses); a linear decay (``schedule="poly"``, ``poly_power=1``); horizontal flips only;
518x518 training crops. Assumed here: the cover resize then a random 518x518 crop (``train_resize="cover_crop"``,
the V2 metric code's), the median over valid pixels (``relative_median="valid"``), weight decay 0.01, batch 16, no
gradient clipping, 100,000 steps. Left out: the paper's 62M pseudo-labelled images with strong perturbations
(colour jitter, blur, CutMix) and its feature-alignment loss to a frozen DINOv2: neither is built here.

Start: ``--config.init_from=depth_anything_vitl14.pth`` (or a zoejax folder of a relative Depth Anything model)
fine-tunes a released model; without it the model starts from a random initialisation. Data: by default synthetic
rooms and streets mixed by example; real data as custom CSV/JSONL lists, as ``configs/midas_relative.py`` says
(``kind`` depth or disparity per row).
"""

from __future__ import annotations

import ml_collections

from data_pipelines.config import AugmentConfig, DataConfig, SourceConfig
from zoejax.config_base import base_config, parse_backbone
from zoejax.models.depth_anything_config import da_relative

TRAIN_INPUT = (518, 518)
TINY_INPUT = {"dinov2_tiny": (28, 28)}  # the test fixture: a 2x2 token grid
TINY_FRAMES = (28, 42)  # the tiny recipe's synthetic frames: covered at scale 1, then cropped
LR = 5e-6  # the encoder's; the DPT head's is 10x


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    backbone = parse_backbone(arg or "dinov2_vitl14")
    tiny = backbone in TINY_INPUT
    frames = TINY_FRAMES if tiny else None  # None: the synthetic default, 480x640
    sources = tuple(SourceConfig(name, num_examples=4096, size=frames)
                    for name in ("synthetic_indoor", "synthetic_outdoor"))
    data = DataConfig(sources=sources, mix="example", train_resize="cover_crop", cover_multiple=14,
                      augment=AugmentConfig(rotate_degrees=0.0, photometric_prob=0.0, flip_prob=0.5))
    config = base_config(da_relative(backbone), TINY_INPUT.get(backbone, TRAIN_INPUT), lr=10.0 * LR,
                         num_train_steps=100_000, data=data, eval_every_steps=5000,
                         eval_datasets="synthetic_indoor")
    optim = config.optim
    optim.schedule, optim.poly_power = "poly", 1.0  # linear decay
    optim.encoder_lr_factor = optim.pos_enc_lr_factor = 10.0  # pretrained.*: 5e-6
    optim.midas_lr_factor = 1.0  # depth_head.*: 5e-5
    optim.weight_decay, optim.rel_pos_weight_decay = 0.01, True
    optim.cycle_momentum, optim.max_momentum = False, 0.9  # Adam's b1, constant
    optim.grad_clip_norm = 0.0
    loss = config.loss
    loss.objective = "da_relative"
    loss.relative_data, loss.relative_trim, loss.relative_median = "ssitrim", 0.0, "valid"
    loss.w_relative_grad = 0.0
    return config
