"""Run by test_multihost_eval.py: one process of a (possibly multi-process) CPU evaluation.

  multihost_eval_check.py [--process-id I --num-processes N --coordinator 127.0.0.1:PORT] --batch-size B

The parent sets XLA_FLAGS (devices per process). With N > 1 the processes join one JAX runtime (localhost
coordinator, gloo collectives); each reads its contiguous share of the synthetic rooms, the prediction runs
sharded over all devices of all processes, and the metric sums are added across processes. Prints one JSON line
with the dataset means.
"""

import argparse
import json
import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--process-id", type=int, default=0)
    parser.add_argument("--num-processes", type=int, default=1)
    parser.add_argument("--coordinator", default="")
    parser.add_argument("--batch-size", type=int, required=True, help="per process")
    args = parser.parse_args()
    jax.config.update("jax_disable_most_optimizations", True)
    if args.num_processes > 1:
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
        jax.distributed.initialize(coordinator_address=args.coordinator, num_processes=args.num_processes,
                                   process_id=args.process_id, initialization_timeout=120)

    from zoejax.evaluation.evaluator import Evaluator
    from zoejax.evaluation.run import EvalDataSettings, evaluate_datasets
    from zoejax.models import presets
    from zoejax.models.init import init_params, logical_axes
    from zoejax.models.zoedepth import ZoeDepth
    from zoejax.training.sharding import make_mesh, param_shardings

    cfg = presets.zoed_n("tiny")
    mesh = make_mesh((-1, 1, 1))
    evaluator = Evaluator(ZoeDepth(cfg), mesh, param_shardings(logical_axes(cfg), mesh))
    settings = EvalDataSettings(batch_size=args.batch_size, image_size=(64, 96), synthetic_examples=11,
                                overrides={"synthetic_indoor": {"size": (48, 80)}})
    (result,) = evaluate_datasets(evaluator, init_params(cfg, 0), ["synthetic_indoor"], settings, progress=False)
    print(json.dumps({"process": jax.process_index(), "processes": jax.process_count(),
                      "devices": jax.device_count(), "result": result.to_dict()}), flush=True)
    if args.num_processes > 1:
        jax.distributed.shutdown()


if __name__ == "__main__":
    main()
