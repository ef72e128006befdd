"""``zoejax-data``: check, create and look at datasets in the custom layout (docs/data.md).

  zoejax-data check data/list.csv                 # one line per bad row + a summary; exit 1 if any is bad
  zoejax-data synth data/synth --num 200          # 200 synthetic indoor frames + data/synth/list.csv
  zoejax-data synth data/street --num 50 --outdoor --size 352x1216 --format jsonl
  zoejax-data show data/list.csv --index 3 --out row3.png   # image | depth | valid side by side
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

_PALETTE = np.array([[48, 18, 59], [40, 120, 240], [30, 200, 160], [200, 220, 50], [240, 100, 30],
                     [122, 4, 3]], np.float32)  # dark blue (near) -> dark red (far)


def _size(text: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected HxW such as 480x640, got {text!r}") from None
    if h < 2 or w < 2:
        raise argparse.ArgumentTypeError(f"size must be at least 2x2, got {text!r}")
    return h, w


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="zoejax-data", description="Validate, synthesise and inspect depth datasets in the custom "
        "CSV/JSONL layout (columns image, depth, depth_scale, optional focal/fx/fy/cx/cy, valid_mask).")
    sub = parser.add_subparsers(dest="command", required=True)

    check = sub.add_parser("check", help="validate every row of a custom dataset list",
                           description="Checks each row: it parses, its files exist and decode, depth and "
                           "mask match the image size, and the depth has a pixel inside the depth range. "
                           "Prints one line per bad row and a summary; exits 1 if any row is bad.")
    check.add_argument("list", help="the .csv or .jsonl list file")
    check.add_argument("--root", default="", help="directory relative paths are resolved against "
                       "(default: the list file's directory)")
    check.add_argument("--min-depth", type=float, default=1e-3, help="valid depth lower bound in metres "
                       "(strict; default 0.001)")
    check.add_argument("--max-depth", type=float, default=80.0, help="valid depth upper bound in metres "
                       "(strict; default 80)")
    check.add_argument("--no-progress", action="store_true", help="hide the progress bar")

    synth = sub.add_parser("synth", help="write a synthetic RGB-D dataset in the custom layout",
                           description="Renders procedural rooms or streets with exact metric depth into "
                           "OUT_DIR/rgb, OUT_DIR/depth (16-bit PNG) and OUT_DIR/list.csv (or .jsonl).")
    synth.add_argument("out_dir", help="output directory (created; one holding a dataset is refused, never "
                       "overwritten)")
    synth.add_argument("--num", type=int, required=True, help="number of frames")
    synth.add_argument("--outdoor", action="store_true",
                       help="streets up to 80 m instead of rooms up to 10 m")
    synth.add_argument("--size", type=_size, default=None, help="frame size HxW (default 480x640 indoor, "
                       "352x1216 outdoor)")
    synth.add_argument("--seed", type=int, default=0, help="scene seed (frame i depends only on seed and i)")
    synth.add_argument("--format", choices=("csv", "jsonl"), default="csv", help="list file format")
    synth.add_argument("--image-format", choices=("png", "jpg"), default="png",
                       help="RGB file format (png lossless, jpg quality 95)")
    synth.add_argument("--no-progress", action="store_true", help="hide the progress bar")

    show = sub.add_parser("show", help="render one row as image | depth | valid mask",
                          description="Writes a PNG with the row's image, its depth in false colour (near "
                          "blue, far red; invalid black) and its validity mask, side by side.")
    show.add_argument("list", help="the .csv or .jsonl list file")
    show.add_argument("--index", type=int, default=0, help="0-based row index (default 0)")
    show.add_argument("--out", required=True, help="output PNG path")
    show.add_argument("--root", default="", help="directory relative paths are resolved against")
    return parser


def _check(args: argparse.Namespace) -> int:
    from data_pipelines.errors import DataError
    from data_pipelines.validate import validate_list

    if not args.min_depth < args.max_depth:
        print(f"error: --min-depth {args.min_depth} must be < --max-depth {args.max_depth}", file=sys.stderr)
        return 2
    try:
        report = validate_list(args.list, args.root, (args.min_depth, args.max_depth),
                               progress=not args.no_progress)
    except DataError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for problem in report.problems:
        print(problem)
    print(report.summary())
    if report.num_rows == 0:
        print(f"error: {args.list} lists no examples", file=sys.stderr)
        return 1
    return 0 if report.ok else 1


def _synth(args: argparse.Namespace) -> int:
    from data_pipelines.sources.synthetic import DEFAULT_SIZE
    from data_pipelines.synthetic.writer import write_synthetic_dataset

    if args.num < 1:
        print("error: --num must be >= 1", file=sys.stderr)
        return 2
    size = args.size or DEFAULT_SIZE[1 if args.outdoor else 0]
    try:
        path = write_synthetic_dataset(args.out_dir, args.num, outdoor=args.outdoor, seed=args.seed, size=size,
                                       list_format=args.format, image_format=args.image_format,
                                       progress=not args.no_progress)
    except OSError as e:  # an existing dataset (never overwritten), a full disk
        print(f"error: {e}", file=sys.stderr)
        return 2 if isinstance(e, FileExistsError) else 1
    print(f"wrote {args.num} frames of {size[0]}x{size[1]} and {path}")
    return 0


def colourise(depth: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """float32 (H, W) metres -> uint8 (H, W, 3) false colour over the valid range; invalid pixels black."""
    if not valid.any():
        return np.zeros(depth.shape + (3,), np.uint8)
    lo, hi = float(depth[valid].min()), float(depth[valid].max())
    x = np.clip((depth - lo) / max(hi - lo, 1e-6), 0, 1) * (len(_PALETTE) - 1)
    i = np.minimum(x.astype(np.int32), len(_PALETTE) - 2)
    f = (x - i)[..., None]
    rgb = _PALETTE[i] * (1 - f) + _PALETTE[i + 1] * f
    return np.where(valid[..., None], rgb, 0).astype(np.uint8)


def _show(args: argparse.Namespace) -> int:
    from PIL import Image

    from data_pipelines.errors import DataError
    from data_pipelines.sources.custom import load_row, parse_custom_list

    try:
        rows = parse_custom_list(args.list, args.root)
        if not 0 <= args.index < len(rows):
            print(f"error: --index {args.index} out of range (the list has {len(rows)} rows)",
                  file=sys.stderr)
            return 2
        example = load_row(rows[args.index], domain=0)
    except DataError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    valid = example["valid"]
    mask = np.repeat((valid * 255).astype(np.uint8)[..., None], 3, axis=2)
    panel = np.concatenate([example["image"], colourise(example["depth"], valid), mask], axis=1)
    try:
        Image.fromarray(panel).save(args.out)
    except (OSError, ValueError) as e:  # no such folder, no permission, an extension Pillow does not know
        print(f"error: cannot write --out {args.out}: {e}", file=sys.stderr)
        return 2
    d = example["depth"][valid]
    stats = f"{d.min():.3f}..{d.max():.3f} m" if d.size else "no valid depth"
    print(f"{rows[args.index].where}: {valid.shape[0]}x{valid.shape[1]}, depth {stats}, "
          f"{valid.mean():.1%} valid -> {args.out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``zoejax-data``; returns the exit status (0 ok, 1 bad rows found, 2 usage error)."""
    args = _parser().parse_args(argv)
    handler = {"check": _check, "synth": _synth, "show": _show}[args.command]
    return handler(args)


if __name__ == "__main__":
    sys.exit(main())
