"""Writing a Hugging Face model folder (``model.safetensors`` + ``config.json``) atomically."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from zoejax.io.safe_output import atomic_dir


def write_hf_folder(out: Path, state: dict[str, np.ndarray], hf_config: Any, *, overwrite: bool,
                    inputs: Sequence[Any]) -> Path:
    """``state`` as ``out/model.safetensors`` and ``hf_config`` (a ``transformers.PretrainedConfig``) as
    ``out/config.json``, both or neither (``atomic_dir``); safetensors' write errors become OSErrors."""
    from safetensors import SafetensorError
    from safetensors.numpy import save_file

    with atomic_dir(out, overwrite=overwrite, inputs=inputs) as tmp:
        try:
            save_file({k: np.ascontiguousarray(v) for k, v in state.items()}, str(tmp / "model.safetensors"),
                      metadata={"format": "pt"})
        except SafetensorError as e:  # its I/O errors (a full disk) are not OSErrors
            raise OSError(f"writing {out / 'model.safetensors'} failed: {e}") from e
        (tmp / "config.json").write_text(hf_config.to_json_string())
    return out
