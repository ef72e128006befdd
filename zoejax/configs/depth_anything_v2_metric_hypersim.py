"""Depth Anything V2 metric, indoor: the DINOv2 encoder and Depth Anything DPT head with depth = sigmoid * 20 m, the
model of ``depth_anything_v2_metric_hypersim_{vits,vitb,vitl}.pth``, fine-tuned on Hypersim at 518x518.

Official recipe (DepthAnything/Depth-Anything-V2@a561b84, metric_depth ``dist_train.sh`` and ``train.py``): 120 epochs
at batch 4 x 8 GPUs (32); AdamW, betas (0.9, 0.999), weight decay 0.01 on every parameter, lr 5e-6 for the encoder
(``pretrained.*``, its position embedding included) and 10x, 5e-5, for the DPT head (here ``optim.lr`` = 5e-5 with
the encoder and position factors 10 and the decoder factor 1); the poly schedule (power 0.9, one step late as the
official loop sets it: ``zoejax.training.optim.poly``), no gradient clipping, no warm-up; the loss
sqrt(mean(d^2) - 0.5 mean(d)^2), d = ln gt - ln pred, on 0.001 <= gt <= max_depth (``loss.objective='da2_metric'``);
frames resized keeping their aspect to cover 518x518 at multiples of 14 (image bicubic, depth and mask nearest:
``data.train_resize='cover_crop'``), a random 518x518 crop and a horizontal flip with probability 0.5, no other
augmentation. Only the encoder starts from the relative model: ``--config.init_from=depth_anything_v2_vitl.pth``
(its DPT head is initialised afresh, as the official ``load_state_dict`` of the ``pretrained`` keys). Arg: the DINOv2
preset (``dinov2_vitl14`` default, ``dinov2_vitb14``, ``dinov2_vits14``; ``dinov2_tiny`` for tests).

Epoch length: the official split lists 59,543 Hypersim training frames (as a public reproduction counts the file;
the copy read here lacks it), so one epoch is ceil(59543 / 8) // 4 = 1860 steps and the run 223,200; for another list
set ``num_train_steps`` to 120 * ``steps_per_epoch(len(list))``. The default data are synthetic rooms; for Hypersim::

  --config.data.sources='[{"name": "hypersim_da2", "root": "/data/hypersim", "list_file": "train.txt"}]'

Validation: the official run scores its Hypersim val list at 518x686 every epoch; zoejax-train validates every epoch
at ``input_size`` on ``eval.datasets`` (synthetic rooms by default). Score the result with ``zoejax-eval``.
"""

from __future__ import annotations

import math

import ml_collections

from data_pipelines.config import AugmentConfig, DataConfig
from zoejax.config_base import base_config, parse_backbone
from zoejax.models.depth_anything_config import MAX_DEPTH, da2_metric

OFFICIAL_INPUT = (518, 518)  # --img-size 518: square crops
TINY_INPUT = {"dinov2_tiny": (28, 28)}  # the test fixture: a 2x2 token grid
TINY_FRAMES = (28, 42)  # the tiny recipe's synthetic frames: covered at scale 1, then cropped
EPOCHS, GPUS, PER_GPU_BATCH = 120, 8, 4
LR = 5e-6  # the encoder's; the DPT head's is 10x
TRAIN_FRAMES = {"hypersim": 59_543, "vkitti": 19_559}  # lines of the official splits/<dataset>/train.txt


def steps_per_epoch(frames: int, gpus: int = GPUS, per_gpu_batch: int = PER_GPU_BATCH) -> int:
    """Optimizer steps of one official epoch: DistributedSampler pads the list to ``gpus`` equal shares, and each
    GPU's loader drops its last incomplete batch."""
    return math.ceil(frames / gpus) // per_gpu_batch


def recipe(dataset: str, backbone: str) -> ml_collections.ConfigDict:
    """The official metric fine-tune of ``dataset`` ("hypersim" or "vkitti") on the DINOv2 preset ``backbone``."""
    tiny = backbone in TINY_INPUT
    size = TINY_INPUT.get(backbone, OFFICIAL_INPUT)
    epoch = steps_per_epoch(TRAIN_FRAMES[dataset])
    augment = AugmentConfig(rotate_degrees=0.0, photometric_prob=0.0, flip_prob=0.5)
    data = DataConfig.synthetic(4096, outdoor=dataset == "vkitti", size=TINY_FRAMES if tiny else None,
                                augment=augment, train_resize="cover_crop", cover_multiple=14)
    config = base_config(da2_metric(backbone, MAX_DEPTH[dataset]), size, lr=10.0 * LR,
                         num_train_steps=EPOCHS * epoch, data=data, eval_every_steps=epoch,
                         eval_datasets="synthetic_outdoor" if dataset == "vkitti" else "synthetic_indoor")
    config.global_batch_size = GPUS * PER_GPU_BATCH
    optim = config.optim
    optim.schedule, optim.poly_power = "poly", 0.9
    optim.encoder_lr_factor = optim.pos_enc_lr_factor = 10.0  # pretrained.* (pos_embed too): 5e-6
    optim.midas_lr_factor = 1.0  # depth_head.*: 5e-5
    optim.weight_decay, optim.rel_pos_weight_decay = 0.01, True
    optim.cycle_momentum, optim.max_momentum = False, 0.9  # Adam's b1, constant
    optim.grad_clip_norm = 0.0  # none
    config.loss.objective = "da2_metric"
    config.loss.da2_lambda = 0.5
    return config


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    return recipe("hypersim", parse_backbone(arg or "dinov2_vitl14"))
