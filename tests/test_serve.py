"""zoejax-serve on 127.0.0.1: the HTTP API agrees with ``predict`` in every format, bad uploads get a 4xx with a
message while the server keeps serving, the page works in a real browser (headless Debian chromium through
selenium), and a bounded load runs without an error, one device call at a time, one compile per input size and
with bounded memory. One server (the real CLI, a tiny random-weight ZoeD_N) serves the whole module."""

import http.client
import importlib.util
import io
import json
import os
import shutil
import threading
from pathlib import Path

import jax
import numpy as np
import pytest
from fast_compile import fast_compile_env, fast_compiles
from PIL import Image
from test_predict_cli import read_ply

from zoejax.cli import serve as serve_cli
from zoejax.inference import ZoeDepthModel
from zoejax.io.depth_files import depth_to_uint16_mm
from zoejax.io.ply import Intrinsics, backproject
from zoejax.models import presets
from zoejax.models.init import param_shapes
from zoejax.storage.converted import save_converted

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("serve_load", ROOT / "benchmarks" / "serve_load.py")
serve_load = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(serve_load)

NET = (64, 96)
SHAPE = (60, 80)
MAX_UPLOAD_MB, MAX_PIXELS = 1, 200_000


def random_params(cfg, seed: int = 0):
    """Random weights from the parameter shapes alone (no compiled init: ~12 s less on two busy cores): kernels
    N(0, 1/fan_in), norms' scales 1, biases 0, layer scales 0.1."""
    rng = np.random.default_rng(seed)

    def leaf(path, shape):
        name = str(path[-1].key)
        if name in ("scale", "bias") or name.startswith("gamma_"):
            return np.full(shape.shape, {"scale": 1.0, "bias": 0.0}.get(name, 0.1), np.float32)
        return (rng.standard_normal(shape.shape) / np.sqrt(max(int(np.prod(shape.shape[:-1])), 1))).astype(
            np.float32)
    return jax.tree_util.tree_map_with_path(leaf, param_shapes(cfg))


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """(base url, server process, the same model in this process) for a tiny ZoeD_N checkpoint."""
    cfg = presets.VARIANTS["zoed_n"]("tiny")
    params = random_params(cfg)
    path = tmp_path_factory.mktemp("serve_ckpt") / "model"
    save_converted(path, cfg, params, {}, {"source": "random init (test)"})
    proc, url = serve_load.start_server(path, "--input-size", "x".join(map(str, NET)), "--keep-results", "3",
                                        "--max-upload-mb", str(MAX_UPLOAD_MB), "--max-pixels", str(MAX_PIXELS),
                                        env=fast_compile_env())
    try:
        yield url, proc, ZoeDepthModel(cfg, params, input_size=NET)
    finally:
        serve_load.stop_server(proc)


def image(seed: int, shape=SHAPE) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (*shape, 3), dtype=np.uint8)


def post(url: str, data: bytes, query: str = "", headers: dict | None = None):
    status, head, body = serve_load.request("POST", f"{url}/predict{query}", data, headers)
    return status, head, body


def health(url: str) -> dict:
    return json.loads(serve_load.request("GET", url + "/health")[2])


def from_data_url(text: str) -> np.ndarray:
    assert text.startswith("data:image/png;base64,")
    import base64

    return np.asarray(Image.open(io.BytesIO(base64.b64decode(text.partition(",")[2]))))


