"""``zoejax-train``: train or fine-tune ZoeDepth on one host or many (one process per host).

  zoejax-train --config configs/zoedepth_n.py --workdir runs/n
  zoejax-train --config configs/zoedepth_n.py:small --workdir runs/demo --config.num_train_steps=200 \\
      --config.global_batch_size=4
  zoejax-train --config configs/zoedepth_nk.py --workdir runs/nk --config.init_from=dpt_beit_large_384.pt
  zoejax-train --config configs/finetune_custom.py:train=/data/mine/train.csv,val=/data/mine/val.csv \\
      --workdir runs/mine --config.init_from=ZoeD_M12_N.pt

Re-running with the same --workdir resumes from its latest readable checkpoint. Evaluation runs every
``eval_every_steps`` on ``eval.datasets`` (zoejax.evaluation); metrics go to WORKDIR/metrics.jsonl and
WORKDIR/tensorboard. Multi-host: set ZOEJAX_DISTRIBUTED=1 and every host runs the same command;
``jax.distributed.initialize()`` then finds the coordinator itself on Cloud TPU and under SLURM, or from
ZOEJAX_COORDINATOR (host:port), ZOEJAX_NUM_PROCESSES and ZOEJAX_PROCESS_ID (what ``launch_gpu.sh`` sets for
explicit multi-node runs). The work directory is itself a checkpoint for ``zoejax.load``, ``zoejax-eval`` and
``zoejax-predict``.

Exit codes: 0 finished (the last line on stdout is the result JSON); 1 bad input or a fault, one line on stderr
naming the file or step and the fix (missing or malformed data, a work directory in use by another trainer or
holding another model, a checkpoint of another architecture, every checkpoint damaged, disk full, ...); 2 a bad
flag or config field; 3 diverged (``optim.max_consecutive_nonfinite`` non-finite steps in a row, or
``halt_on_nonfinite``): the checkpoints hold the last finite weights; 75 preempted (SIGTERM): a checkpoint was
saved and the result line says ``"preempted": true``; rerun the same command to resume.
"""

from __future__ import annotations

import errno
import json
import os
import sys

import jax
from absl import app, flags, logging

from data_pipelines.errors import DataError
from zoejax.cli.config_loading import check_config_file, define_config_flag, run_configs
from zoejax.cli.distributed import initialize_distributed
from zoejax.host_memory import apply_from_environment

define_config_flag()
flags.DEFINE_string("workdir", None, "Work directory: checkpoints, metrics.jsonl, tensorboard/, model_config.json.")
FLAGS = flags.FLAGS

EXIT_ERROR, EXIT_USAGE, EXIT_DIVERGED = 1, 2, 3
EXIT_PREEMPTED = 75  # EX_TEMPFAIL (sysexits.h): try again, which resumes
NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


def make_input(config, process_index: int, process_count: int):
    """This host's batch iterator: the grain pipeline of ``config.data`` with the per-host batch size and the
    network input size filled in (its ``get_state`` / ``set_state`` make resume exact)."""
    from data_pipelines.config import DataConfig
    from data_pipelines.pipeline import build_train

    per_host = _per_host(config.global_batch_size, process_count, "global_batch_size")
    data = DataConfig.from_dict({**config.data.to_dict(), "batch_size": per_host,
                                 "image_size": tuple(config.input_size)})
    return iter(build_train(data, config.seed, process_index, process_count))


def _per_host(global_batch: int, process_count: int, name: str) -> int:
    per_host, remainder = divmod(global_batch, process_count)
    if remainder or not per_host:
        raise ValueError(f"{name} {global_batch} is not a positive multiple of {process_count} hosts")
    return per_host


def eval_datasets(config) -> list[str]:
    """The dataset keys of ``config.eval.datasets`` ("" = none), groups expanded."""
    from zoejax.evaluation.protocols import resolve_datasets

    spec = config.eval.datasets.strip()
    return resolve_datasets(spec) if spec else []


