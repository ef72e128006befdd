"""``zoejax-convert``: bring official / MiDaS v3.1 / Hugging Face ZoeDepth weights into zoejax, and back out.

  zoejax-convert ZoeD_M12_N.pt out/zoed_n                  # official release file -> orbax folder
  zoejax-convert dpt_beit_large_384.pt out/m12 --variant nk # MiDaS relative weights, fresh NK head
  zoejax-convert hf_model_folder/ out/zoed_nk               # model.safetensors + config.json
  zoejax-convert --to official out/zoed_n ZoeD_N_back.pt    # zoejax folder -> official .pt (strict-loadable)
  zoejax-convert --to hf out/zoed_n hf_out/                 # zoejax folder -> model.safetensors + config.json
  zoejax-convert --to stablehlo out/zoed_n serve/ --size 480x640   # jitted predict as a StableHLO artefact
  zoejax-convert --to onnx out/zoed_n zoed_n.onnx --size 480x640 --dynamic-batch --weights float16
  zoejax-convert depth_anything_v2_metric_hypersim_vitl.pth out/da2_hypersim_l   # Depth Anything (.pth or HF)
  zoejax-convert my_finetune.pth out/da2_s --preset da2_relative_vits            # a .pth not named as released

Exit status 0 on success, 1 on a conversion problem (all problems listed), 2 on bad usage.
"""

from __future__ import annotations

import argparse
import sys
import time

from zoejax.conversion.apply import ConversionError
from zoejax.conversion.detect import FORMATS, VARIANTS
from zoejax.conversion.readers import CheckpointReadError
from zoejax.conversion.table import EXTRA_REASONS, extra_group
from zoejax.io.safe_output import UnsafeOutputError
from zoejax.models.init import count_params

