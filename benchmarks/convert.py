"""Time and peak memory of converting a full-size official checkpoint (BEiT-L ZoeD_N / ZoeD_NK, or the MiDaS
``dpt_beit_large_384`` whose metric head is initialised fresh) with ``zoejax-convert``, on a release-shaped file
with random weights written to a temporary folder.

  python benchmarks/convert.py [--variant ZoeD_N|ZoeD_NK|dpt_beit_large_384]

Prints a table; the last line is ``convert_seconds: X``.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))
from checkpoint_fixtures import manifest_state_dict  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", default="ZoeD_N", choices=("ZoeD_N", "ZoeD_NK", "dpt_beit_large_384"),
                        help="which release-shaped checkpoint to write and convert")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, f"{args.variant}.pt")
        state = manifest_state_dict(args.variant, materialise=True)
        torch.save({"model": {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in state.items()}}, src)
        del state
        size_gb = os.path.getsize(src) / 1e9
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "zoejax.cli.convert", src, os.path.join(tmp, "out")], check=True)
        seconds = time.perf_counter() - t0
        peak_gb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1e6  # kB on Linux
    print(f"| checkpoint | file size | convert wall time | peak RSS |\n|---|---|---|---|\n"
          f"| {args.variant} (random, release-shaped) | {size_gb:.2f} GB | {seconds:.1f} s | {peak_gb:.2f} GB |")
    print(f"convert_seconds: {seconds:.1f}")


if __name__ == "__main__":
    main()
