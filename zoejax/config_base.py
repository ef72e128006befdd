"""Shared pieces of the ``configs/*.py`` files: a model preset plus the training run as one ConfigDict.

Configs are big_vision-style: ``get_config(arg)`` where ``arg`` picks the backbone (``beit_l384`` default,
``beit_b384``, ``small`` for the CPU demo, ``tiny`` for tests), e.g. ``--config configs/zoedepth_n.py:beit_b384``.
Every field can be overridden with ``--config.<field>=<value>``. The CLI turns the result into the typed
dataclasses (``ZoeDepthConfig``, ``TrainConfig``, ``OptimConfig``, ``LossConfig``).
"""

from __future__ import annotations

import dataclasses

import ml_collections

from data_pipelines.config import DataConfig
from zoejax.models.config import ZoeDepthConfig
from zoejax.models.presets import BACKBONES
from zoejax.training.config import TrainConfig

# Network input per backbone preset (H, W); the BEiT presets use the official sizes given by each config file.
SMALL_INPUT = {"small": (128, 160), "tiny": (64, 96)}


def parse_backbone(arg: str | None) -> str:
    name = arg or "beit_l384"
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r} in config argument; choose one of {sorted(BACKBONES)}")
    return name


def base_config(model: ZoeDepthConfig, input_size: tuple[int, int], *, lr: float = 1.61e-4,
                midas_lr_factor: float = 1.0, num_train_steps: int = 7575, w_domain: float = 0.0,
                data: DataConfig | None = None, eval_every_steps: int = 0,
                eval_datasets: str = "") -> ml_collections.ConfigDict:
    """The whole run: ``model`` (every ``ZoeDepthConfig`` field), ``input_size``, the run settings, ``optim``,
    ``loss``, ``data`` and ``eval``. Defaults are the official recipe (ZoeD_N: 5 epochs of NYU at batch 16,
    validation every quarter epoch, the best checkpoint by abs_rel kept)."""
    config = ml_collections.ConfigDict()
    config.model = ml_collections.ConfigDict(model.to_dict())
    config.input_size = tuple(input_size)  # network (H, W), multiples of 32

    # The run fields, named and defaulted once (zoejax/training/config.py TrainConfig). Periodic evaluation follows
    # the official recipe: every quarter epoch, no flip TTA, the checkpoint best by abs_rel kept.
    run = TrainConfig(num_train_steps=num_train_steps, eval_every_steps=eval_every_steps)
    for name, value in dataclasses.asdict(run).items():
        config[name] = value

    # eval.datasets: protocol names (zoejax-eval --list-protocols), comma separated; the first one's metrics are
    # the unprefixed ones best_metric refers to. "" = no evaluation. The datasets are built as zoejax-eval builds
    # them (zoejax.evaluation.run; zoejax-train's eval_settings maps these fields to its flags).
    config.eval = ml_collections.ConfigDict()
    config.eval.datasets = eval_datasets
    config.eval.data_root = ""  # root of the protocols' default layouts (as zoejax-eval --data-root)
    config.eval.list_file = ""  # the custom dataset's CSV/JSONL list (eval.datasets=custom)
    config.eval.custom_domain = 0  # the custom dataset's domain: 0 indoor (<= 10 m), 1 outdoor (<= 80 m)
    config.eval.batch_size = 8  # global
    config.eval.num_examples = 64  # synthetic datasets: held-out frames, rendered at input_size
    config.eval.max_batches = 0  # 0 = the whole set
    config.eval.flip_tta = False  # in-training validation of the official code has no flip TTA

    config.optim = ml_collections.ConfigDict()
    # 0: the schedule spans num_train_steps. A longer schedule (e.g. to stop early and resume later on the same
    # curve) is set here; a linked FieldReference would have made such an override move num_train_steps too.
    config.optim.total_steps = 0
    config.optim.schedule = "onecycle"  # or "poly" (Depth Anything V2; zoejax/training/optim.py SCHEDULES)
    config.optim.poly_power = 0.9
    config.optim.lr = lr
    config.optim.weight_decay = 0.01
    config.optim.rel_pos_weight_decay = True
    config.optim.encoder_lr_factor = 10.0
    config.optim.pos_enc_lr_factor = 10.0
    config.optim.midas_lr_factor = midas_lr_factor
    config.optim.pct_start = 0.7
    config.optim.div_factor = 1.0
    config.optim.final_div_factor = 1e4
    config.optim.cycle_momentum = True
    config.optim.grad_clip_norm = 0.1
    config.optim.accumulate_steps = 1

    config.loss = ml_collections.ConfigDict()
    config.loss.w_si = 1.0
    config.loss.w_grad = 0.0
    config.loss.w_domain = w_domain
    config.loss.route_by_label = False

    # The grain pipeline (data_pipelines.DataConfig). Default: synthetic scenes, nothing to download; for the
    # real datasets set data.sources (see README "Data"). batch_size (per host) and image_size are filled in
    # from global_batch_size and input_size by the CLI.
    data = data or DataConfig.synthetic(4096)
    config.data = ml_collections.ConfigDict(data.to_dict())
    return config


def network_input(backbone: str, official: tuple[int, int]) -> tuple[int, int]:
    return SMALL_INPUT.get(backbone, official)


def synthetic_data(backbone: str, **kwargs) -> DataConfig:
    """Synthetic scenes (no download); rendered at the network size for the CPU-sized presets, else 480x640."""
    return DataConfig.synthetic(4096, size=SMALL_INPUT.get(backbone), **kwargs)