def eval_settings(config, process_count: int):
    """``config.eval`` as the ``EvalDataSettings`` of ``zoejax.evaluation.run``, the builder ``zoejax-eval``
    uses: ``eval.data_root`` is its --data-root, ``eval.list_file`` / ``eval.custom_domain`` its --list custom=
    / --custom-domain (the list relative to the working directory, its rows to ``eval.data_root`` when set), and
    a custom training source's ``size`` crops the custom evaluation frames too (--custom-size)."""
    from zoejax.evaluation.run import EvalDataSettings

    data_root = config.eval.data_root
    custom = {}
    if config.eval.list_file:
        custom["list_file"] = os.path.abspath(config.eval.list_file)
        custom["root"] = os.path.abspath(data_root) if data_root else ""
    size = next((tuple(s["size"]) for s in config.data.to_dict()["sources"] if s["name"] == "custom"
                 and s.get("size")), None)
    if size:
        custom["size"] = size
    return EvalDataSettings(
        data_root=data_root, overrides={"custom": custom} if custom else {},
        batch_size=_per_host(config.eval.batch_size, process_count, "eval.batch_size"),
        image_size=tuple(config.input_size), synthetic_examples=config.eval.num_examples,
        custom_domain=int(config.eval.custom_domain), max_batches=config.eval.max_batches)


def make_evaluate(config, model_config, param_shardings, mesh, process_index: int, process_count: int):
    """The loop's ``evaluate(params) -> metrics``: every dataset of ``config.eval`` through
    ``zoejax.evaluation.run`` (the pipelines ``zoejax-eval`` builds) with the train state's parameter shardings.
    Keys are ``<dataset>/<metric>``, plus the first dataset's metrics unprefixed. None when no dataset is
    configured."""
    from zoejax.evaluation.relative_evaluator import evaluator_for
    from zoejax.evaluation.run import DatasetEvaluation
    from zoejax.models.family import module_for

    datasets = eval_datasets(config)
    if not datasets:
        return None
    evaluation = DatasetEvaluation(datasets, eval_settings(config, process_count), process_index, process_count)
    evaluator = evaluator_for(module_for(model_config), mesh, param_shardings)  # relative models: aligned

    def evaluate(params) -> dict[str, float]:
        metrics: dict[str, float] = {}
        for i, result in enumerate(evaluation(evaluator, params, flip_tta=config.eval.flip_tta, progress=False)):
            metrics.update({f"{result.dataset}/{k}": v for k, v in result.metrics.items()})
            if i == 0:
                metrics.update(result.metrics)
        return metrics

    return evaluate


def build_run(config, process_index: int, process_count: int):
    """Everything ``train`` takes, from a run ConfigDict: (model, train, optim, loss, batches, evaluate)."""
    from zoejax.training.optim import make_optimizer
    from zoejax.training.sharding import check_batch_divisible, make_mesh
    from zoejax.training.state import state_shardings

    model, train_cfg, optim, loss = run_configs(config)
    # Settings that would otherwise fail only inside the loop (the input size at the first step's compile, after
    # the model was initialised or converted): checked first, so the CLI reports them as usage errors.
    size = tuple(config.input_size)
    multiple = model.input_multiple  # every family's config says: 14 on DINOv2 (Depth Anything), else 32
    if len(size) != 2 or any(int(v) <= 0 or int(v) % multiple for v in size):
        example = "(392, 518)" if multiple == 14 else "(384, 512)"
        raise ValueError(f"input_size {size}: needs (height, width), both positive multiples of {multiple} "
                         f"(e.g. {example})")
    mesh = make_mesh(train_cfg.mesh_shape)  # the loop builds the same mesh from the same devices
    check_batch_divisible(train_cfg.global_batch_size, mesh)
    batches = make_input(config, process_index, process_count)
    evaluate = None
    if train_cfg.eval_every_steps > 0:
        shardings = state_shardings(model, make_optimizer(optim), mesh).params
        evaluate = make_evaluate(config, model, shardings, mesh, process_index, process_count)
    return model, train_cfg, optim, loss, batches, evaluate


def failure(error: BaseException, workdir: str, config=None) -> tuple[str, int] | None:
    """(one-line message, exit code) for an error of bad input or a fault; None for anything else (a bug, whose
    traceback is then shown). ``config`` (the run's ConfigDict) lets a batching error name the files."""
    from zoejax.training.checkpointing import CheckpointLayoutError, NoRestorableCheckpointError
    from zoejax.training.loop import InitFromError
    from zoejax.training.resume import ResumeMismatchError
    from zoejax.training.workdir import WorkdirLockedError, WorkdirMismatchError

    full = _no_space(error)
    if full is not None:
        return (f"disk full writing {full.filename or workdir} ({full.strerror}): free space (or move --workdir) "
                "and rerun the same command; it resumes from the latest complete checkpoint and deletes the "
                "unfinished save", EXIT_ERROR)
    if isinstance(error, FloatingPointError):  # DivergedError, a non-finite state refused, halt_on_nonfinite
        return str(error), EXIT_DIVERGED
    if isinstance(error, (DataError, InitFromError, CheckpointLayoutError, NoRestorableCheckpointError,
                          ResumeMismatchError, WorkdirLockedError, WorkdirMismatchError)):
        return str(error), EXIT_ERROR
    if isinstance(error, ValueError) and str(error).startswith("Expected all input elements to have the same"):
        # grain's batching of frames of different sizes: its message names neither the files nor the fix.
        found = f" ({mixed_frame_sizes(config)})" if config is not None else ""
        return (f"training frames of different sizes cannot be batched{found}: give each training source of varying "
                "frame size a size=(height, width) in --config.data.sources (frames are centre-cropped or padded "
                "to it), or resize the files", EXIT_ERROR)
    if isinstance(error, jax.errors.JaxRuntimeError) and "RESOURCE_EXHAUSTED" in str(error):
        return (f"device out of memory ({str(error).splitlines()[0][:200]}): lower --config.global_batch_size, "
                "set --config.model.remat=full or --config.model.dtype=bfloat16, or shard over more devices "
                "(--config.mesh_shape)", EXIT_ERROR)
    if isinstance(error, OSError):  # an unreadable or unwritable file, a lost mount
        return str(error), EXIT_ERROR
    return None


