"""Multi-host set-up shared by every CLI that runs on many hosts (``zoejax-train``, ``zoejax-eval``).

With ZOEJAX_DISTRIBUTED=1 every host runs the same command; ``jax.distributed.initialize()`` then finds the
coordinator itself on Cloud TPU and under SLURM, or takes it from ZOEJAX_COORDINATOR (host:port),
ZOEJAX_NUM_PROCESSES and ZOEJAX_PROCESS_ID (what ``launch_gpu.sh`` sets for explicit multi-node runs).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

COORDINATOR_VARIABLES = ("ZOEJAX_COORDINATOR", "ZOEJAX_NUM_PROCESSES", "ZOEJAX_PROCESS_ID")


def initialize_distributed(environ: Mapping[str, str] = os.environ) -> bool:
    """``jax.distributed.initialize`` when ZOEJAX_DISTRIBUTED=1 (before any other JAX call): the explicit
    coordinator when ZOEJAX_COORDINATOR is set, else JAX's auto-detection. Returns whether it initialised.
    Raises ValueError naming the variable when the explicit set is incomplete or not a number."""
    if environ.get("ZOEJAX_DISTRIBUTED") != "1":
        return False
    import jax

    coordinator = environ.get("ZOEJAX_COORDINATOR")
    if coordinator:
        missing = [v for v in COORDINATOR_VARIABLES[1:] if not environ.get(v)]
        if missing:
            raise ValueError(f"ZOEJAX_COORDINATOR is set but not {', '.join(missing)}: set all of "
                             f"{', '.join(COORDINATOR_VARIABLES)} (or none, for Cloud TPU / SLURM auto-detection)")
        try:
            count, index = int(environ["ZOEJAX_NUM_PROCESSES"]), int(environ["ZOEJAX_PROCESS_ID"])
        except ValueError:
            raise ValueError(f"ZOEJAX_NUM_PROCESSES={environ['ZOEJAX_NUM_PROCESSES']!r} and ZOEJAX_PROCESS_ID="
                             f"{environ['ZOEJAX_PROCESS_ID']!r} must be integers") from None
        jax.distributed.initialize(coordinator_address=coordinator, num_processes=count, process_id=index)
    else:
        jax.distributed.initialize()
    return True
