"""What the training loop reports besides ``metrics.jsonl``: TensorBoard scalars and the MFU estimate.

MFU (model FLOPs utilisation) = FLOPs of one train step on one device / step time / that device's peak FLOP/s.
The FLOPs come from XLA's cost analysis of the compiled (SPMD-partitioned, so per-device) train step, read
once at start; the peak comes from ``PEAK_FLOPS`` by ``jax.Device.device_kind`` and the compute dtype, or
from ``TrainConfig.peak_flops_per_device``. Device kinds not in the table (CPUs, unlisted accelerators) get
no MFU rather than a guess.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import jax

# Dense peak FLOP/s per device (one chip / one GPU), from the vendors' data sheets: (device_kind substring,
# bf16 peak, fp32 peak or None when not stated). The first match wins, so specific names come first.
# GPU "fp32" entries are the TF32 tensor-core peaks: XLA runs float32 dots on tensor cores in TF32 by default
# on Ampere and later. TPUs state no separate float32 peak.
PEAK_FLOPS: tuple[tuple[str, float, float | None], ...] = (
    ("tpu v6 lite", 918e12, None),  # v6e (Trillium)
    ("tpu v6e", 918e12, None),
    ("tpu v5 lite", 197e12, None),  # v5e
    ("tpu v5e", 197e12, None),
    ("tpu v5p", 459e12, None),
    ("tpu v5", 459e12, None),  # v5p reports "TPU v5"
    ("tpu v4", 275e12, None),
    ("h100 pcie", 756e12, 378e12),
    ("h100", 989e12, 494e12),  # SXM
    ("h200", 989e12, 494e12),
    ("a100", 312e12, 156e12),
)


def peak_flops_per_device(device_kind: str, dtype: str = "bfloat16") -> float | None:
    """The table's peak for a ``device_kind`` and compute dtype, or None when unknown."""
    kind = device_kind.lower()
    for pattern, bf16, fp32 in PEAK_FLOPS:
        if pattern in kind:
            return bf16 if dtype in ("bfloat16", "float16") else fp32
    return None


def step_flops(compiled: Any) -> float | None:
    """FLOPs of one call of a compiled executable on one device (XLA cost analysis), or None if unavailable."""
    try:
        analysis = compiled.cost_analysis()
    except Exception:  # some backends do not implement it
        return None
    if isinstance(analysis, list | tuple):
        analysis = analysis[0] if analysis else None
    flops = float((analysis or {}).get("flops", 0.0))
    return flops if flops > 0 else None


def model_flops_per_device(config: Any, image_shape: tuple[int, ...], devices: int) -> float | None:
    """Model FLOPs of one train step on one device from the analytic count (``zoejax.models.flops``: 3x the
    forward's matmuls and convolutions) for a global batch of ``image_shape`` (B, H, W, 3); None where the
    count does not apply (ZoeD_NK, the Depth Anything head). Unlike XLA's cost analysis of the compiled step it counts
    neither rematerialised work nor a loop body once (the CPU attention loops over heads)."""
    from zoejax.models import flops

    batch, height, width = image_shape[:3]
    try:
        return flops.train_step_flops(config, batch, height, width) / devices
    except (NotImplementedError, ValueError):
        return None


def mfu(flops_per_step: float | None, seconds_per_step: float, peak: float | None) -> float | None:
    if not flops_per_step or not peak or seconds_per_step <= 0:
        return None
    return flops_per_step / seconds_per_step / peak


class TensorBoard:
    """Scalars to ``log_dir`` (tensorboardX event files); a no-op on hosts other than 0 or when disabled."""

    def __init__(self, log_dir: str, enabled: bool = True):
        self._writer = None
        if enabled and jax.process_index() == 0:
            from tensorboardX import SummaryWriter

            os.makedirs(log_dir, exist_ok=True)
            self._writer = SummaryWriter(log_dir, flush_secs=30)

    def scalars(self, step: int, values: Mapping[str, float], prefix: str = "") -> None:
        if self._writer is None:
            return
        for key, value in values.items():
            if value is not None:
                self._writer.add_scalar(prefix + key, float(value), step)

    def flush(self) -> None:
        if self._writer is not None:
            self._writer.flush()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