def test_every_format_of_the_api_agrees_with_predict(served):
    url, _, model = served
    x = image(1)
    expected = []

    def reference():  # compiles here while the server compiles its program (two cores)
        with fast_compiles():  # the server compiles alike (fast_compile_env)
            expected.append(model.predict(x, confidence=True))
    here = threading.Thread(target=reference)
    here.start()
    status, _, body = post(url, serve_load.png_bytes(x), "?name=room.png")
    here.join()
    assert status == 200, body
    answer = json.loads(body)
    assert (answer["height"], answer["width"], answer["output"], answer["units"]) == (*SHAPE, "metric_depth",
                                                                                       "metres")
    (expected,) = expected
    depth, confidence = expected.depth[0], expected.confidence[0]
    downloads = {name: serve_load.request("GET", url + link) for name, link in answer["downloads"].items()}
    assert set(downloads) == {"depth.png", "depth.npy", "depth.ply", "confidence.npy"}
    assert all(status == 200 for status, _, _ in downloads.values())
    served_depth = np.load(io.BytesIO(downloads["depth.npy"][2]))
    assert served_depth.dtype == np.float32 and served_depth.shape == SHAPE
    np.testing.assert_allclose(served_depth, depth, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.load(io.BytesIO(downloads["confidence.npy"][2])), confidence, rtol=1e-4,
                               atol=1e-5)
    assert answer["depth_min"] == pytest.approx(float(depth.min()), rel=1e-5)
    png = np.asarray(Image.open(io.BytesIO(downloads["depth.png"][2])))
    assert png.dtype == np.uint16
    np.testing.assert_array_equal(png, depth_to_uint16_mm(served_depth))
    ply = read_ply_bytes(downloads["depth.ply"][2])
    points = backproject(served_depth, Intrinsics.from_fov(*SHAPE, 60.0)).reshape(-1, 3)
    np.testing.assert_allclose(np.stack([ply["x"], ply["y"], ply["z"]], -1), points, rtol=1e-6)
    np.testing.assert_array_equal(np.stack([ply["red"], ply["green"], ply["blue"]], -1),
                                  x.reshape(-1, 3))
    colour, conf_colour = from_data_url(answer["depth_color"]), from_data_url(answer["confidence_color"])
    assert colour.shape == conf_colour.shape == (*SHAPE, 3) and len(np.unique(colour.reshape(-1, 3), axis=0)) > 1
    assert answer["points"]["count"] == SHAPE[0] * SHAPE[1]  # under the viewer's budget: every pixel
    # The one-call formats give the same files without keeping a result.
    for fmt in ("npy", "png", "ply"):
        status, head, raw = post(url, serve_load.png_bytes(x), f"?format={fmt}")
        assert status == 200 and raw == downloads[f"depth.{fmt}"][2], fmt
        assert f'filename="depth.{fmt}"' in head["Content-Disposition"]
    # A second input size compiles once more; a repeated size does not.
    assert post(url, serve_load.png_bytes(image(2, (40, 56))), "?format=npy")[0] == 200
    state = health(url)
    assert sorted(map(tuple, state["compiled_sizes"])) == [(40, 56), SHAPE] and state["compiles"] == 2


def read_ply_bytes(raw: bytes):
    path = Path(os.environ.get("TMPDIR", "/tmp")) / f"zoejax-serve-test-{os.getpid()}.ply"
    path.write_bytes(raw)
    try:
        return read_ply(path)
    finally:
        path.unlink()


def test_bad_uploads_get_a_4xx_with_a_message_and_the_server_keeps_serving(served, tmp_path):
    url, proc, _ = served
    good = serve_load.png_bytes(image(3))
    big = serve_load.png_bytes(image(4, (500, 500)))  # 250000 pixels
    cases = {
        "empty": (b"", "", {}, 400, "empty (0 bytes)"),
        "not an image": (b"%PDF-1.4 not an image at all", "", {}, 415, "not an image"),
        "truncated": (good[:200], "", {}, 415, "not an image"),
        "too many pixels": (big, "", {}, 413, f"500x500 pixels is more than the {MAX_PIXELS}"),
        "too small": (serve_load.png_bytes(image(5, (4, 4))), "", {}, 422, "too small"),
        "a form": (good, "", {"Content-Type": "multipart/form-data; boundary=x"}, 415, "not a multipart form"),
        "unknown format": (good, "?format=jpeg", {}, 400, "not one of json, png, npy, ply"),
    }
    for name, (data, query, headers, code, message) in cases.items():
        status, _, body = post(url, data, query, headers)
        assert status == code, (name, status, body)
        assert message in json.loads(body)["error"], (name, body)
        assert post(url, good, "?format=npy")[0] == 200, f"the server stopped serving after {name}"
    # Over the byte limit: refused from the declared length, before the body is read (curl, like this client,
    # waits for "100 Continue" before sending a large body).
    connection = http.client.HTTPConnection(*url.removeprefix("http://").split(":"), timeout=60)
    connection.putrequest("POST", "/predict")
    connection.putheader("Content-Length", str(MAX_UPLOAD_MB * 1_000_000 + 1))
    connection.putheader("Expect", "100-continue")
    connection.endheaders()
    answer = connection.getresponse()
    assert answer.status == 413 and "over the limit of 1000000 bytes" in json.loads(answer.read())["error"]
    connection.close()
    assert post(url, good, "?format=npy")[0] == 200
    status, _, body = serve_load.request("GET", url + "/results/0123456789abcdef/depth.npy")
    assert status == 404 and "upload the image again" in json.loads(body)["error"]
    assert proc.poll() is None


def test_kept_results_are_bounded(served):
    url, _, _ = served
    links = [json.loads(post(url, serve_load.png_bytes(image(10 + i)))[2])["downloads"]["depth.npy"]
             for i in range(4)]
    statuses = [serve_load.request("GET", url + link)[0] for link in links]
    assert statuses == [404, 200, 200, 200]  # --keep-results 3
    assert health(url)["kept_results"] == 3


