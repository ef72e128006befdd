"""Run by test_host_memory.py in a fresh interpreter: what the CLIs do first (``apply_from_environment``), then
256 MB allocated, written and freed four times, printing the page faults of each round."""

import json
import resource

import numpy as np

from zoejax.host_memory import apply_from_environment

applied = apply_from_environment()
faults = []
for _ in range(4):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    arrays = [np.ones(16 << 20, np.float32) for _ in range(4)]  # 4 x 64 MB, every page written
    del arrays
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(json.dumps({"applied": applied, "faults": faults}))
