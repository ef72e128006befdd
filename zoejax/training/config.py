"""The run settings of a training job: one dataclass, the single list of run fields.

``zoejax/config_base.py`` derives the run part of every config file's ConfigDict (names and defaults) from
:class:`TrainConfig`, and ``zoejax.cli.config_loading.run_configs`` reads back exactly its fields, so a field
added here is a ``--config.<field>`` override of every config with nothing else to edit.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Run settings (the model, optimizer, loss, data and evaluation have their own configs).

    Attributes:
      num_train_steps: optimizer steps of the run.
      global_batch_size: examples per step over all hosts.
      log_every_steps, checkpoint_every_steps: cadence of metrics.jsonl lines and checkpoints.
      keep_checkpoints: the latest checkpoints kept.
      seed: weights and data order.
      init_from: a converted folder, an official / MiDaS / HF checkpoint, or "" for random init.
      mesh_shape: (data, fsdp, tensor) devices; -1 takes the remaining devices.
      halt_on_nonfinite: stop at a non-finite loss instead of skipping the step.
      async_checkpoints: write checkpoints in the background.
      eval_every_steps: run ``evaluate`` every this many steps and after the last (0 = never).
      best_metric, best_mode: the evaluation metric whose best ``keep_best_checkpoints`` checkpoints are kept
        besides the ``keep_checkpoints`` latest ("" = latest only).
      tensorboard: write WORKDIR/tensorboard event files (host 0).
      peak_flops_per_device: peak FLOP/s of one device for the MFU estimate; 0 = look the device kind up in
        ``monitoring.PEAK_FLOPS`` (unknown kinds: no MFU).
      log_dir: where ``metrics.jsonl`` and ``tensorboard/`` go; "" = the work directory (a local folder is used
        instead when the work directory is a remote URL such as gs://, which cannot be appended to).
    """

    num_train_steps: int = 7575
    global_batch_size: int = 16
    log_every_steps: int = 50
    checkpoint_every_steps: int = 500
    keep_checkpoints: int = 3
    seed: int = 0
    init_from: str = ""
    mesh_shape: tuple[int, int, int] = (-1, 1, 1)
    halt_on_nonfinite: bool = False
    async_checkpoints: bool = True
    eval_every_steps: int = 0
    best_metric: str = "abs_rel"
    best_mode: str = "min"
    keep_best_checkpoints: int = 1
    tensorboard: bool = True
    peak_flops_per_device: float = 0.0
    log_dir: str = ""

    def __post_init__(self):
        for name in ("num_train_steps", "global_batch_size", "log_every_steps", "checkpoint_every_steps",
                     "keep_checkpoints"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.eval_every_steps < 0:
            raise ValueError(f"eval_every_steps must be >= 0, got {self.eval_every_steps}")
        if self.best_mode not in ("min", "max"):
            raise ValueError(f"best_mode must be 'min' or 'max', got {self.best_mode!r}")


RUN_FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(TrainConfig))
