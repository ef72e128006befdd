"""Run by test_multihost.py: one process of a (possibly multi-process) CPU training run.

  multihost_check.py --process-id I --num-processes N --coordinator 127.0.0.1:PORT --workdir W \\
      --steps 2,3 [--global-batch 8]

The parent sets XLA_FLAGS (devices per process) before this starts. With N > 1 the processes join one JAX
runtime through a localhost coordinator (gloo CPU collectives) and form one mesh over all their devices. The
tiny ZoeD_N is trained with the real loop and grain pipeline (each process feeds its slice of the global batch)
to each step count in --steps in turn, so every later phase restores the orbax checkpoint all processes saved
together. Prints one JSON line per phase (process index, device counts, the loop's result).
"""

import argparse
import json
import os

import jax


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--process-id", type=int, default=0)
    parser.add_argument("--num-processes", type=int, default=1)
    parser.add_argument("--coordinator", default="")
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--steps", default="2,3")
    parser.add_argument("--global-batch", type=int, default=8)
    args = parser.parse_args()

    jax.config.update("jax_disable_most_optimizations", True)  # logic, not numerics: compile faster
    if args.num_processes > 1:
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
        jax.distributed.initialize(coordinator_address=args.coordinator, num_processes=args.num_processes,
                                   process_id=args.process_id, initialization_timeout=120)

    from data_pipelines.config import DataConfig
    from data_pipelines.pipeline import build_train
    from zoejax.models import presets
    from zoejax.training.loop import TrainConfig, train
    from zoejax.training.optim import OptimConfig
    from zoejax.training.step import LossConfig

    per_host = args.global_batch // jax.process_count()
    for steps in (int(s) for s in args.steps.split(",")):
        data = DataConfig.synthetic(64, size=(64, 96), image_size=(64, 96), batch_size=per_host)
        batches = iter(build_train(data, seed=0, process_index=jax.process_index(),
                                   process_count=jax.process_count()))
        run = TrainConfig(num_train_steps=steps, global_batch_size=args.global_batch, log_every_steps=1,
                          checkpoint_every_steps=100, mesh_shape=(-1, 1, 1), tensorboard=False)
        result = train(presets.zoed_n("tiny"), run, OptimConfig(total_steps=4, lr=1e-3), LossConfig(),
                       args.workdir, batches)
        print(json.dumps({"process": jax.process_index(), "processes": jax.process_count(),
                          "devices": jax.device_count(), "local_devices": jax.local_device_count(),
                          "result": result}), flush=True)
    if args.num_processes > 1:
        jax.distributed.shutdown()


if __name__ == "__main__":
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    main()