PLATFORMS = ("cpu", "cuda", "rocm", "tpu")  # the lowering targets jax.export knows


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="zoejax-convert", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n".join(__doc__.split("\n\n")[1:]))
    p.add_argument("input", help="checkpoint to convert (.pt, .safetensors or an HF folder); with --to, a "
                                 "zoejax folder written by this command or by training")
    p.add_argument("output", help="output folder (import, or --to hf) or .pt file (--to official)")
    p.add_argument("--to", choices=("official", "hf", "stablehlo", "onnx"), default=None,
                   help="export a zoejax folder to the official .pt or the HF layout, or any loadable checkpoint "
                        "to a StableHLO serving artefact or a self-contained .onnx file, instead of importing")
    p.add_argument("--size", default=None, metavar="HxW",
                   help="--to stablehlo / onnx: the input image size the artefact takes, e.g. 480x640")
    p.add_argument("--batch-size", type=int, default=1, help="--to stablehlo / onnx: images per call (default 1)")
    p.add_argument("--input-size", default=None, metavar="HxW",
                   help="--to stablehlo / onnx: network size target (default 384x512; 384x768 for ZoeD_K; Depth "
                        "Anything: its lower side, a multiple of 14, default 518)")
    p.add_argument("--no-flip-tta", action="store_true", help="--to stablehlo / onnx: leave out the mirrored pass")
    p.add_argument("--dynamic-batch", action="store_true",
                   help="--to onnx: any number of images per call (a symbolic batch axis B) instead of --batch-size")
    p.add_argument("--weights", choices=("float32", "float16"), default="float32",
                   help="--to onnx: stored weight precision (float16 halves the file; arithmetic stays float32)")
    p.add_argument("--program", choices=("predict", "forward"), default="predict",
                   help="--to onnx: the whole predict path (default) or the bare forward at the network size")
    p.add_argument("--platforms", default=None,
                   help="--to stablehlo: comma-separated lowering targets (cpu,cuda,tpu); default this machine's")
    p.add_argument("--format", choices=FORMATS, default=None,
                   help="source layout; detected from the keys when omitted (a mismatch is an error)")
    p.add_argument("--variant", choices=VARIANTS, default=None,
                   help="model variant; detected when omitted (for MiDaS files: the head to initialise)")
    p.add_argument("--max-depth", type=float, default=None,
                   help="ZoeD_K's bin range upper bound in metres: 10 = the released model (default), 80 = the "
                        "paper's KITTI protocol")
    p.add_argument("--preset", default=None,
                   help="Depth Anything .pth only: its model (e.g. da2_metric_vkitti_vitl), when the file name is "
                        "not the release's (the weights cannot tell V1 from V2 nor relative from metric)")
    p.add_argument("--seed", type=int, default=0, help="seed of a freshly initialised metric head (MiDaS input)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing output: a file, or a folder zoejax wrote (never one holding other "
                        "files or the input)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    t0 = time.perf_counter()
    try:
        if args.to == "stablehlo":
            return _export_stablehlo(args, t0)
        if args.to == "onnx":
            return _export_onnx(args, t0)
        if args.to:
            from zoejax.conversion.convert import export_checkpoint

            out = export_checkpoint(args.input, args.output, args.to, overwrite=args.overwrite)
            print(f"exported {args.input} to {args.to} layout: {out} ({time.perf_counter() - t0:.1f}s)")
            return 0
        from zoejax.conversion.convert import convert_file

        out, detected, converted = convert_file(args.input, args.output, format=args.format,
                                                variant=args.variant, max_depth=args.max_depth,
                                                overwrite=args.overwrite, seed=args.seed, preset=args.preset)
    except (ConversionError, CheckpointReadError, UnsafeOutputError, OSError, ValueError, ImportError,
            argparse.ArgumentTypeError) as e:  # OSError: missing or unreadable input, an existing output, disk full
        where = f"{args.output}: " if isinstance(e, OSError) and e.errno and not e.filename else ""
        print(f"zoejax-convert: error: {where}{e}", file=sys.stderr)  # a bare "[Errno 28]" names the output
        return 1
    print(f"source: {args.input} ({detected.describe()})")
    print(f"params: {count_params(converted.params):,}")
    for group in sorted({extra_group(n) for n in converted.extras}):
        print(f"kept aside for export: {group} ({EXTRA_REASONS.get(group, 'unused by the forward pass')})")
    if detected.format == "midas":
        print(f"metric head: freshly initialised (seed {args.seed}), ready for training")
    print(f"wrote {out} in {time.perf_counter() - t0:.1f}s")
    return 0


def _export_sizes(args: argparse.Namespace, target: str, artefact: str) -> tuple[int, int, tuple[int, int] | None]:
    """The image (height, width) an export takes and its network size target (None: the model's), checked."""
    from zoejax.cli.predict import parse_size

    if not args.size:
        raise ValueError(f"--to {target} needs --size HxW (the input image size the {artefact} takes)")
    height, width = parse_size(args.size)
    if args.batch_size < 1:
        raise ValueError("--batch-size must be >= 1")
    return height, width, parse_size(args.input_size) if args.input_size else None


def _export_stablehlo(args: argparse.Namespace, t0: float) -> int:
    import zoejax
    from zoejax.io.safe_output import check_dir_output
    from zoejax.serving.stablehlo import export_predict

    height, width, input_size = _export_sizes(args, "stablehlo", "artefact")
    platforms = [p.strip() for p in args.platforms.split(",")] if args.platforms else None
    unknown = sorted(set(platforms or ()) - set(PLATFORMS))
    if unknown:  # jax.export would write an artefact for a platform nothing runs
        raise ValueError(f"--platforms: unknown {', '.join(unknown)}; choose from {', '.join(PLATFORMS)}")
    check_dir_output(args.output, overwrite=args.overwrite, inputs=[args.input])  # before loading and lowering
    model = zoejax.load(args.input, max_depth=args.max_depth, variant=args.variant, input_size=input_size,
                        preset=args.preset)
    out = export_predict(model, args.output, height, width, args.batch_size,
                         flip_tta=False if args.no_flip_tta else None,  # None: the family's own (ZoeDepth: on)
                         platforms=platforms, overwrite=args.overwrite)
    print(f"exported predict for {args.batch_size}x{height}x{width} images to {out} "
          f"({time.perf_counter() - t0:.1f}s); load it with zoejax.serving.stablehlo.load_exported")
    return 0


def _export_onnx(args: argparse.Namespace, t0: float) -> int:
    import zoejax
    from zoejax.io.safe_output import check_file_output
    from zoejax.serving.onnx import export_onnx

    if args.platforms:
        raise ValueError("--platforms is for --to stablehlo; an ONNX file always gets the generic op forms")
    height, width, input_size = _export_sizes(args, "onnx", "file")
    check_file_output(args.output, overwrite=args.overwrite, inputs=[args.input])  # before loading and tracing
    model = zoejax.load(args.input, max_depth=args.max_depth, variant=args.variant, input_size=input_size,
                        preset=args.preset)
    batch = None if args.dynamic_batch else args.batch_size
    out = export_onnx(model, args.output, height, width, batch, program=args.program, weights=args.weights,
                      flip_tta=False if args.no_flip_tta else None,  # None: the family's own (ZoeDepth: on)
                      overwrite=args.overwrite)
    print(f"exported {args.program} for {'B' if batch is None else batch}x{height}x{width} images "
          f"({args.weights} weights) to {out} ({time.perf_counter() - t0:.1f}s); run it with onnxruntime")
    return 0


def entry() -> None:
    sys.exit(main())


if __name__ == "__main__":
    entry()
