"""Export ``ZoeDepthModel.predict_batch`` as a serialized StableHLO artefact that runs without zoejax.

The artefact is a folder:
  predict.stablehlo  ``jax.export`` serialization of f(params, images) -> depth (and the NK domain); the whole
                     official ``infer`` (reflect padding, resize to the network size, model, bicubic resize back,
                     crop, flip averaging) is inside, for one fixed input size and batch size
  params.npz         the weights, flattened in the exported function's argument order (no pickles)
  meta.json          input/output contract, sizes, domain names, versions
Loading needs jax and numpy only (``load_exported``), and any StableHLO consumer can run ``predict.stablehlo``
from the module inside it. Weights stay a separate argument rather than constants so the program stays small
and a fine-tuned model can be swapped in without re-exporting.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
import numpy as np

if TYPE_CHECKING:  # loading an artefact needs jax and numpy only, not the model code
    from zoejax.inference_models import DepthModel

PROGRAM_FILE, PARAMS_FILE, META_FILE = "predict.stablehlo", "params.npz", "meta.json"
FORMAT_VERSION = 1


def export_predict(model: DepthModel, out_dir: str | os.PathLike, height: int, width: int, batch_size: int = 1,
                   flip_tta: bool | None = None, pad_input: bool | None = None,
                   platforms: Sequence[str] | None = None,
                   overwrite: bool = False) -> Path:
    """Write the artefact for images of ``height`` x ``width`` pixels, ``batch_size`` at a time.

    Args:
      model: a ``zoejax.inference_models.DepthModel`` (what ``zoejax.load`` returns: ZoeDepth or Depth Anything).
      platforms: lowering targets ("cpu", "cuda", "rocm", "tpu"); default: this machine's backend. The graph is
        traced with their op forms (``zoejax.ops.platform.forms_for``), not this machine's: an export for GPU/TPU
        made on a CPU host gets batched attention and plain convolutions, not the CPU forms.
    Returns the folder (written atomically, with zoejax's owner manifest). An existing non-empty ``out_dir`` is
    replaced only with ``overwrite``, and never when it holds the model's source or files zoejax did not write.
    """
    from zoejax.io.safe_output import atomic_dir, check_dir_output

    source = model.provenance.get("source")
    inputs = [source] if isinstance(source, str) else []
    check_dir_output(out_dir, overwrite=overwrite, inputs=inputs)  # before the lowering, which takes a while
    program = model.prediction_function(height, width, pad_input, flip_tta, platforms)
    flip_tta = program.flip_tta
    size, pad = program.network_size, program.pad

    params = jax.device_get(model.params)
    params_spec = jax.tree.map(lambda a: jax.ShapeDtypeStruct(np.shape(a), np.asarray(a).dtype), params)
    images_spec = jax.ShapeDtypeStruct((batch_size, height, width, 3), jnp.float32)
    exported = jax.export.export(jax.jit(program.fn), platforms=platforms)(params_spec, images_spec)
    leaves = jax.tree.leaves(params)
    multi_head = getattr(model.config, "is_multi_head", False)
    output = getattr(model, "output", "metric_depth")
    meta = {
        "format_version": FORMAT_VERSION,
        "input": {"name": "images", "shape": [batch_size, height, width, 3], "dtype": "float32",
                  "range": "[0, 1] RGB"},
        "outputs": {"depth": f"float32 (B, H, W) {getattr(model, 'units', 'metres')} at the input size",
                    **({"domain": "int32 (B,) index into domain_names"} if multi_head else {})},
        "output": output,
        "network_size": list(size), "pad": list(pad), "flip_tta": flip_tta,
        "domain_names": list(model.config.domain_names) if multi_head else [],
        "num_param_arrays": len(leaves), "platforms": list(exported.platforms),
        "jax_version": jax.__version__, "provenance": model.provenance,
    }
    with atomic_dir(out_dir, overwrite=overwrite, inputs=inputs) as tmp:
        (tmp / PROGRAM_FILE).write_bytes(exported.serialize())
        with open(tmp / PARAMS_FILE, "wb") as f:
            np.savez(f, **{f"p{i:05d}": np.asarray(a) for i, a in enumerate(leaves)})
        (tmp / META_FILE).write_text(json.dumps(meta, indent=2, default=str))
    return Path(out_dir)


class ExportedPredictor:
    """A loaded artefact: ``predictor(images)`` with images (B, H, W, 3) uint8 or float in [0, 1] at the exported
    size -> dict of numpy arrays (``depth`` (B, H, W) metres; ``domain`` for ZoeD_NK)."""

    def __init__(self, path: str | os.PathLike):
        path = Path(path)
        for name in (PROGRAM_FILE, PARAMS_FILE, META_FILE):
            if not (path / name).is_file():
                raise FileNotFoundError(f"{path} is not a zoejax StableHLO export: {name} is missing")
        self.meta = json.loads((path / META_FILE).read_text())
        if self.meta.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"{path}: unsupported export format {self.meta.get('format_version')!r}")
        self.exported = jax.export.deserialize(bytearray((path / PROGRAM_FILE).read_bytes()))
        with np.load(path / PARAMS_FILE, allow_pickle=False) as data:
            leaves = [data[f"p{i:05d}"] for i in range(self.meta["num_param_arrays"])]
        params_avals = self.exported.in_avals[:len(leaves)]
        for i, (leaf, aval) in enumerate(zip(leaves, params_avals, strict=True)):
            if leaf.shape != aval.shape or leaf.dtype != aval.dtype:
                raise ValueError(f"{path / PARAMS_FILE}: array p{i:05d} is {leaf.dtype}{list(leaf.shape)}, the "
                                 f"program expects {aval.dtype}{list(aval.shape)}")
        placeholder = [None] * len(leaves) + [None]
        (params, _), _ = jax.tree.unflatten(self.exported.in_tree, placeholder)
        self.params = jax.tree.unflatten(jax.tree.structure(params, is_leaf=lambda x: x is None),
                                         [jnp.asarray(a) for a in leaves])
        self.input_shape = tuple(self.meta["input"]["shape"])

    def __call__(self, images: Any) -> dict[str, np.ndarray]:
        x = np.asarray(images)
        if x.dtype == np.uint8:
            x = x.astype(np.float32) / 255.0
        if x.shape != self.input_shape:
            raise ValueError(f"this export takes images of shape {self.input_shape}, got {x.shape}")
        out = self.exported.call(self.params, jnp.asarray(x, jnp.float32))
        return {k: np.asarray(v) for k, v in out.items()}


def load_exported(path: str | os.PathLike) -> ExportedPredictor:
    """Load an artefact written by ``export_predict`` (or ``zoejax-convert --to stablehlo``)."""
    return ExportedPredictor(path)
