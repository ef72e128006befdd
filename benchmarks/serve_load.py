"""Load and browser checks of ``zoejax-serve`` on 127.0.0.1: requests/s, latency percentiles, the server's RSS.

  python benchmarks/serve_load.py --checkpoint out/zoed_n --requests 200 --clients 8 --size 480x640
  python benchmarks/serve_load.py --checkpoint out/zoed_n --screenshot docs/images/serve.png

It starts ``zoejax-serve`` (``python -m zoejax.cli.serve``) on a free local port, sends one warm-up request (the
compilation for the image size), reads the server's resident memory, then ``--requests`` POST /predict (json, the
page's own request) from ``--clients`` threads, and reads the memory again. ``--screenshot`` drives the page in
headless Debian chromium through selenium (upload, wait for the depth map and the point cloud) and saves the
page. tests/test_serve.py runs the same functions at a small scale.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(checkpoint: str | os.PathLike, *args: str, env: dict | None = None, timeout: float = 300.0
                 ) -> tuple[subprocess.Popen, str]:
    """``zoejax-serve --checkpoint CHECKPOINT ARGS`` on a free 127.0.0.1 port (environment ``env``, default
    this one) -> (process, base url), once /health answers. The server's output goes to a temporary file, shown
    if it exits early."""
    port = free_port()
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen([sys.executable, "-m", "zoejax.cli.serve", "--checkpoint", str(checkpoint),
                             "--port", str(port), *args], stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log.seek(0)
            raise RuntimeError(f"zoejax-serve exited with {proc.returncode}:\n{log.read().decode()[-3000:]}")
        try:
            request("GET", url + "/health", timeout=2)
            return proc, url
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"zoejax-serve did not answer on {url} within {timeout:.0f} s")


def stop_server(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def request(method: str, url: str, data: bytes | None = None, headers: dict | None = None,
            timeout: float = 120.0) -> tuple[int, Any, bytes]:
    """(status, headers (case-insensitive), body) of one HTTP request; an error status is returned, not raised."""
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as answer:
            return answer.status, answer.headers, answer.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def png_bytes(image: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def scene_image(height: int, width: int, index: int = 0) -> np.ndarray:
    """A synthetic indoor frame (uint8 (H, W, 3)) to send: nothing is downloaded."""
    from data_pipelines.synthetic.scenes import render_frame

    return render_frame(0, index, 0, height, width)[0]


def rss_mb(pid: int) -> float:
    """The resident memory of process ``pid`` in MB (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def load(url: str, payload: bytes, requests: int, clients: int) -> dict:
    """``requests`` POST /predict (json) of ``payload`` from ``clients`` threads -> {"errors": [...],
    "latencies_s": [...], "wall_s", "requests_per_s", "p50_ms", "p95_ms"}."""
    latencies, errors, lock = [], [], threading.Lock()
    todo = iter(range(requests))

    def client() -> None:
        while True:
            with lock:
                if next(todo, None) is None:
                    return
            t0 = time.perf_counter()
            status, _, body = request("POST", url + "/predict?format=json", payload,
                                      {"Content-Type": "application/octet-stream"})
            dt = time.perf_counter() - t0
            with lock:
                latencies.append(dt)
                if status != 200 or "depth_color" not in json.loads(body):
                    errors.append(f"{status}: {body[:200]!r}")

    threads = [threading.Thread(target=client) for _ in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    q = statistics.quantiles(latencies, n=20) if len(latencies) > 1 else latencies * 19
    return {"errors": errors, "latencies_s": latencies, "wall_s": wall, "requests_per_s": len(latencies) / wall,
            "p50_ms": 1000 * statistics.median(latencies), "p95_ms": 1000 * q[18]}


def browser_check(url: str, image_path: str | os.PathLike, screenshot: str | os.PathLike,
                  timeout: float = 60.0) -> dict:
    """Open the page in headless chromium, upload ``image_path`` through its file input, wait until the depth
    map has loaded and the point-cloud canvas holds points, and save a screenshot. Returns what the page showed:
    the depth image's natural size, the canvas' count of non-background pixels, the error text."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    profile = tempfile.mkdtemp(prefix="zoejax-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--window-size=1200,1000"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)  # no selenium-manager lookup
    try:
        driver.get(url + "/")
        driver.find_element(By.ID, "file").send_keys(str(Path(image_path).resolve()))
        wait = WebDriverWait(driver, timeout)
        wait.until(lambda d: d.execute_script(
            "const i = document.getElementById('depth'); return (i.complete && i.naturalWidth > 0) || "
            "!document.getElementById('error').hidden"))
        shown = driver.execute_script("""
            const img = document.getElementById('depth'), c = document.getElementById('cloud');
            const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            let lit = 0;
            for (let i = 0; i < px.length; i += 4) if (px[i] !== 17 || px[i + 1] !== 17 || px[i + 2] !== 17) lit++;
            const err = document.getElementById('error');
            return {width: img.naturalWidth, height: img.naturalHeight, cloud_pixels: lit,
                    error: err.hidden ? '' : err.textContent,
                    confidence_width: document.getElementById('confidence').naturalWidth,
                    downloads: [...document.querySelectorAll('#downloads a')].filter(a => !a.hidden)
                                .map(a => a.getAttribute('href'))};""")
        driver.save_screenshot(str(screenshot))
        return shown
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", required=True, help="any checkpoint zoejax-serve takes")
    p.add_argument("--requests", type=int, default=200, help="requests in all (default 200)")
    p.add_argument("--clients", type=int, default=8, help="concurrent clients (default 8)")
    p.add_argument("--size", default="480x640", help="HxW of the image sent (default 480x640)")
    p.add_argument("--input-size", default=None, help="zoejax-serve --input-size")
    p.add_argument("--screenshot", default=None, help="also save the page with a prediction here (PNG)")
    args = p.parse_args(argv)
    height, width = (int(v) for v in args.size.split("x"))
    extra = ["--input-size", args.input_size] if args.input_size else []
    proc, url = start_server(args.checkpoint, *extra)
    try:
        payload = png_bytes(scene_image(height, width))
        t0 = time.perf_counter()
        status, _, body = request("POST", url + "/predict", payload)
        assert status == 200, body[:500]
        first = time.perf_counter() - t0
        rss = [rss_mb(proc.pid)]
        parts = [args.requests // 4 + (k < args.requests % 4) for k in range(4)]  # RSS after each quarter
        runs = []
        for n in parts:
            runs.append(load(url, payload, n, args.clients))
            rss.append(rss_mb(proc.pid))
        latencies = [t for r in runs for t in r["latencies_s"]]
        errors = [e for r in runs for e in r["errors"]]
        wall = sum(r["wall_s"] for r in runs)
        q = statistics.quantiles(latencies, n=20)
        health = json.loads(request("GET", url + "/health")[2])
        print(f"zoejax-serve load: {args.requests} requests of a {height}x{width} PNG from {args.clients} clients: "
              f"{len(errors)} errors, {len(latencies) / wall:.2f} requests/s, p50 "
              f"{1000 * statistics.median(latencies):.0f} ms, p95 {1000 * q[18]:.0f} ms; first request (compile) "
              f"{first:.1f} s; server RSS after 0/25/50/75/100% of the requests: "
              f"{' / '.join(f'{m:.0f}' for m in rss)} MB; compiles {health['compiles']}, at most "
              f"{health['most_at_once']} device call(s) at once")
        result = {"errors": errors}
        if args.screenshot:
            with tempfile.TemporaryDirectory() as tmp:
                image = Path(tmp) / "scene.png"
                image.write_bytes(payload)
                print("page:", browser_check(url, image, args.screenshot), "->", args.screenshot)
        return 1 if result["errors"] else 0
    finally:
        stop_server(proc)


if __name__ == "__main__":
    sys.exit(main())
