"""The ``zoejax-serve`` web app: a page to drop an image on, and the HTTP API behind it (Starlette).

Routes:
  GET  /                      the page (``static/index.html``; its script and viewer are in ``static/``, nothing
                              is fetched from elsewhere)
  POST /predict               the request body is the image file itself (any format Pillow reads). ``?format=``
                              json (default): the colour depth map, the confidence map (PNGs as data URLs), a
                              point sample for the viewer and the download links of the result; png: the depth
                              as a 16-bit PNG (millimetres, 0 = invalid; relative models: 65535 = nearest);
                              npy: float32 depth (metres); ply: the coloured point cloud (metric models)
  GET  /results/{id}/{file}   depth.png, depth.npy, depth.ply or confidence.npy of a recent json result (the
                              server keeps the last ``keep_results``)
  GET  /health                the model, the compiled input sizes, the queue

A bad upload (empty, not an image, over the byte or pixel limit, too small, a form instead of the file) gets a
4xx answer with ``{"error": message}`` and changes nothing else. All predictions go through one
``SerialPredictor`` (one device worker, one compiled program per input size).
"""

from __future__ import annotations

import base64
import contextlib
import io
import math
import secrets
from collections import OrderedDict
from pathlib import Path

import anyio.to_thread
import numpy as np
from PIL import Image
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from zoejax.io.depth_files import colorize, depth_to_uint16_mm, normalise_relative
from zoejax.io.images import ImageInputError, ImageTooLargeError, decode_image_bytes
from zoejax.io.ply import Intrinsics, backproject, ply_bytes
from zoejax.serving.predictor import DepthResult, SerialPredictor, ServerBusyError

STATIC_DIR = Path(__file__).parent / "static"
FORMATS = ("json", "png", "npy", "ply")
RESULT_FILES = ("depth.png", "depth.npy", "depth.ply", "confidence.npy")
MEDIA_TYPES = {"png": "image/png", "npy": "application/octet-stream", "ply": "application/octet-stream"}


class Served:
    """One json result kept for its downloads: the input image (H, W, 3) uint8 and its ``DepthResult``."""

    def __init__(self, image: np.ndarray, result: DepthResult):
        self.image, self.result = image, result


def create_app(predictor: SerialPredictor, *, max_upload_bytes: int = 20_000_000, max_pixels: int = 16_000_000,
               keep_results: int = 16, fov_degrees: float = 60.0, viewer_points: int = 40_000,
               host_threads: int = 4) -> Starlette:
    """The app serving ``predictor``'s model.

    Args:
      predictor: the device worker (``SerialPredictor``).
      max_upload_bytes: the largest request body read (413 beyond).
      max_pixels: the largest image, width x height, decoded (413 beyond; read from the header first).
      keep_results: json results whose downloads stay available (oldest dropped first).
      fov_degrees: the horizontal field of view the point cloud (viewer and PLY) assumes.
      viewer_points: at most this many points are sent to the page's viewer (the PLY has every pixel).
      host_threads: threads that decode uploads and encode answers, beside the one device worker.
    """
    model = predictor.model
    metric = model.output == "metric_depth"
    kept: OrderedDict[str, Served] = OrderedDict()

    async def page(request: Request) -> Response:
        return FileResponse(STATIC_DIR / "index.html")

    async def health(request: Request) -> Response:
        return JSONResponse({
            "status": "ok", "model": type(model).__name__, "output": model.output, "units": model.units,
            "confidence": predictor.has_confidence, "source": str(model.provenance.get("source", "")),
            "compiled_sizes": [list(s) for s in predictor.compiled_sizes()], "compiles": predictor.compiles,
            "predictions": predictor.calls, "pending": predictor.pending, "most_at_once": predictor.most_at_once,
            "kept_results": len(kept), "limits": {"max_upload_bytes": max_upload_bytes, "max_pixels": max_pixels}})

    async def predict(request: Request) -> Response:
        fmt = request.query_params.get("format", "json")
        if fmt not in FORMATS:
            raise HTTPException(400, f"format={fmt!r} is not one of {', '.join(FORMATS)}")
        if fmt == "ply" and not metric:
            raise HTTPException(400, f"format=ply needs metres; this model predicts {model.output}")
        if request.headers.get("content-type", "").startswith("multipart/"):
            raise HTTPException(415, "send the image file itself as the request body (curl --data-binary "
                                     "@photo.jpg), not a multipart form")
        data = await _read_body(request, max_upload_bytes)
        name = request.query_params.get("name", "upload")[:200]
        try:
            image = await run_in_threadpool(decode_image_bytes, data, name, max_pixels)
        except ImageTooLargeError as e:
            raise HTTPException(413, str(e)) from None
        except ImageInputError as e:
            raise HTTPException(415 if data else 400, str(e)) from None
        try:
            result = await predictor.predict(image)
        except ServerBusyError as e:
            raise HTTPException(503, str(e)) from None
        except ValueError as e:  # too small for the model: the message says the minimum
            raise HTTPException(422, f"{name}: {e}") from None
        if fmt != "json":
            body = await run_in_threadpool(render_file, f"depth.{fmt}", image, result, metric, fov_degrees)
            return Response(body, media_type=MEDIA_TYPES[fmt],
                            headers={"Content-Disposition": f'attachment; filename="depth.{fmt}"'})
        rid = secrets.token_hex(8)
        kept[rid] = Served(image, result)
        while len(kept) > keep_results:
            kept.popitem(last=False)
        body = await run_in_threadpool(json_body, image, result, metric, fov_degrees, viewer_points)
        files = [f for f in RESULT_FILES if (f != "depth.ply" or metric)
                 and (f != "confidence.npy" or result.confidence is not None)]
        body.update(id=rid, output=model.output, units=model.units,
                    downloads={f: f"/results/{rid}/{f}" for f in files})
        return JSONResponse(body)

    async def result_file(request: Request) -> Response:
        rid, file = request.path_params["rid"], request.path_params["file"]
        served = kept.get(rid)
        if served is None:
            raise HTTPException(404, f"result {rid} is not kept any more (the server keeps the last "
                                     f"{keep_results}); upload the image again")
        if file not in RESULT_FILES or (file == "depth.ply" and not metric) or (
                file == "confidence.npy" and served.result.confidence is None):
            raise HTTPException(404, f"no {file} for this result")
        body = await run_in_threadpool(render_file, file, served.image, served.result, metric, fov_degrees)
        return Response(body, media_type=MEDIA_TYPES[file.rpartition(".")[2]],
                        headers={"Content-Disposition": f'attachment; filename="{file}"'})

    async def http_error(request: Request, exc: HTTPException) -> Response:
        return JSONResponse({"error": exc.detail}, status_code=exc.status_code)

    app = Starlette(routes=[
        Route("/", page), Route("/health", health), Route("/predict", predict, methods=["POST"]),
        Route("/results/{rid}/{file}", result_file), Mount("/static", StaticFiles(directory=STATIC_DIR)),
    ], exception_handlers={HTTPException: http_error}, lifespan=_lifespan(predictor, host_threads))
    return app


