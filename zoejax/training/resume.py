"""What a resumed run checks against the checkpoint it continues.

The input pipeline's saved position counts batches of the batch size the checkpoint was written with: restored
under another ``global_batch_size`` it would silently skip or repeat examples, so that is refused. ``init_from``
only starts a run; a resumed run continues from its checkpoint whatever ``init_from`` now says, and says so
when it changed.
"""

from __future__ import annotations

import logging
from typing import Any


class ResumeMismatchError(ValueError):
    """The run's settings cannot continue the checkpoint it would resume (another batch size)."""


def check_resume(meta: dict[str, Any], step: int, global_batch_size: int, init_from: str, workdir: str,
                 has_data_state: bool) -> None:
    """Raises ResumeMismatchError when ``meta`` (the checkpoint's record of its run) was saved with another
    global batch size and the input position is restored; warns when ``init_from`` differs from the run's."""
    saved = meta.get("train", {}) if isinstance(meta, dict) else {}
    saved_batch = saved.get("global_batch_size")
    if has_data_state and saved_batch is not None and int(saved_batch) != int(global_batch_size):
        raise ResumeMismatchError(
            f"{workdir}: checkpoint step {step} was trained with global_batch_size={saved_batch}, this run has "
            f"{global_batch_size}; its input position counts batches of {saved_batch}, so resuming would skip or "
            f"repeat examples. Resume with --config.global_batch_size={saved_batch}, or start a new --workdir "
            f"with --config.init_from={workdir} (its weights, a fresh schedule)")
    saved_init = saved.get("init_from")
    if saved_init is not None and init_from and saved_init != init_from:
        logging.warning("init_from=%s is ignored: resuming %s from its checkpoint step %d (the run started from "
                        "%s)", init_from, workdir, step, saved_init or "a random init")
