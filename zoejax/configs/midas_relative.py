"""MiDaS relative depth: the DPT (BEiT-L 384 by default, any registered backbone) trained without a metric head
on a mix of datasets with the scale-and-shift invariant losses, in disparity space: the stage ZoeDepth's metric
models start from (the paper's "M12"). Its work directory then starts a metric run::

  zoejax-train --config configs/midas_relative.py --workdir runs/relative
  zoejax-train --config configs/zoedepth_n.py --workdir runs/n --config.init_from=runs/relative

Published (DPT, Ranftl et al. 2021, Sec. 4.1, the recipe MiDaS v3 / v3.1 follow) and kept here: the loss (ssitrim
data term + 0.5 x gradient matching over 4 scales, in disparity); Adam with lr 1e-5 for the pretrained encoder
and 1e-4 for the decoder (b1 0.9, b2 0.999, no weight decay); batch 16; horizontal flips; every batch mixes the
datasets in fixed, equal proportions (DPT draws a batch's datasets uniformly at random, MiDaS v2 composes each
batch of equal parts; here the equal parts, deterministic and resumable, ``data.mix="example"``). NOT published,
so zoejax's own choices (override them): MiDaS v3.1's training code, its exact 12-dataset mixture and weights,
its schedule length and crop protocol (DPT: 60 epochs of 72k steps, random 384 x 384 crops of images resized to
a 384 longer side; v3.1 trains at 384 x 384 for BEiT-L 384), gradient clipping (0.1 here), the constant learning
rate (no warm-up or decay here), and how datasets without depth at some pixels (sky) were treated (here: sky and
invalid pixels are masked out, ``sky_mask`` / ``valid_mask`` columns).

Data: by default synthetic rooms and streets mixed by example (nothing to download; both rendered at the network
size so that they batch together). Real data: custom CSV/JSONL lists (``data_pipelines/sources/custom.py``), one
source per dataset, each with ``size=(H, W)`` (frames are centre-cropped or padded to it, so that sources batch
together) and a ``kind`` column (``depth`` in metres, or ``disparity`` up to scale and shift for stereo / relative
datasets), e.g. ``--config.data.sources='[{"name": "custom", "list_file": "hrwsi.csv", "size": [384, 384]}, ...]'``.
The loss variants are config fields: ``loss.relative_data`` (ssitrim | ssi_lsq), ``loss.relative_median``
(masked_zeros, the reference's | valid), ``loss.relative_trim``, ``loss.w_relative_grad``, ``loss.relative_scales``.
"""

from data_pipelines.config import AugmentConfig, DataConfig, SourceConfig
from zoejax.config_base import SMALL_INPUT, base_config, parse_backbone
from zoejax.models.presets import zoed_n
from zoejax.models.relative_depth import relative_config

MIDAS_INPUT = (384, 384)  # MiDaS v3.1 BEiT-L 384 / Swin2 384 training size


def relative_data(backbone: str, num_examples: int = 4096) -> DataConfig:
    """Synthetic rooms and streets, equal parts of every batch, both at the network size (no rotation: MiDaS
    augments with flips only)."""
    size = SMALL_INPUT.get(backbone, MIDAS_INPUT)
    sources = tuple(SourceConfig(name, num_examples=num_examples, size=size)
                    for name in ("synthetic_indoor", "synthetic_outdoor"))
    return DataConfig(sources=sources, mix="example",
                      augment=AugmentConfig(rotate_degrees=0.0, photometric_prob=0.0))


def get_config(arg: str | None = None):
    backbone = parse_backbone(arg)
    model = relative_config(zoed_n(backbone))  # the DPT of ZoeD_N's core: the same encoder and decoder
    config = base_config(model, SMALL_INPUT.get(backbone, MIDAS_INPUT), lr=1e-4, num_train_steps=72_000,
                         data=relative_data(backbone), eval_every_steps=6000, eval_datasets="synthetic_indoor")
    config.optim.encoder_lr_factor = 10.0  # encoder 1e-5
    config.optim.pos_enc_lr_factor = 10.0
    config.optim.midas_lr_factor = 1.0  # decoder 1e-4
    config.optim.weight_decay = 0.0  # Adam
    config.optim.div_factor = 1.0  # constant learning rate
    config.optim.final_div_factor = 1.0
    config.optim.cycle_momentum = False
    config.optim.max_momentum = 0.9  # Adam's b1 when momentum does not cycle
    config.loss.objective = "relative"
    config.loss.relative_data = "ssitrim"
    config.loss.relative_median = "masked_zeros"
    config.loss.relative_trim = 0.2
    config.loss.w_relative_grad = 0.5
    config.loss.relative_scales = 4
    return config