def test_the_page_shows_depth_confidence_and_the_point_cloud_in_chromium(served, tmp_path):
    url, _, _ = served
    picture = tmp_path / "scene.png"
    picture.write_bytes(serve_load.png_bytes(serve_load.scene_image(*SHAPE)))
    shot = tmp_path / "serve.png"
    shown = serve_load.browser_check(url, picture, shot)
    assert shown["error"] == ""
    assert (shown["width"], shown["height"], shown["confidence_width"]) == (SHAPE[1], SHAPE[0], SHAPE[1])
    assert shown["cloud_pixels"] > 1000  # the viewer drew the points
    assert len(shown["downloads"]) == 4 and all(link.startswith("/results/") for link in shown["downloads"])
    with Image.open(shot) as screenshot:
        assert screenshot.size[0] > 800
    if os.environ.get("ZOEJAX_SERVE_SCREENSHOT"):  # the docs' picture: ZOEJAX_SERVE_SCREENSHOT=docs/images/serve.png
        shutil.copy(shot, os.environ["ZOEJAX_SERVE_SCREENSHOT"])


def test_bounded_load_one_device_call_at_a_time_and_bounded_memory(served):
    url, proc, _ = served
    payload = serve_load.png_bytes(image(20))
    assert post(url, payload)[0] == 200  # the size's compile, before the memory baseline
    compiles = health(url)["compiles"]
    before = serve_load.rss_mb(proc.pid)
    result = serve_load.load(url, payload, requests=40, clients=4)
    after = serve_load.rss_mb(proc.pid)
    print(f"\nserve load: 40 requests from 4 clients, {result['requests_per_s']:.1f} requests/s, p50 "
          f"{result['p50_ms']:.0f} ms, p95 {result['p95_ms']:.0f} ms, RSS {before:.0f} -> {after:.0f} MB")
    assert result["errors"] == [] and len(result["latencies_s"]) == 40
    state = health(url)
    assert state["most_at_once"] == 1 and state["pending"] == 0
    assert state["compiles"] == compiles  # one size: no recompilation under load
    assert after - before < 100, (before, after)


def test_help_lists_every_flag_and_bad_flags_exit_2(capsys):
    text = serve_cli.build_parser().format_help()
    for flag in ("--checkpoint", "--host", "--port", "--max-upload-mb", "--max-pixels", "--max-compiled",
                 "--max-queue", "--keep-results", "--fov", "--input-size", "--max-depth", "--preset", "--log-level"):
        assert flag in text
    for bad in (["--fov", "200"], ["--max-queue", "0"], ["--input-size", "12"]):
        with pytest.raises(SystemExit) as stop:
            serve_cli.main(["--checkpoint", "x", *bad])
        assert stop.value.code == 2
    assert serve_cli.main(["--checkpoint", "/nonexistent/ckpt"]) == 1
    assert "checkpoint not found" in capsys.readouterr().err


def test_concurrent_requests_share_one_worker_queue():
    """The predictor itself: calls from many coroutines run one at a time on one thread, each with its own
    image; the queue's bound answers ServerBusyError."""
    import asyncio

    from zoejax.serving.predictor import SerialPredictor, ServerBusyError

    class Watched(SerialPredictor):  # runs the program uncompiled, recording threads and overlaps
        active, overlap, threads = 0, False, set()

        def _compile(self, function, height, width):
            def run(params, images):
                self.active += 1
                self.overlap |= self.active > 1
                self.threads.add(threading.get_ident())
                threading.Event().wait(0.01)  # long enough for a second worker, were there one, to start
                self.active -= 1
                return {"depth": images[..., 0]}
            return run

    class StandIn:
        output, units, config, params = "metric_depth", "metres", None, None

        def prediction_function(self, height, width):
            return None

    predictor = Watched(StandIn(), max_pending=6)

    async def run():
        images = [np.full((8, 8, 3), i, np.uint8) for i in range(6)]
        results = await asyncio.gather(*(predictor.predict(x) for x in images))
        calls = [asyncio.ensure_future(predictor.predict(images[0])) for _ in range(7)]
        outcome = await asyncio.gather(*calls, return_exceptions=True)
        return results, outcome

    results, outcome = asyncio.run(run())
    predictor.close()
    assert [float(r.depth[0, 0]) for r in results] == pytest.approx([i / 255 for i in range(6)])
    assert not predictor.overlap and len(predictor.threads) == 1 and predictor.most_at_once == 1
    assert predictor.compiles == 1 and predictor.has_confidence is False
    assert [type(o).__name__ for o in outcome] == ["DepthResult"] * 6 + ["ServerBusyError"]
    assert isinstance(outcome[-1], ServerBusyError) and "already waiting" in str(outcome[-1])
