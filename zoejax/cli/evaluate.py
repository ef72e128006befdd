"""``zoejax-eval``: score a checkpoint on the paper's datasets with the official protocol of each.

  zoejax-eval --checkpoint runs/n --datasets nyu --data-root /data
  zoejax-eval --checkpoint ZoeD_M12_NK.pt --datasets all_indoor,all_outdoor --data-root /data --output nk.json
  zoejax-eval --checkpoint runs/demo --datasets synthetic_indoor          # nothing to download
  zoejax-eval --list-protocols                                            # crops, depth ranges, layouts

Each dataset is read from its default layout under --data-root (or from --root/--list/--depth-root
NAME=PATH), predicted with one jitted call per batch sharded over every device of every host (flip
test-time augmentation as one batch of 2B), and scored with the official per-image metrics, averaged over
images. The table prints in the paper's column order; --output writes JSON; --reference adds mRID / mRItheta
against a reference results file or a row of the paper's tables (paper:table4:newcrfs, the baseline of its
zero-shot mRItheta; --list-references). Exit status 1 on missing data or checkpoint, 2 on bad usage.
Datasets are built as zoejax-train's periodic evaluation builds them (zoejax.evaluation.run): the same
held-out synthetic scenes, a custom list scored indoor or outdoor (--custom-domain), so a run's logged
evaluation at step S equals zoejax-eval on step S's checkpoint. Multi-host: run the same command on every
host with ZOEJAX_DISTRIBUTED=1 (and ZOEJAX_COORDINATOR / ZOEJAX_NUM_PROCESSES / ZOEJAX_PROCESS_ID where
JAX cannot find the coordinator itself), as zoejax-train. A relative-depth model (a relative run, MiDaS v3.1
with --relative) is scored by the relative protocol: each image's prediction aligned to the ground truth by
least-squares scale and shift in disparity space, then the same metrics (docs/evaluation.md).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from data_pipelines.errors import DataError, bad_example_counts
from zoejax.conversion.apply import ConversionError
from zoejax.conversion.readers import CheckpointReadError
from zoejax.evaluation.paper_results import describe as describe_references
from zoejax.evaluation.paper_results import paper_reference
from zoejax.evaluation.protocols import PROTOCOLS, describe, resolve_datasets
from zoejax.host_memory import apply_from_environment

LAYOUT_FLAGS = {"root": "root", "list": "list_file", "depth_root": "depth_root"}


def build_parser() -> argparse.ArgumentParser:
    doc = __doc__.split("\n\n")
    p = argparse.ArgumentParser(prog="zoejax-eval", description=doc[0], epilog="\n\n".join(doc[1:]),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", help="training work dir, zoejax-convert folder, official .pt or HF folder")
    p.add_argument("--datasets", default="nyu",
                   help=f"comma-separated datasets and/or groups all_indoor, all_outdoor (default nyu); one of "
                        f"{', '.join(PROTOCOLS)}")
    p.add_argument("--data-root", default="", help="base folder of the default layouts (see --list-protocols)")
    for flag, field in LAYOUT_FLAGS.items():
        p.add_argument(f"--{flag.replace('_', '-')}", action="append", default=[], metavar="NAME=PATH",
                       help=f"override a dataset's {field} (repeatable)")
    p.add_argument("--batch-size", type=int, default=4, help="images per batch per host (default 4)")
    p.add_argument("--no-flip-tta", action="store_true", help="score without flip test-time augmentation")
    p.add_argument("--route-by-label", action="store_true",
                   help="ZoeD_NK: use each dataset's domain head instead of the router (official: router)")
    p.add_argument("--relative", action="store_true",
                   help="read a MiDaS v3.1 file as the relative model it is (scored by the relative protocol: "
                        "least-squares scale and shift in disparity, then the metrics); relative runs need no flag")
    p.add_argument("--mesh", default="-1,1,1", help="data,fsdp,tensor mesh shape (-1 fills; default -1,1,1)")
    p.add_argument("--max-depth", type=float, default=None,
                   help="ZoeD_K only: bin range upper bound, 10 (released model) or 80 (paper's KITTI protocol)")
    p.add_argument("--input-size", default=None, metavar="HxW",
                   help="network input size (default the model's: 384x512, ZoeD_K 384x768)")
    p.add_argument("--synthetic-examples", type=int, default=64,
                   help="held-out frames per synthetic dataset (default 64; rendered at the input size)")
    p.add_argument("--custom-domain", type=int, choices=(0, 1), default=0,
                   help="the custom dataset (--list custom=VAL.csv): 0 indoor, scored on 1e-3..10 m (default), "
                        "or 1 outdoor, 1e-3..80 m (ZoeD_NK: the KITTI head)")
    p.add_argument("--custom-size", default=None, metavar="HxW",
                   help="centre-crop / zero-pad the custom dataset's frames to HxW (when their sizes vary)")
    p.add_argument("--max-examples", type=int, default=0, help="at most N examples per dataset per host (0 = all)")
    p.add_argument("--num-workers", type=int, default=0, help="grain worker processes (default 0)")
    p.add_argument("--output", default=None, help="write the results as JSON here")
    p.add_argument("--reference", default=None,
                   help="results to compare with, adding mRID and mRItheta: a JSON file ({dataset: {metric: "
                        "value}} or a --output file) or paper:TABLE:METHOD, a published row (--list-references)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--list-protocols", action="store_true", help="print the protocol table and exit")
    p.add_argument("--list-references", action="store_true",
                   help="print the paper:TABLE:METHOD rows --reference accepts and exit")
    return p


def parse_layout(args: argparse.Namespace, parser: argparse.ArgumentParser) -> dict[str, dict[str, str]]:
    overrides: dict[str, dict[str, str]] = {}
    for flag, field in LAYOUT_FLAGS.items():
        for item in getattr(args, flag):
            name, sep, path = item.partition("=")
            if not sep or not path or name not in PROTOCOLS:
                parser.error(f"--{flag.replace('_', '-')} takes NAME=PATH with NAME one of {', '.join(PROTOCOLS)}; "
                             f"got {item!r}")
            overrides.setdefault(name, {})[field] = path
    return overrides


def output_file_problem(path: str | os.PathLike) -> str | None:
    """Why the JSON file ``path`` could not be written (a folder, under a file, a folder not writable), or None."""
    path = Path(path)
    if path.is_dir():
        return "is a folder; give the JSON file to write, e.g. " + str(path / "results.json")
    parent = path.absolute().parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent  # folders still to be created: the nearest existing one decides
    if not parent.is_dir():
        return f"{parent} is a file, not a folder"
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"no permission to write in {parent}"
    return None


def load_reference(path: str) -> dict[str, dict[str, float]]:
    """{dataset: {metric: value}} from a JSON file or a zoejax-eval --output file, or the published row
    ``paper:TABLE:METHOD`` (``zoejax.evaluation.paper_results``)."""
    if path.startswith("paper:"):
        return paper_reference(path)
    data = json.loads(Path(path).read_text())
    expected = f"{path}: expected {{dataset: {{metric: value}}}} or a zoejax-eval --output file"
    if isinstance(data, dict) and "results" in data:
        rows = data["results"]
        if not isinstance(rows, list) or not all(isinstance(r, dict) and "dataset" in r and "metrics" in r
                                                 for r in rows):
            raise ValueError(f"{expected}: its results are not rows with dataset and metrics")
        data = {r["dataset"]: r["metrics"] for r in rows}
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise ValueError(expected)
    for dataset, metrics in data.items():
        for metric, value in metrics.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"{path}: {dataset}/{metric} is {value!r}, not a number")
    return data


def main(argv: list[str] | None = None) -> int:
    apply_from_environment()  # ZOEJAX_KEEP_HOST_MEMORY=1: before the first computation (zoejax/host_memory.py)
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.list_protocols:
        print(describe())
        return 0
    if args.list_references:
        print(describe_references())
        return 0
    if not args.checkpoint:
        parser.error("--checkpoint is required")
    if args.batch_size < 1 or args.synthetic_examples < 1 or args.max_examples < 0:
        parser.error("--batch-size and --synthetic-examples must be >= 1, --max-examples >= 0")
    try:
        datasets = resolve_datasets(args.datasets)
        mesh_shape = tuple(int(v) for v in args.mesh.split(","))
        from zoejax.cli.predict import parse_size

        input_size = parse_size(args.input_size) if args.input_size else None
        custom_size = parse_size(args.custom_size) if args.custom_size else None
        if args.reference and args.reference.startswith("paper:"):
            paper_reference(args.reference)  # a mistyped row is bad usage, reported before the model loads
    except (ValueError, argparse.ArgumentTypeError) as e:
        parser.error(str(e))
    overrides = parse_layout(args, parser)
    if custom_size:
        overrides.setdefault("custom", {})["size"] = custom_size
    if args.output:
        problem = output_file_problem(args.output)
        if problem:  # found now, not after the whole evaluation has run
            parser.error(f"--output {args.output}: {problem}")

    import jax

    from zoejax.cli.distributed import initialize_distributed

    try:
        initialize_distributed()
    except ValueError as e:
        parser.error(str(e))
    lead = jax.process_index() == 0
    try:
        reference = load_reference(args.reference) if args.reference else None
        if reference is not None and not set(reference) & set(datasets):
            # Said before the evaluation runs, not after it.
            raise ValueError(f"--reference {args.reference} covers {', '.join(reference)}: none of the datasets "
                             f"evaluated ({', '.join(datasets)})")
        results = run(args, datasets, overrides, mesh_shape, input_size)
    except (FileNotFoundError, ValueError, OSError, DataError, ConversionError, CheckpointReadError) as e:
        print(f"zoejax-eval: error: {e}", file=sys.stderr)
        return 1
    if not lead:
        return 0
    from zoejax.evaluation.metrics import METRIC_TABLE
    from zoejax.evaluation.report import format_table, improvement_scores, write_json

    rows = [r.to_dict() for r in results]
    print(format_table(rows))
    payload = {"checkpoint": args.checkpoint, "flip_tta": not args.no_flip_tta, "results": rows,
               "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    if reference is not None:
        try:
            scores = improvement_scores({r["dataset"]: r["metrics"] for r in rows if r["metrics"]}, reference)
        except ValueError as e:
            print(f"zoejax-eval: error: --reference {args.reference}: {e}", file=sys.stderr)
            return 1
        payload["improvement"] = scores
        titles = {m.name: m.column for m in METRIC_TABLE}
        print(f"\nrelative improvement over {args.reference} (positive = better; mRItheta over "
              f"{', '.join(titles[m] for m in scores['compared'])}):")
        for dataset, value in scores["mRI_theta"].items():
            print(f"  mRItheta {dataset:<16}{100 * value:+8.2f} %")
        for metric, value in scores["mRID"].items():
            print(f"  mRID     {metric:<16}{100 * value:+8.2f} %")
        if scores["undefined"]:
            print(f"  undefined (reference value 0): {', '.join(scores['undefined'])}")
    unusable = bad_example_counts()
    if unusable:
        print(f"warning: {sum(unusable.values())} example(s) were left out of the scores "
              f"({', '.join(f'{n} {kind}' for kind, n in sorted(unusable.items()))}; each is named above)",
              file=sys.stderr)
    empty = [r["dataset"] for r in rows if not r["metrics"]]
    if empty:
        print(f"warning: no image with valid ground truth in {', '.join(empty)}", file=sys.stderr)
    if args.output:
        try:
            write_json(args.output, payload)
        except OSError as e:  # disk full, or the folder changed during the run; the table is printed above
            print(f"zoejax-eval: error: cannot write --output {args.output}: {e}", file=sys.stderr)
            return 1
        print(f"\nwrote {args.output}")
    return 0


def eval_image_size(model, input_size: tuple[int, int] | None) -> tuple[int, int]:
    """The fixed network input (H, W) every evaluation image is resized to: the model's ``input_size`` (ZoeDepth,
    relative MiDaS), or for a Depth Anything model, whose ``input_size`` is the lower side of a keep-aspect resize,
    ``--input-size`` or else its network size for a 480x640 frame (518x686). ValueError when it is not a size the
    model takes (both sides multiples of its input multiple: 32, or 14 on DINOv2)."""
    if isinstance(model.input_size, (tuple, list)):
        size = tuple(int(v) for v in model.input_size)
    else:
        size = tuple(input_size) if input_size else tuple(model.network_size(480, 640))
    if tuple(model.network_size(*size)) != size:
        multiple = model.config.input_multiple  # every family's config names it (zoejax.models.family)
        raise ValueError(f"--input-size {size[0]}x{size[1]} is not a network input of this model: both sides must "
                         f"be multiples of {multiple} (e.g. {'x'.join(map(str, model.network_size(*size)))})")
    return size


def run(args: argparse.Namespace, datasets: list[str], overrides: dict, mesh_shape: tuple[int, ...],
        input_size: tuple[int, int] | None) -> list:
    """Load the checkpoint, build the sharded evaluator, score every dataset."""
    import zoejax
    from zoejax.evaluation.relative_evaluator import evaluator_for
    from zoejax.evaluation.run import EvalDataSettings, evaluate_datasets
    from zoejax.models.family import module_for
    from zoejax.models.init import logical_axes
    from zoejax.training.sharding import make_mesh, param_shardings

    path = Path(args.checkpoint)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        model = zoejax.load(path, max_depth=args.max_depth, input_size=input_size,
                            variant="relative" if args.relative else None)
    except (ConversionError, CheckpointReadError, FileNotFoundError):
        raise  # their messages name the file
    except Exception as e:  # noqa: BLE001 - orbax / JSON / config errors of a damaged folder, reported in one line
        raise CheckpointReadError(f"cannot load checkpoint {path}: {type(e).__name__}: "
                                  f"{(str(e).splitlines() or [''])[0]}") from None
    image_size = eval_image_size(model, input_size)
    mesh = make_mesh(mesh_shape)
    # A relative model (MiDaS or Depth Anything) is scored by the relative protocol (least-squares aligned in
    # disparity, relative_evaluator); a metric one by the official metric protocol.
    evaluator = evaluator_for(module_for(model.config), mesh, param_shardings(logical_axes(model.config), mesh),
                              route_by_label=args.route_by_label)
    settings = EvalDataSettings(data_root=args.data_root, overrides=overrides, batch_size=args.batch_size,
                                image_size=image_size, synthetic_examples=args.synthetic_examples,
                                custom_domain=args.custom_domain, max_batches=-(-args.max_examples // args.batch_size),
                                num_workers=args.num_workers)
    return evaluate_datasets(evaluator, model.params, datasets, settings,
                             flip_tta=False if args.no_flip_tta else None, progress=not args.no_progress)


def entry() -> None:
    sys.exit(main())


if __name__ == "__main__":
    entry()