def _lifespan(predictor: SerialPredictor, host_threads: int):
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        # Decoding uploads and encoding answers run in anyio's thread pool, 40 threads by default: each thread
        # that allocates gets its own glibc malloc arena, and the resident memory grew ~60 MB per 50 requests
        # over 200 (480x640, 8 clients) before levelling off; a few threads are as fast on a few cores.
        anyio.to_thread.current_default_thread_limiter().total_tokens = host_threads
        yield
        predictor.close()  # the worker thread ends with the server
    return lifespan


async def _read_body(request: Request, limit: int) -> bytes:
    """The request body, refused (413) as soon as it passes ``limit`` bytes, declared or streamed."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"upload of {int(declared)} bytes is over the limit of {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPException(413, f"upload is over the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(array, np.float32))
    return buffer.getvalue()


def depth_png16(depth: np.ndarray, metric: bool) -> np.ndarray:
    """(H, W) uint16: millimetres for metric depth (as zoejax-predict's <name>.png), else the per-image min-max
    normalised relative map x 65535 (65535 = nearest)."""
    if metric:
        return depth_to_uint16_mm(depth)
    return np.round(normalise_relative(depth) * 65535).astype(np.uint16)


def color_map(depth: np.ndarray, metric: bool) -> np.ndarray:
    """(H, W, 3) uint8 preview, near bright and far dark, as zoejax-predict's <name>_color.png."""
    return colorize(depth) if metric else colorize(2.0 - normalise_relative(depth), 1.0, 2.0)


def render_file(file: str, image: np.ndarray, result: DepthResult, metric: bool, fov_degrees: float) -> bytes:
    """The bytes of one download (``RESULT_FILES``) of ``result``."""
    if file == "depth.png":
        return _png(depth_png16(result.depth, metric))
    if file == "depth.npy":
        return _npy(result.depth)
    if file == "confidence.npy":
        return _npy(result.confidence)
    if file == "depth.ply":
        return ply_bytes(result.depth, image, Intrinsics.from_fov(*result.depth.shape, fov_degrees))[0]
    raise ValueError(f"unknown result file {file!r}")


def viewer_points(depth: np.ndarray, image: np.ndarray, fov_degrees: float, budget: int) -> dict:
    """At most ``budget`` points of the cloud (every s-th row and column), as base64 little-endian float32 xyz
    (metres, camera frame: x right, y down, z forward) and uint8 rgb, for the page's viewer."""
    h, w = depth.shape
    step = max(1, math.ceil(math.sqrt(h * w / budget)))
    xyz = backproject(depth, Intrinsics.from_fov(h, w, fov_degrees))[::step, ::step].reshape(-1, 3)
    rgb = image[::step, ::step].reshape(-1, 3)
    keep = np.isfinite(xyz).all(1) & (xyz[:, 2] > 0)
    return {"count": int(keep.sum()), "step": step,
            "xyz": base64.b64encode(xyz[keep].astype("<f4").tobytes()).decode("ascii"),
            "rgb": base64.b64encode(np.ascontiguousarray(rgb[keep], np.uint8).tobytes()).decode("ascii")}


def json_body(image: np.ndarray, result: DepthResult, metric: bool, fov_degrees: float, budget: int) -> dict:
    """The json answer's images and numbers (``create_app`` adds the id, units and download links)."""
    depth = result.depth
    finite = depth[np.isfinite(depth)]
    body = {"height": int(depth.shape[0]), "width": int(depth.shape[1]),
            "depth_min": float(finite.min()) if finite.size else None,
            "depth_max": float(finite.max()) if finite.size else None, "domain": result.domain,
            "depth_color": "data:image/png;base64," + base64.b64encode(_png(color_map(depth, metric))).decode(),
            "confidence_color": None, "confidence_mean": None, "points": None}
    if result.confidence is not None:
        # colorize shows small values bright: 1.001 - c on a fixed 0-1 scale puts confident pixels bright
        png = _png(colorize(1.001 - result.confidence, 0.0, 1.0))
        body["confidence_color"] = "data:image/png;base64," + base64.b64encode(png).decode()
        body["confidence_mean"] = float(np.mean(result.confidence))
    if metric:
        body["points"] = viewer_points(depth, image, fov_degrees, budget)
    return body
