"""The CLI boundary: ml-collections config files with ``--config.<key>=value`` overrides -> typed dataclasses.

Nothing below the CLI sees a ConfigDict.
"""

from __future__ import annotations

import ml_collections
from absl import flags
from ml_collections import config_flags

from zoejax.models.config import ZoeDepthConfig, build_dataclass


def define_config_flag(default: str | None = None) -> None:
    """Defines ``--config`` once per process (zoejax-train and zoejax-info share it when both are imported)."""
    if "config" in flags.FLAGS:
        return
    config_flags.DEFINE_config_file(
        "config", default,
        "Config file, optionally with an argument: configs/zoedepth_n.py:beit_b384. Any field can be "
        "overridden with --config.<field>=<value>, e.g. --config.model.dtype=bfloat16.",
        lock_config=True)


def model_config(config: ml_collections.ConfigDict) -> ZoeDepthConfig:
    """The typed model config of a loaded ConfigDict (unknown or invalid fields raise ValueError)."""
    return ZoeDepthConfig.from_dict(config.model.to_dict())


def run_configs(config: ml_collections.ConfigDict):
    """(model, train, optim, loss) typed configs of a full run ConfigDict (see ``zoejax/config_base.py``)."""
    from zoejax.training.loop import TrainConfig
    from zoejax.training.optim import OptimConfig
    from zoejax.training.step import LossConfig

    d = config.to_dict()
    run_keys = ("num_train_steps", "global_batch_size", "log_every_steps", "checkpoint_every_steps",
                "keep_checkpoints", "seed", "init_from", "mesh_shape", "halt_on_nonfinite", "async_checkpoints",
                "eval_every_steps", "best_metric", "best_mode", "keep_best_checkpoints", "tensorboard",
                "peak_flops_per_device", "log_dir")
    train = build_dataclass(TrainConfig, {k: d[k] for k in run_keys if k in d}, "config")
    optim = dict(d["optim"])
    if optim.get("total_steps") == 0:  # the default: the schedule spans the run
        optim["total_steps"] = train.num_train_steps
    return model_config(config), train, build_dataclass(OptimConfig, optim, "config.optim"), \
        build_dataclass(LossConfig, d["loss"], "config.loss")
