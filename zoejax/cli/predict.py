"""``zoejax-predict``: depth for your own images, from any checkpoint zoejax can load (ZoeDepth, Depth Anything).

  zoejax-predict --checkpoint out/zoed_n --output depth/ photo.jpg more_photos/
  zoejax-predict --checkpoint ZoeD_M12_NK.pt --output depth/ --ply --fov 70 street/
  zoejax-predict --checkpoint out/zoed_n --output depth/ --focal-px 1450 phone_photos/

For every input ``IMAGE`` it writes ``OUT/<name>.png`` (16-bit depth in millimetres, 0 = invalid; it holds at
most 65.535 m, and a warning names the images clipped there), ``OUT/<name>.npy`` (float32 metres),
``OUT/<name>_color.png`` (near bright, far dark), with ``--confidence`` ``OUT/<name>_confidence.npy`` (0-1) and a
``OUT/<name>_confidence.png`` map (bright = confident) and, with ``--ply``, a coloured point cloud ``OUT/<name>.ply``;
``OUT/predictions.json`` lists every input with its outputs, depth range and, for ZoeD_NK, the head the router
chose. The depth has the input's size (the official ``infer``: reflect padding, resize to the network size, flip
averaging; Depth Anything: its own, see docs/inference.md). A relative model (Depth Anything V1 / V2 relative, MiDaS
v3.1 with ``--relative``, a relative training run) writes relative inverse depth instead: ``<name>.npy`` the raw
float32 output (unitless, larger is nearer), ``<name>.png`` the per-image min-max normalised map as uint16 (65535 =
nearest, 0 = farthest) and ``<name>_color.png`` that normalised map; no ``--ply`` (it needs metres). A file that
cannot be used is reported and skipped; the exit status is then 1 (also for a missing checkpoint or no input), 2 for
bad usage.

Nothing you own is overwritten: an OUT that holds an input image (however spelled: symlinks, "..") is refused;
inputs whose outputs would share a name (``x.png``'s ``x_color.png`` preview and ``x_color.png``'s depth) get
``<name>_1`` and a note; each image's files are replaced as one set, so a failure (a full disk) stops the run
with the image's old files untouched.
"""

from __future__ import annotations

import argparse
import inspect
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from tqdm import tqdm

from zoejax.host_memory import apply_from_environment
from zoejax.io.camera import focal_from_fov, focal_rescale
from zoejax.io.depth_files import (
    confidence_writers,
    depth_output_paths,
    write_depth,
    write_relative_depth,
)
from zoejax.io.images import ImageInputError, expand_inputs, output_stems, read_image
from zoejax.io.ply import DEFAULT_FOV_DEGREES, Intrinsics, write_ply
from zoejax.io.safe_output import atomic_path, holds_directly

SUMMARY_FILE = "predictions.json"
PNG_MAX_DEPTH_M = 65.535  # uint16 millimetres: <name>.png clips farther depths (ZoeD_K reaches 80 m)


