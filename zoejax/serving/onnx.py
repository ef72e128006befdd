"""Export a depth model (what ``zoejax.load`` returns: ZoeDepth, Depth Anything V1 / V2, MiDaS relative) as one
self-contained ``.onnx`` file (weights inside), checked in ONNX Runtime.

The exporter is generic: each model class builds the program it traces and names the outputs
(``export_program``, a ``zoejax.inference.ExportProgram``); it is traced with the generic op forms
(``zoejax.ops.platform.GENERIC``: batched attention, XLA convolutions; no CPU per-head loops, no conditional
barriers) and converted by jax2onnx. Two programs:
  predict  the model's ``predict_batch`` for one input size (its own preprocessing: reflect padding and flip TTA
           where asked, resize to the network size, the model, resize back, crop, flip averaging; ZoeD_NK routes
           each image by its own vote). Input ``images`` (B, H, W, 3) float32 RGB in [0, 1]; output ``depth``
           (B, H, W) float32 in the model's ``units`` (metres, or relative inverse depth), + ``domain`` (B,) int32
           for ZoeD_NK.
  forward  the model's ``forward``: resize to the network size and the bare model, outputs at the network size
           (ZoeDepth ``metric_depth`` and ``rel_depth`` (B, h, w), ZoeD_NK adding ``domain_logits`` (B, D) and
           ``domain`` (B,), the router voting over the batch as the official ``model(x)``; Depth Anything and
           MiDaS ``relative_depth`` or ``metric_depth`` (B, h, w)).
The batch is fixed (``batch_size=N``) or dynamic (``batch_size=None``: the ``B`` axis takes any size). Weights
are stored as float32, or as float16 (half the file) cast back to float32 inside the graph, so the arithmetic
stays float32. The model's description, output, units and sizes are in the file's ``metadata_props``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
import numpy as np

from zoejax.inference import EXPORT_PROGRAMS

if TYPE_CHECKING:
    from zoejax.inference_models import DepthModel

PROGRAMS = EXPORT_PROGRAMS
# The platforms the program is traced for: an accelerator's, whose op forms are the generic ones (GENERIC), so the
# graph ONNX gets is the same whatever machine exports it (this machine's CPU forms would trace per-head loops).
TRACE_PLATFORMS = ("cuda",)
WEIGHT_DTYPES = ("float32", "float16")
BATCH_AXIS = "B"
OPSET = 23
INSTALL_HINT = ("pip install onnx==1.23.2 onnx-ir==1.1.0 onnxruntime==1.32.0 && pip install --no-deps "
                "jax2onnx==0.17.1 (its declared orbax-checkpoint<0.11.37 pin conflicts with zoejax's)")


def export_onnx(model: DepthModel, path: str | os.PathLike, height: int, width: int,
                batch_size: int | None = 1, program: str = "predict", weights: str = "float32",
                flip_tta: bool | None = None, pad_input: bool | None = None, overwrite: bool = False) -> Path:
    """Write ``model`` as a ``.onnx`` file taking (batch_size, height, width, 3) images; returns the path.

    Args:
      model: a ``zoejax.inference_models.DepthModel`` (what ``zoejax.load`` returns), whose ``export_program``
        builds what is traced.
      batch_size: images per call; None for a dynamic batch axis (named ``B``).
      program: "predict" (the whole ``predict_batch``) or "forward" (the bare model at the network size).
      weights: "float32" or "float16" (stored half precision, computed in float32).
      flip_tta, pad_input: as ``predict_batch`` (predict only); None: the family's own (ZoeDepth: on; Depth
        Anything and MiDaS: off).
    The file is written atomically; an existing file is replaced only with ``overwrite`` and never when it is the
    model's source. Raises ValueError for a bad argument (an image too small included), ImportError when
    jax2onnx / onnx are missing.
    """
    from zoejax.io.safe_output import atomic_path, check_file_output

    if program not in PROGRAMS:
        raise ValueError(f"unknown ONNX program {program!r}; expected one of {PROGRAMS}")
    if weights not in WEIGHT_DTYPES:
        raise ValueError(f"unknown weight dtype {weights!r}; expected one of {WEIGHT_DTYPES}")
    if batch_size is not None and batch_size < 1:
        raise ValueError(f"batch_size must be >= 1 or None (dynamic), got {batch_size}")
    source = model.provenance.get("source")
    path = check_file_output(path, overwrite=overwrite, inputs=[source] if isinstance(source, str) else [])
    to_onnx = _converter()
    exported = model.export_program(program, height, width, pad_input, flip_tta, platforms=TRACE_PLATFORMS)
    outputs = exported.outputs
    fn = _with_stored_weights(model.params, exported.fn, outputs, weights)
    batch = BATCH_AXIS if batch_size is None else batch_size
    with _quiet_plugin_discovery(), _linear_connectivity_check():
        proto = to_onnx(fn, [(batch, height, width, 3)], model_name=f"zoejax_{program}", opset=OPSET,
                        input_names=["images"], output_names=list(outputs))
    _drop_symbolic_value_info(proto)
    meta = {"program": program, "input": f"images ({batch}, {height}, {width}, 3) float32 RGB in [0, 1]",
            "outputs": json.dumps(outputs), "weights": weights, "output": model.output, "units": model.units,
            **{k: json.dumps(v) if isinstance(v, (list, dict)) else v for k, v in exported.meta.items()},
            "jax_version": jax.__version__, "provenance": json.dumps(model.provenance, default=str)}
    for key, value in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = f"zoejax.{key}", str(value)
    data = proto.SerializeToString()  # protobuf refuses > 2 GiB: ValueError, before anything is written
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return path


def _converter():
    try:
        import onnx  # noqa: F401  jax2onnx needs it; its absence should name it, not a jax2onnx internal
        from jax2onnx import to_onnx
    except ImportError as e:
        raise ImportError(f"ONNX export needs jax2onnx and onnx ({e}); install them: {INSTALL_HINT}") from e
    return to_onnx


def _with_stored_weights(params: Any, fn: Any, outputs: dict[str, str], weights: str) -> Any:
    """``fn(params, images) -> dict`` as the traceable ``images -> tuple`` (in ``outputs``' order) with the weights
    as graph constants, stored as ``weights`` ("float16": cast back to float32 inside the graph)."""
    stored = jax.device_get(params)
    if weights == "float16":
        stored = jax.tree.map(lambda a: a.astype(np.float16) if a.dtype == np.float32 else a, stored)

    def traced(images):
        # The cast is inside the trace, so the float16 constants reach the graph and are cast there.
        full = jax.tree.map(lambda a: jnp.asarray(a).astype(jnp.float32) if a.dtype == np.float16 else a, stored)
        out = fn(full, images)
        return tuple(out[k] for k in outputs)

    return traced


def _drop_symbolic_value_info(proto: Any) -> None:
    """Remove intermediate shape annotations with a symbolic axis: jax2onnx names a (2B, ...) axis (the flip
    batch) ``B``, which ONNX Runtime then enforces and fails on. It infers those shapes itself."""
    keep = [v for v in proto.graph.value_info if not any(d.dim_param for d in v.type.tensor_type.shape.dim)]
    del proto.graph.value_info[:]
    proto.graph.value_info.extend(keep)


@contextlib.contextmanager
def _linear_connectivity_check():
    """jax2onnx 0.17.1 checks after every equation that its outputs are produced by a node of the graph by scanning
    all the graph's nodes: quadratic in the model's size (68 of the 105 s of a tiny ZoeD_NK export; hours for a
    full-size one). A value whose producer belongs to the graph passes at once here; any other takes jax2onnx's
    own check, so what is accepted or refused is unchanged. Without that internal, the export runs as it is."""
    try:
        from jax2onnx.converter import output_binding
        original = output_binding._value_is_graph_connected
    except (ImportError, AttributeError):
        yield
        return

    def connected(ctx: Any, value: Any) -> bool:
        producer = value.producer() if hasattr(value, "producer") else None
        if producer is not None and getattr(producer, "graph", None) is getattr(ctx.builder, "nodes", ()):
            return True
        return original(ctx, value)

    output_binding._value_is_graph_connected = connected
    try:
        yield
    finally:
        output_binding._value_is_graph_connected = original


@contextlib.contextmanager
def _quiet_plugin_discovery():
    """jax2onnx imports its example plugins (equinox, dm-pix) on first use and logs a traceback for each one
    missing; they are not needed for Flax linen models."""
    logger = logging.getLogger("jax2onnx")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)
