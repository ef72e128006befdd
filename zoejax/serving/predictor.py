"""One device worker for a web server: every prediction of every request runs on it, one at a time, from a
program compiled once per input size.

A request handler awaits ``SerialPredictor.predict``; the call joins the single worker thread's queue, so two
requests never run on the device together (they would contend for its memory and each run slower), and the
event loop stays free to read uploads and send answers meanwhile. The first image of a size compiles that size's
program (``jax.jit(...).lower(...).compile()``, the model's own ``prediction_function``: the same computation as
``predict``); later images of that size reuse it. The cache keeps the ``max_compiled`` most recently used sizes,
so arbitrary upload sizes cannot grow memory without bound.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
import numpy as np

from zoejax.preprocess import as_float_image

if TYPE_CHECKING:
    from zoejax.inference import PredictionFunction
    from zoejax.inference_models import DepthModel


class ServerBusyError(RuntimeError):
    """More requests are waiting for the device than the queue holds."""


@dataclasses.dataclass(frozen=True)
class DepthResult:
    """One image's prediction: ``depth`` (H, W) float32 in the model's ``units`` (metres for metric models,
    relative inverse depth otherwise); ``confidence`` (H, W) in [0, 1] or None (the model has none); ``domain``
    the head ZoeD_NK's router chose, else None."""

    depth: np.ndarray
    confidence: np.ndarray | None
    domain: str | None


class SerialPredictor:
    """``model``'s predictions through one worker thread, with a compiled program per input size.

    Args:
      model: a ``zoejax.inference_models.DepthModel``.
      max_compiled: the input sizes whose programs are kept (least recently used dropped first).
      max_pending: requests that may wait for the device; one more raises ServerBusyError.
    """

    def __init__(self, model: DepthModel, max_compiled: int = 8, max_pending: int = 64):
        if max_compiled < 1 or max_pending < 1:
            raise ValueError(f"max_compiled and max_pending must be >= 1, got {max_compiled}, {max_pending}")
        self.model = model
        self.max_compiled = max_compiled
        self.max_pending = max_pending
        # ZoeDepth's predict has a confidence map (the bins' spread); a family without one serves depth only.
        self.has_confidence = "confidence" in inspect.signature(model.prediction_function).parameters
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="zoejax-device")
        self._programs: OrderedDict[tuple[int, int], Any] = OrderedDict()
        self._lock = threading.Lock()
        self._running = 0
        self.pending = 0
        self.compiles = 0
        self.calls = 0
        self.most_at_once = 0  # the most device calls ever running together: 1 by construction

    async def predict(self, image: np.ndarray) -> DepthResult:
        """One uint8 (H, W, 3) RGB image -> its ``DepthResult``, after the requests queued before it. Raises
        ServerBusyError when ``max_pending`` requests already wait, ValueError for an image too small."""
        if self.pending >= self.max_pending:
            raise ServerBusyError(f"{self.pending} requests are already waiting for the model; retry shortly")
        self.pending += 1  # only the event loop's thread touches ``pending``
        try:
            return await asyncio.get_running_loop().run_in_executor(self._worker, self._run, image)
        finally:
            self.pending -= 1

    def compiled_sizes(self) -> list[tuple[int, int]]:
        """The (height, width) of the programs held, least recently used first."""
        with self._lock:
            return list(self._programs)

    def close(self) -> None:
        self._worker.shutdown(wait=True, cancel_futures=True)

    def _run(self, image: np.ndarray) -> DepthResult:
        with self._lock:
            self._running += 1
            self.most_at_once = max(self.most_at_once, self._running)
        try:
            program = self._program(*image.shape[:2])
            out = program(self.model.params, jnp.asarray(as_float_image(image)[None]))
            out = {k: np.asarray(v)[0] for k, v in out.items()}
            self.calls += 1
        finally:
            with self._lock:
                self._running -= 1
        domain = None
        if "domain" in out:
            domain = tuple(self.model.config.domain_names)[int(out["domain"])]
        return DepthResult(out["depth"].astype(np.float32), out.get("confidence"), domain)

    def _program(self, height: int, width: int):
        key = (height, width)
        with self._lock:
            if key in self._programs:
                self._programs.move_to_end(key)
                return self._programs[key]
        kwargs = {"confidence": True} if self.has_confidence else {}
        function = self.model.prediction_function(height, width, **kwargs)  # ValueError: too small
        compiled = self._compile(function, height, width)
        with self._lock:
            self.compiles += 1
            self._programs[key] = compiled
            while len(self._programs) > self.max_compiled:
                self._programs.popitem(last=False)
        return compiled

    def _compile(self, function: PredictionFunction, height: int, width: int):
        """The executable of ``function`` for one (1, height, width, 3) float32 image."""
        spec = jax.ShapeDtypeStruct((1, height, width, 3), jnp.float32)
        return jax.jit(function.fn).lower(self.model.params, spec).compile()