def build_parser() -> argparse.ArgumentParser:
    doc = __doc__.split("\n\n")
    p = argparse.ArgumentParser(prog="zoejax-predict", description=doc[0], epilog="\n\n".join(doc[1:]),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("inputs", nargs="+", metavar="IMAGE_OR_DIR", help="image files and/or folders of images")
    p.add_argument("--checkpoint", required=True,
                   help="training work dir, zoejax-convert folder, official .pt or HF folder")
    p.add_argument("--output", required=True, help="output folder (created)")
    p.add_argument("--batch-size", type=int, default=4, help="images of one size per compiled call (default 4)")
    p.add_argument("--no-flip-tta", action="store_true", help="skip the mirrored pass (2x faster, less exact)")
    p.add_argument("--no-pad", action="store_true", help="skip the official reflect padding")
    p.add_argument("--no-npy", action="store_true", help="do not write <name>.npy")
    p.add_argument("--no-color", action="store_true", help="do not write <name>_color.png")
    p.add_argument("--confidence", action="store_true",
                   help="also write <name>_confidence.npy (float32, 0-1) and <name>_confidence.png (bright = "
                        "confident); see docs/inference.md")
    p.add_argument("--ply", action="store_true", help="also write a coloured point cloud <name>.ply")
    p.add_argument("--intrinsics", default=None, metavar="FX,FY,CX,CY",
                   help="pinhole intrinsics in pixels of the input images for --ply")
    p.add_argument("--focal-px", type=float, default=None,
                   help="the images' focal length in pixels: rescales the metric depth from the training camera's "
                        "to it (docs/inference.md, 'Camera intrinsics') and is the --ply camera")
    p.add_argument("--fov", type=float, default=None,
                   help="the images' horizontal field of view in degrees, instead of --focal-px (the same "
                        f"rescaling); without either, --ply assumes {DEFAULT_FOV_DEGREES:g} degrees and no rescaling")
    p.add_argument("--convert-to-rgb", action="store_true",
                   help="accept grayscale / palette / RGBA images (grey replicated, alpha dropped)")
    p.add_argument("--max-depth", type=float, default=None,
                   help="ZoeD_K only: bin range upper bound, 10 (released model) or 80 (paper's KITTI protocol)")
    p.add_argument("--input-size", default=None, metavar="HxW",
                   help="network size target (default 384x512; 384x768 for ZoeD_K; Depth Anything: the lower side, "
                        "518x518)")
    p.add_argument("--preset", default=None,
                   help="a Depth Anything .pth not named as released: its model, e.g. da2_relative_vitl")
    p.add_argument("--relative", action="store_true",
                   help="read a MiDaS v3.1 file (dpt_beit_large_384.pt, ...) as the relative model it is; without "
                        "it the file initialises ZoeDepth (fresh metric head). Relative runs load as such anyway")
    return p


def parse_size(text: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must be HxW, e.g. 384x512; got {text!r}") from None
    if h <= 0 or w <= 0:
        raise argparse.ArgumentTypeError(f"size must be positive, got {text!r}")
    return h, w


def _batches(files: list[Path], stems: list[Path], size: int, convert: bool, failures: dict[str, str],
             bar: tqdm) -> Iterator[list[tuple[Path, Path, np.ndarray]]]:
    """Consecutive readable images of one size, at most ``size`` at a time; unreadable files go to ``failures``."""
    group: list[tuple[Path, Path, np.ndarray]] = []
    for f, stem in zip(files, stems, strict=True):
        try:
            image = read_image(f, convert=convert)
        except ImageInputError as e:
            failures[str(f)] = str(e)
            bar.update(1)
            continue
        if group and (image.shape != group[0][2].shape or len(group) == size):
            yield group
            group = []
        group.append((f, stem, image))
    if group:
        yield group


def main(argv: list[str] | None = None) -> int:
    apply_from_environment()  # ZOEJAX_KEEP_HOST_MEMORY=1: before the first computation (zoejax/host_memory.py)
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.batch_size < 1:
        parser.error("--batch-size must be >= 1")
    try:
        input_size = parse_size(args.input_size) if args.input_size else None
        intrinsics = Intrinsics.parse(args.intrinsics) if args.intrinsics else None
        if args.fov is not None and not 0 < args.fov < 180:
            raise ValueError(f"--fov must be in (0, 180) degrees, got {args.fov}")
        if args.focal_px is not None and not args.focal_px > 0:
            raise ValueError(f"--focal-px must be > 0 pixels, got {args.focal_px}")
        if sum(v is not None for v in (args.focal_px, args.fov, intrinsics)) > 1:
            raise ValueError("give one of --focal-px, --fov and --intrinsics")
    except (ValueError, argparse.ArgumentTypeError) as e:
        parser.error(str(e))
    out = Path(args.output)
    try:
        files = expand_inputs(args.inputs)
        _check_output_folder(out, files)
        stems, renamed = collision_free_stems(files, output_stems(files, out), npy=not args.no_npy,
                                              color=not args.no_color, ply=args.ply)
    except ImageInputError as e:
        print(f"zoejax-predict: error: {e}", file=sys.stderr)
        return 1
    for src, stem in renamed:
        print(f"note: the outputs of {src} are named {stem.name}.* (another input's outputs take its own name)",
              file=sys.stderr)
    model = _load_model(args.checkpoint, args.max_depth, input_size, args.preset, args.relative)
    if model is None:
        return 1
    relative = model.output == "relative_depth"
    if relative and (args.ply or args.focal_px is not None or args.fov is not None):
        flag = "--ply" if args.ply else "--focal-px" if args.focal_px is not None else "--fov"
        print(f"zoejax-predict: error: {args.checkpoint} predicts relative depth: {flag} needs a metric model",
              file=sys.stderr)
        return 1
    if args.confidence and "confidence" not in inspect.signature(model.predict_batch).parameters:
        print(f"zoejax-predict: error: --confidence: {type(model).__name__} has no confidence map (ZoeDepth "
              f"models have one)", file=sys.stderr)
        return 1

    failures: dict[str, str] = {}
    write_error = ""
    clipped: dict[str, int] = {}
    records = []
    compiled: set[tuple] = set()
    t0 = time.perf_counter()
    with tqdm(total=len(files), desc="predict", unit="img") as bar:
        for group in _batches(files, stems, args.batch_size, args.convert_to_rgb, failures, bar):
            images = np.stack([g[2] for g in group])
            if (images.shape[1:3], args.batch_size) in compiled:  # a short tail reuses the full batch's program
                images = np.concatenate([images, np.repeat(images[-1:], args.batch_size - len(group), 0)])
            compiled.add((images.shape[1:3], len(images)))
            try:
                # Flags off: the family's own default (ZoeDepth pads and mirrors; Depth Anything does neither).
                pred = model.predict_batch(images, pad_input=False if args.no_pad else None,
                                           flip_tta=False if args.no_flip_tta else None,
                                           **({"confidence": True} if args.confidence else {}))
            except ValueError as e:  # e.g. too small: every image of this group has the same size
                failures.update({str(g[0]): f"{g[0]}: {e}" for g in group})
                bar.update(len(group))
                continue
            for k, (src, stem, image) in enumerate(group):
                depth = pred.depth[k]
                camera = None
                if not relative:  # a focal length rescales metres; relative depth has no scale to follow it
                    try:
                        camera = image_camera(model, pred, k, depth.shape, args.focal_px, args.fov)
                    except ValueError as e:
                        print(f"zoejax-predict: error: {e}", file=sys.stderr)
                        return 1
                    if camera is not None:
                        depth = depth * np.float32(camera[1])
                record = {"input": str(src), "outputs": [], "height": depth.shape[0], "width": depth.shape[1]}
                unit = "relative" if relative else "m"
                record.update({f"min_depth_{unit}": float(depth.min()), f"max_depth_{unit}": float(depth.max())})
                try:
                    confidence = pred.confidence[k] if args.confidence else None
                    if relative:
                        written = write_relative_depth(stem, depth, npy=not args.no_npy, color=not args.no_color)
                    else:
                        written = _write_outputs(stem, depth, image, args, camera[0] if camera else intrinsics,
                                                 record, confidence)
                except OSError as e:  # disk full, permissions: the next image would fail alike
                    write_error = f"{src}: writing its outputs into {out} failed ({e}); its outputs of any " \
                                  "earlier run are unchanged"
                    failures[str(src)] = write_error
                    break
                record["outputs"] = [str(p) for p in written]
                beyond = 0 if relative else int(np.sum(depth > PNG_MAX_DEPTH_M))
                if beyond:
                    record["png_clipped_pixels"] = beyond
                    clipped[str(src)] = beyond
                if pred.domain is not None:
                    record["domain"] = pred.domain_names[int(pred.domain[k])]
                if camera is not None:
                    record["focal_px"], record["depth_rescale"] = camera[0].fx, camera[1]
                records.append(record)
            bar.update(len(group))
            if write_error:
                break
    bar_time = time.perf_counter() - t0
    summary = {"checkpoint": args.checkpoint, "output": model.output, "units": model.units,
               "flip_tta": (not args.no_flip_tta) and model.default_flip_tta, "predictions": records,
               "failures": failures}
    try:
        with atomic_path(out / SUMMARY_FILE) as tmp:
            tmp.write_text(json.dumps(summary, indent=1))
    except OSError as e:
        print(f"zoejax-predict: error: writing {out / SUMMARY_FILE} failed ({e})", file=sys.stderr)
        write_error = write_error or str(e)
    if write_error:
        print(f"zoejax-predict: error: {write_error}; stopped after {len(records)} of {len(files)} image(s)",
              file=sys.stderr)
        return 1
    written_as = "<name>.png: uint16 normalised (65535 = nearest), <name>.npy: float32 relative inverse depth" \
        if relative else "<name>.png: uint16 mm, <name>.npy: float32 m"
    print(f"wrote depth for {len(records)} image(s) to {out}/ in {bar_time:.1f}s ({written_as})")
    if clipped:
        print(f"warning: {len(clipped)} image(s) have depth beyond {PNG_MAX_DEPTH_M} m, the most a 16-bit "
              f"millimetre PNG holds: those pixels are {PNG_MAX_DEPTH_M} m in <name>.png (the .npy keeps the exact "
              f"metres; predictions.json counts them as png_clipped_pixels): {', '.join(clipped)}", file=sys.stderr)
    if failures:
        print(f"{len(failures)} of {len(files)} input(s) failed:", file=sys.stderr)
        for message in failures.values():
            print(f"  {message}", file=sys.stderr)
        return 1
    return 0


def _write_outputs(stem: Path, depth: np.ndarray, image: np.ndarray, args: argparse.Namespace,
                   intrinsics: Intrinsics | None, record: dict, confidence: np.ndarray | None = None) -> list[Path]:
    """One image's files as one set: all new or, on failure, all as they were. Adds ``ply_points`` to
    ``record`` with ``--ply``; ``confidence`` (H, W) in [0, 1] is written as ``<name>_confidence.npy`` / ``.png``."""
    extra = []
    if confidence is not None:
        extra += confidence_writers(stem, confidence)
    if args.ply:
        k = intrinsics or Intrinsics.from_fov(*depth.shape, DEFAULT_FOV_DEGREES)

        def ply(tmp: Path) -> None:
            record["ply_points"] = write_ply(tmp, depth, image, k)
        extra.append((stem.with_name(stem.name + ".ply"), ply))
    return write_depth(stem, depth, npy=not args.no_npy, color=not args.no_color, extra=extra)


def image_camera(model, pred, k: int, shape: tuple[int, int], focal_px: float | None, fov: float | None
                 ) -> tuple[Intrinsics, float] | None:
    """With ``--focal-px`` or ``--fov``: the image's pinhole (principal point at the centre) and the factor from
    the training camera of the head that predicted image ``k`` (``zoejax.io.camera``); None without either."""
    if focal_px is None and fov is None:
        return None
    height, width = shape
    focal = focal_px if focal_px is not None else focal_from_fov(width, fov)
    if pred.domain is not None:
        domain = pred.domain_names[int(pred.domain[k])]
    else:
        names = getattr(model.config, "domain_names", ())
        if len(names) != 1 or getattr(pred, "output", "metric_depth") != "metric_depth":
            raise ValueError("--focal-px / --fov rescale metric depth by the training camera, which this model "
                             "does not record; leave them out")
        domain = names[0]
    return Intrinsics(focal, focal, (width - 1) / 2, (height - 1) / 2), focal_rescale(domain, focal, width)


def _check_output_folder(out: Path, files: list[Path]) -> None:
    """Refuse an ``--output`` that is a file or holds an input directly (however either is spelled: symlinks,
    ``..``, case on a case-insensitive filesystem), where an output could replace it."""
    existing = next(p for p in (out.absolute(), *out.absolute().parents) if p.exists())
    if not existing.is_dir():
        raise ImageInputError(f"--output {out}: {existing} is a file; give a folder (it is created if missing)")
    held = [f for f in files if holds_directly(out, f)]
    if held:
        raise ImageInputError(f"--output {out} holds the input {held[0]}" + (f" and {len(held) - 1} more"
                              if len(held) > 1 else "") + "; choose an output folder without inputs in it")


def collision_free_stems(files: list[Path], stems: list[Path], *, npy: bool, color: bool, ply: bool
                         ) -> tuple[list[Path], list[tuple[Path, Path]]]:
    """Stems whose output files are all distinct, also ignoring case (``x.png``'s preview ``x_color.png`` is
    ``x_color.png``'s depth PNG): a stem whose outputs would collide with an earlier input's gets ``_1``, ``_2``,
    ... Returns the stems and the (input, stem) pairs that were renamed."""
    def names(stem: Path) -> list[str]:
        paths = depth_output_paths(stem, npy=npy, color=color) + ([stem.with_name(stem.name + ".ply")] * ply)
        paths += [p for p, _ in confidence_writers(stem, None)]  # reserved whether or not --confidence is given
        return [p.name.casefold() for p in paths]

    used, result, renamed = {SUMMARY_FILE.casefold()}, [], []
    for f, stem in zip(files, stems, strict=True):
        candidate, k = stem, 1
        while used.intersection(names(candidate)):
            candidate, k = stem.with_name(f"{stem.name}_{k}"), k + 1
        if candidate != stem:
            renamed.append((f, candidate))
        used.update(names(candidate))
        result.append(candidate)
    return result, renamed


def _load_model(checkpoint: str, max_depth: float | None, input_size, preset: str | None = None,
                relative: bool = False):
    """zoejax.load with its failures turned into one clear line (None on failure)."""
    path = Path(checkpoint)
    if not path.exists():
        print(f"zoejax-predict: error: checkpoint not found: {path}", file=sys.stderr)
        return None
    import zoejax

    try:
        return zoejax.load(path, max_depth=max_depth, input_size=input_size, preset=preset,
                           variant="relative" if relative else None)
    except Exception as e:  # noqa: BLE001 - any unreadable checkpoint is reported, not traced
        print(f"zoejax-predict: error: cannot load checkpoint {path}: {type(e).__name__}: {e}", file=sys.stderr)
        return None


def entry() -> None:
    sys.exit(main())


if __name__ == "__main__":
    entry()
