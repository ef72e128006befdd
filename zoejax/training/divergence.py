"""When a run stops for divergence: ``max_consecutive_nonfinite`` non-finite losses or gradients in a row.

The optimizer skips every non-finite update (``zoejax.training.adamw``), so the weights stay the last finite
ones; but a run that cannot make a finite step any more only burns its budget, and must not end as if it had
finished. The loop checks the optimizer's count of skips in a row at each log step and before each checkpoint
(the only points where it reads device values anyway) and raises DivergedError, which ``zoejax-train`` turns
into one line and exit code 3.
"""

from __future__ import annotations

from typing import Any

import jax

from zoejax.training.optim import consecutive_nonfinite_count


class DivergedError(FloatingPointError):
    """The run made no finite step for ``max_consecutive_nonfinite`` steps in a row (or its weights are not
    finite); its checkpoints hold the last finite weights."""


def check_divergence(opt_state: Any, step: int, limit: int, latest_checkpoint: int | None) -> None:
    """Raises DivergedError when the last ``limit`` (or more) updates up to ``step`` were all skipped."""
    in_a_row = int(jax.device_get(consecutive_nonfinite_count(opt_state)))
    if in_a_row < max(limit, 1):
        return
    kept = (f"the latest checkpoint (step {latest_checkpoint}) holds the last finite weights"
            if latest_checkpoint is not None else "no checkpoint was saved")
    raise DivergedError(
        f"diverged: steps {step - in_a_row + 1}-{step} ({in_a_row} in a row) had a non-finite loss or gradient "
        f"and were skipped (optim.max_consecutive_nonfinite={limit}); stopped, {kept}. Lower optim.lr, check "
        "the data of these steps (metrics.jsonl), or resume with a larger max_consecutive_nonfinite")