def mixed_frame_sizes(config, limit: int = 100_000) -> str:
    """The first two training files whose frames differ in size (width x height), e.g. "a.png (train.csv:2) is
    640x480, b.png (train.csv:9) is 1242x375", read from the image headers of the list-based sources (up to
    ``limit`` rows each); "" when none is found."""
    from PIL import Image

    from data_pipelines.config import DataConfig
    from data_pipelines.sources import make_source

    for source_config in DataConfig.from_dict(config.data.to_dict()).sources:
        if source_config.size:
            continue  # cropped or padded to one size
        try:
            source = make_source(source_config, training=True)
        except Exception:  # only a hint for a message: the source opened fine for training
            continue
        first = None
        for row in getattr(source, "rows", [])[:limit]:
            try:
                with Image.open(row.image) as image:
                    size = image.size
            except OSError:
                continue
            if first is None:
                first = (row, size)
            elif size != first[1]:
                def named(r):
                    return f"{r.image} ({r.where})" if r.where else r.image

                return f"{named(first[0])} is {first[1][0]}x{first[1][1]}, {named(row)} is {size[0]}x{size[1]}"
    return ""


def _no_space(error: BaseException | None) -> OSError | None:
    """The disk-full OSError behind ``error`` (itself, or what it was raised from), if any."""
    seen = 0
    while error is not None and seen < 8:
        if isinstance(error, OSError) and error.errno in NO_SPACE:
            return error
        if "No space left on device" in str(error):
            return OSError(errno.ENOSPC, "No space left on device")
        error, seen = error.__cause__ or error.__context__, seen + 1
    return None


def _fail(message: str, code: int) -> None:
    print(f"zoejax-train: error: {message}", file=sys.stderr)
    sys.exit(code)


def main_(argv) -> None:
    del argv
    apply_from_environment()  # ZOEJAX_KEEP_HOST_MEMORY=1: before the first computation (zoejax/host_memory.py)
    logging.set_verbosity(logging.WARNING)
    try:
        initialize_distributed()
    except ValueError as e:
        raise app.UsageError(str(e), exitcode=EXIT_USAGE) from None
    if FLAGS.config is None or FLAGS.workdir is None:
        raise app.UsageError("--config and --workdir are required (see --help)")
    try:
        model, train_cfg, optim, loss, batches, evaluate = build_run(FLAGS.config, jax.process_index(),
                                                                     jax.process_count())
    except DataError as e:  # a dataset on disk is missing or malformed: say which, without a traceback
        _fail(str(e), EXIT_ERROR)
    except ValueError as e:
        raise app.UsageError(str(e), exitcode=EXIT_USAGE) from None
    except Exception as e:
        known = failure(e, FLAGS.workdir)
        if known is None:
            raise
        _fail(*known)
    from zoejax.training.loop import train

    try:
        result = train(model, train_cfg, optim, loss, FLAGS.workdir, batches, evaluate)
    except Exception as e:
        known = failure(e, FLAGS.workdir, FLAGS.config)
        if known is None:
            raise
        _fail(*known)
    if jax.process_index() == 0:
        print(json.dumps(result))
    if result.get("preempted"):
        print(f"zoejax-train: preempted (SIGTERM) after saving step {result['step']}; rerun the same command to "
              "resume", file=sys.stderr)
        sys.exit(EXIT_PREEMPTED)


def main() -> None:
    sys.argv[1:] = check_config_file(sys.argv[1:], "zoejax-train")
    app.run(main_)


if __name__ == "__main__":
    main()
