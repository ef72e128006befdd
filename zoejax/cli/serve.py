"""``zoejax-serve``: a web page and an HTTP API for depth from any checkpoint zoejax can load.

  zoejax-serve --checkpoint out/zoed_n
  zoejax-serve --checkpoint ZoeD_M12_NK.pt --host 0.0.0.0 --port 8080 --max-pixels 4000000

Open http://HOST:PORT/ and drop an image on the page: it shows the input, the colour depth map, the confidence
map and a point cloud to rotate with the mouse, with downloads of the 16-bit PNG, the NPY and the PLY. The API:
``curl --data-binary @photo.jpg 'http://127.0.0.1:8000/predict?format=npy' -o depth.npy`` (format json, png,
npy or ply; see docs/serving.md). One worker runs the model, one request at a time, from a program compiled once
per input size (the first image of a new size waits for its compilation). Bad uploads get a 4xx answer with a
message. Nothing is fetched from the network: the page's script is served by this process.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from zoejax.cli.predict import parse_size
from zoejax.host_memory import apply_from_environment, limit_malloc_arenas


def build_parser() -> argparse.ArgumentParser:
    doc = __doc__.split("\n\n")
    p = argparse.ArgumentParser(prog="zoejax-serve", description=doc[0], epilog="\n\n".join(doc[1:]),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True,
                   help="training work dir, zoejax-convert folder, official .pt, HF folder or Depth Anything .pth")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only; 0.0.0.0 for every interface)")
    p.add_argument("--port", type=int, default=8000, help="TCP port (default 8000)")
    p.add_argument("--max-upload-mb", type=float, default=20.0, help="largest upload in MB (default 20)")
    p.add_argument("--max-pixels", type=int, default=16_000_000,
                   help="largest image in pixels, width x height (default 16000000)")
    p.add_argument("--max-compiled", type=int, default=8,
                   help="input sizes whose compiled programs are kept (default 8; least recently used dropped)")
    p.add_argument("--max-queue", type=int, default=64,
                   help="requests that may wait for the model; more get 503 (default 64)")
    p.add_argument("--keep-results", type=int, default=16,
                   help="recent results whose downloads stay available (default 16)")
    p.add_argument("--fov", type=float, default=60.0,
                   help="horizontal field of view in degrees the point cloud assumes (default 60)")
    p.add_argument("--max-depth", type=float, default=None,
                   help="ZoeD_K only: bin range upper bound, 10 (released model) or 80 (paper's KITTI protocol)")
    p.add_argument("--input-size", default=None, metavar="HxW",
                   help="network size target (default 384x512; 384x768 for ZoeD_K; Depth Anything: 518x518)")
    p.add_argument("--preset", default=None,
                   help="a Depth Anything .pth not named as released: its model, e.g. da2_relative_vitl")
    p.add_argument("--log-level", default="warning", choices=("debug", "info", "warning", "error"),
                   help="uvicorn's log level (default warning; info logs every request)")
    return p


def main(argv: list[str] | None = None) -> int:
    if not apply_from_environment():  # ZOEJAX_KEEP_HOST_MEMORY=1: one arena (zoejax/host_memory.py)
        # Before any thread allocates: the server's memory then levels off near its first requests' peak
        # (480x640, 200 requests from 8 clients: 653 / 747 / 760 / 751 / 754 MB after each quarter with 2 arenas;
        # 678 / 834 / 877 / 892 / 913 MB, still rising, without).
        limit_malloc_arenas(2)
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        input_size = parse_size(args.input_size) if args.input_size else None
    except argparse.ArgumentTypeError as e:
        parser.error(str(e))
    for flag, value in (("--max-compiled", args.max_compiled), ("--max-queue", args.max_queue),
                        ("--keep-results", args.keep_results), ("--max-pixels", args.max_pixels)):
        if value < 1:
            parser.error(f"{flag} must be >= 1, got {value}")
    if not args.max_upload_mb > 0:
        parser.error(f"--max-upload-mb must be > 0, got {args.max_upload_mb}")
    if not 0 < args.fov < 180:
        parser.error(f"--fov must be in (0, 180) degrees, got {args.fov}")
    if not 0 <= args.port <= 65535:
        parser.error(f"--port must be in 0..65535, got {args.port}")

    model = _load_model(args.checkpoint, args.max_depth, input_size, args.preset)
    if model is None:
        return 1
    import uvicorn

    from zoejax.serving.predictor import SerialPredictor
    from zoejax.serving.web import create_app

    predictor = SerialPredictor(model, max_compiled=args.max_compiled, max_pending=args.max_queue)
    app = create_app(predictor, max_upload_bytes=int(args.max_upload_mb * 1e6), max_pixels=args.max_pixels,
                     keep_results=args.keep_results, fov_degrees=args.fov)
    print(f"zoejax-serve: {type(model).__name__} ({model.output}) from {args.checkpoint} on "
          f"http://{args.host}:{args.port}/ (Ctrl-C stops)", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)
    return 0


def _load_model(checkpoint: str, max_depth: float | None, input_size, preset: str | None):
    """zoejax.load with its failures turned into one clear line (None on failure)."""
    path = Path(checkpoint)
    if not path.exists():
        print(f"zoejax-serve: error: checkpoint not found: {path}", file=sys.stderr)
        return None
    import zoejax

    try:
        return zoejax.load(path, max_depth=max_depth, input_size=input_size, preset=preset)
    except Exception as e:  # noqa: BLE001 - any unreadable checkpoint is reported, not traced
        print(f"zoejax-serve: error: cannot load checkpoint {path}: {type(e).__name__}: {e}", file=sys.stderr)
        return None


def entry() -> None:
    sys.exit(main())


if __name__ == "__main__":
    entry()
