"""``zoejax-train``: train or fine-tune ZoeDepth on one host or many (one process per host).

  zoejax-train --config configs/zoedepth_n.py --workdir runs/n
  zoejax-train --config configs/zoedepth_n.py:small --workdir runs/demo --config.num_train_steps=200 \\
      --config.global_batch_size=4
  zoejax-train --config configs/zoedepth_nk.py --workdir runs/nk --config.init_from=dpt_beit_large_384.pt

Re-running with the same --workdir resumes from its latest checkpoint. Multi-host: set ZOEJAX_DISTRIBUTED=1
(or run under a TPU pod / SLURM launcher that sets the JAX coordinator variables); every host runs the same
command. The work directory is itself a checkpoint for ``zoejax.load``, ``zoejax-eval`` and ``zoejax-predict``.
"""

from __future__ import annotations

import json
import os

import jax
from absl import app, flags, logging

from zoejax.cli.config_loading import define_config_flag, run_configs

define_config_flag()
flags.DEFINE_string("workdir", None, "Work directory: checkpoints, metrics.jsonl, model_config.json.")
FLAGS = flags.FLAGS


def make_input(config, process_index: int, process_count: int):
    """This host's batch iterator: the grain pipeline of ``config.data`` with the per-host batch size and the
    network input size filled in (its ``get_state`` / ``set_state`` make resume exact)."""
    from data_pipelines.config import DataConfig
    from data_pipelines.pipeline import build_train

    per_host, remainder = divmod(config.global_batch_size, process_count)
    if remainder:
        raise ValueError(f"global_batch_size {config.global_batch_size} is not divisible by {process_count} hosts")
    data = DataConfig.from_dict({**config.data.to_dict(), "batch_size": per_host,
                                 "image_size": tuple(config.input_size)})
    return iter(build_train(data, config.seed, process_index, process_count))


def main_(argv) -> None:
    del argv
    logging.set_verbosity(logging.WARNING)
    if os.environ.get("ZOEJAX_DISTRIBUTED") == "1":
        jax.distributed.initialize()
    if FLAGS.config is None or FLAGS.workdir is None:
        raise app.UsageError("--config and --workdir are required (see --help)")
    try:
        model, train_cfg, optim, loss = run_configs(FLAGS.config)
        batches = make_input(FLAGS.config, jax.process_index(), jax.process_count())
    except ValueError as e:
        raise app.UsageError(str(e)) from None
    from zoejax.training.loop import train

    result = train(model, train_cfg, optim, loss, FLAGS.workdir, batches)
    if jax.process_index() == 0:
        print(json.dumps(result))


def main() -> None:
    app.run(main_)


if __name__ == "__main__":
    main()
