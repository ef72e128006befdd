"""Export a ZoeDepth model as one self-contained ``.onnx`` file (weights inside), checked in ONNX Runtime.

Two programs, traced with the generic op forms (``zoejax.ops.platform.GENERIC``: batched attention, XLA
convolutions; no CPU per-head loops, no conditional barriers) and converted by jax2onnx:
  predict  ``ZoeDepthModel.predict_batch`` for one input size: reflect padding, resize to the network size,
           normalisation, flip TTA as one batch, bicubic resize back, crop, flip averaging; ZoeD_NK routes each
           image by its own vote. Input ``images`` (B, H, W, 3) float32 RGB in [0, 1]; outputs ``depth``
           (B, H, W) float32 metres (+ ``domain`` (B,) int32 for ZoeD_NK).
  forward  ``ZoeDepthModel.forward``: resize to the network size and the model, outputs at the network size
           (``metric_depth`` and ``rel_depth`` (B, h, w); ZoeD_NK adds ``domain_logits`` (B, D) and ``domain``
           (B,), the router voting over the batch as the official ``model(x)``).
The batch is fixed (``batch_size=N``) or dynamic (``batch_size=None``: the ``B`` axis takes any size). Weights
are stored as float32, or as float16 (half the file) cast back to float32 inside the graph, so the arithmetic
stays float32. The model's description, sizes and domain names are in the file's ``metadata_props``.
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

from zoejax.ops.platform import GENERIC

if TYPE_CHECKING:
    from zoejax.inference import ZoeDepthModel

PROGRAMS = ("predict", "forward")
WEIGHT_DTYPES = ("float32", "float16")
BATCH_AXIS = "B"
OPSET = 23
INSTALL_HINT = ("pip install onnx==1.23.2 onnx-ir==1.1.0 onnxruntime==1.32.0 && pip install --no-deps "
                "jax2onnx==0.17.1 (its declared orbax-checkpoint<0.11.37 pin conflicts with zoejax's)")


def export_onnx(model: ZoeDepthModel, path: str | os.PathLike, height: int, width: int,
                batch_size: int | None = 1, program: str = "predict", weights: str = "float32",
                flip_tta: bool = True, pad_input: bool = True, overwrite: bool = False) -> Path:
    """Write ``model`` as a ``.onnx`` file taking (batch_size, height, width, 3) images; returns the path.

    Args:
      model: a ``zoejax.inference.ZoeDepthModel`` (what ``zoejax.load`` returns).
      batch_size: images per call; None for a dynamic batch axis (named ``B``).
      program: "predict" (the whole ``predict_batch``) or "forward" (the bare model at the network size).
      weights: "float32" or "float16" (stored half precision, computed in float32).
      flip_tta, pad_input: as ``predict_batch`` (predict only).
    The file is written atomically; an existing file is replaced only with ``overwrite`` and never when it is the
    model's source. Raises ValueError for a bad argument, ImportError when jax2onnx / onnx are missing.
    """
    from zoejax.inference import ZoeDepthModel
    from zoejax.io.safe_output import atomic_path, check_file_output

    if not isinstance(model, ZoeDepthModel):
        raise ValueError(f"ONNX export takes ZoeDepth models so far, not {type(model).__name__}")
    if program not in PROGRAMS:
        raise ValueError(f"unknown ONNX program {program!r}; expected one of {PROGRAMS}")
    if weights not in WEIGHT_DTYPES:
        raise ValueError(f"unknown weight dtype {weights!r}; expected one of {WEIGHT_DTYPES}")
    if batch_size is not None and batch_size < 1:
        raise ValueError(f"batch_size must be >= 1 or None (dynamic), got {batch_size}")
    source = model.provenance.get("source")
    path = check_file_output(path, overwrite=overwrite, inputs=[source] if isinstance(source, str) else [])
    to_onnx = _converter()
    fn, outputs, sizes = _program(model, program, height, width, weights, flip_tta, pad_input)
    batch = BATCH_AXIS if batch_size is None else batch_size
    with _quiet_plugin_discovery(), _linear_connectivity_check():
        proto = to_onnx(fn, [(batch, height, width, 3)], model_name=f"zoejax_{program}", opset=OPSET,
                        input_names=["images"], output_names=list(outputs))
    _drop_symbolic_value_info(proto)
    meta = {"program": program, "input": f"images ({batch}, {height}, {width}, 3) float32 RGB in [0, 1]",
            "outputs": json.dumps(outputs), "weights": weights, **sizes,
            "domain_names": json.dumps(list(model.config.domain_names) if model.config.is_multi_head else []),
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


def _program(model: ZoeDepthModel, program: str, height: int, width: int, weights: str, flip_tta: bool,
             pad_input: bool) -> tuple[Any, dict[str, str], dict[str, Any]]:
    """The traceable images -> tuple-of-outputs function with the weights as constants, the output contract
    (name -> description, in the tuple's order) and the sizes it uses."""
    stored = jax.device_get(model.params)
    if weights == "float16":
        stored = jax.tree.map(lambda a: a.astype(np.float16) if a.dtype == np.float32 else a, stored)

    def params():  # inside the trace, so float16 constants reach the graph and are cast there
        return jax.tree.map(lambda a: jnp.asarray(a).astype(jnp.float32) if a.dtype == np.float16 else a, stored)

    if program == "predict":
        # "cuda" has the generic forms (GENERIC): the graph ONNX gets, whatever machine exports it.
        prediction = model.prediction_function(height, width, pad_input, flip_tta, platforms=["cuda"])
        outputs = {"depth": "(B, H, W) float32 metres at the input size"}
        if model.config.is_multi_head:
            outputs["domain"] = "(B,) int32 index into domain_names (the router's choice per image)"

        def fn(images):
            out = prediction.fn(params(), images)
            return tuple(out[k] for k in outputs)

        return fn, outputs, {"network_size": list(prediction.network_size), "pad": list(prediction.pad),
                             "flip_tta": flip_tta}

    from zoejax.models.zoedepth import ZoeDepth
    from zoejax.preprocess import to_network_input

    module = ZoeDepth(model.config, ops=GENERIC)
    size = model.network_size(height, width)
    outputs = {"metric_depth": "(B, h, w) float32 metres at the network size",
               "rel_depth": "(B, h, w) float32 relative depth at the network size"}
    if model.config.is_multi_head:
        outputs.update(domain_logits="(B, D) float32 router logits", domain="(B,) int32 the batch's head")

    def fn(images):
        out = module.apply({"params": params()}, to_network_input(images, size))
        return tuple(out[k] for k in outputs)

    return fn, outputs, {"network_size": list(size)}


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
