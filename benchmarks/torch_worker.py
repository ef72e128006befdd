"""The PyTorch side of a benchmark in a process of its own.

On a 2-core machine the two runtimes disturb each other when they share a process: each keeps worker threads
(XLA's pools, OpenMP) and allocator state around between calls. ``TorchWorker`` runs the reference in a spawned
child that never touches jax, and times each call there; while one side runs, the other blocks on a pipe.
The child rebuilds the reference from the same (config, seed), so both sides hold the same weights.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import time

import numpy as np


def pixel_values(images: np.ndarray):
    """(B, H, W, 3) in [0, 1] -> the reference's NCHW input, normalised with mean = std = 0.5 (CPU tensor)."""
    import torch

    return ((torch.from_numpy(images).permute(0, 3, 1, 2) - 0.5) / 0.5).contiguous()


def _is_depth_anything(cfg) -> bool:
    from depth_anything_torch import is_depth_anything

    return is_depth_anything(cfg)


def reference_pixels(cfg, images: np.ndarray):
    """``images`` (B, H, W, 3) in [0, 1] as the input of ``cfg``'s reference: ImageNet-normalised for the Depth
    Anything models, mean = std = 0.5 for ZoeDepth's MiDaS core."""
    if _is_depth_anything(cfg):
        from depth_anything_torch import pixel_values as depth_anything_pixels

        return depth_anything_pixels(images)
    return pixel_values(images)


def _build_reference(cfg, seed: int):
    """The PyTorch reference for ``cfg``: transformers ZoeDepth for BEiT; for Swin/SwinV2, transformers' ZoeDepth
    decoder and head on timm's encoder (``tests/swin_reference.py``); for the Depth Anything models,
    ``depth_anything_torch.py``'s."""
    if _is_depth_anything(cfg):
        from depth_anything_torch import build_reference

        return build_reference(cfg, seed=seed)
    if cfg.backbone.kind == "swin":
        import timm_import  # noqa: F401 - stands in for torchvision while timm is imported
        from swin_reference import zoedepth_reference

        return zoedepth_reference(cfg, seed=seed, strict_img_size=False)[0]
    from torch_reference import build_reference

    return build_reference(cfg, seed=seed)


def _serve(conn, cfg, seed: int, threads: int | None, compile_model: bool) -> None:
    import common  # noqa: F401 - puts tests/ on sys.path
    import torch

    if threads:
        torch.set_num_threads(threads)
    ref = _build_reference(cfg, seed)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    ref = ref.to(device)
    models = {"eager": ref}
    compile_error = None
    if compile_model:
        try:
            models["compile"] = torch.compile(ref)
        except Exception as e:  # noqa: BLE001 - reported to the parent as "n/a"
            compile_error = f"{type(e).__name__}: {e}"
    conn.send({"device": device, "threads": torch.get_num_threads(), "compile_error": compile_error})
    inputs = {}
    while True:
        msg = conn.recv()
        if msg[0] == "stop":
            return
        if msg[0] == "input":
            _, key, images = msg
            inputs[key] = reference_pixels(cfg, images).to(device)
            conn.send(None)
            continue
        _, kind, key, dtype, want_output = msg
        try:
            autocast = (torch.autocast(device, dtype=torch.bfloat16) if dtype == "bf16"
                        else contextlib.nullcontext())
            t0 = time.perf_counter()
            with torch.no_grad(), autocast:
                out = models[kind](pixel_values=inputs[key]).predicted_depth
            if device == "cuda":
                torch.cuda.synchronize()
            seconds = time.perf_counter() - t0
            conn.send((seconds, out.float().cpu().numpy() if want_output else None, None))
        except Exception as e:  # noqa: BLE001 - torch.compile may fail at its first call
            conn.send((None, None, f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"))


class TorchWorker:
    """A spawned process holding the reference; ``call`` runs one forward there and returns its seconds."""

    def __init__(self, cfg, seed: int = 0, threads: int | None = None, compile_model: bool = False):
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_serve, args=(child, cfg, seed, threads, compile_model), daemon=True)
        self._proc.start()
        self.info = self._conn.recv()

    def set_input(self, key, images: np.ndarray) -> None:
        self._conn.send(("input", key, images))
        self._conn.recv()

    def call(self, kind: str, key, dtype: str, want_output: bool = False):
        """(seconds, output or None); raises RuntimeError with the child's message on failure."""
        self._conn.send(("run", kind, key, dtype, want_output))
        seconds, out, error = self._conn.recv()
        if error:
            raise RuntimeError(error)
        return seconds, out

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._conn.send(("stop",))
        self._proc.join(timeout=30)
