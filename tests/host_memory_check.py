"""Run by test_host_memory.py in a fresh interpreter: applies ``keep_freed_host_memory`` (unless the environment
turns it off), then allocates, touches and frees 256 MB four times, printing the page faults of each round."""

import json
import resource

import numpy as np

from zoejax.host_memory import keep_freed_host_memory

applied = keep_freed_host_memory()
faults = []
for _ in range(4):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    arrays = [np.ones(16 << 20, np.float32) for _ in range(4)]  # 4 x 64 MB, every page written
    del arrays
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(json.dumps({"applied": applied, "faults": faults}))
