"""The accelerators page's table from ``tpu_aot.py --json`` results: one row per model x topology (x slices),
at its best compiled per-chip batch, with the estimated wall time of the paper's NYU fine-tune.

  python benchmarks/tpu_aot.py --config configs/zoedepth_n.py --topology v5p:2x2x1 --global-batch 16 --json r.jsonl
  ...                                                   # one line per compile: models, topologies, batches
  python benchmarks/tpu_table.py r.jsonl                # the markdown table

Every figure is the compiler's estimate (``tpu_aot.py``); the NYU fine-tune is the paper's 5 epochs of 24,231
images at the row's images/s, with no evaluation, input pipeline or checkpoint time.
"""

from __future__ import annotations

import argparse
import json
import math
import os
from collections.abc import Iterable

NYU_IMAGES = 24_231  # NYU Depth v2 training images in the ZoeDepth recipe
NYU_EPOCHS = 5


def nyu_finetune_hours(images_per_s: float) -> float:
    """Hours of the paper's NYU fine-tune (5 x 24,231 images) at ``images_per_s``; nan without an estimate."""
    if not images_per_s or not math.isfinite(images_per_s) or images_per_s <= 0:
        return float("nan")
    return NYU_EPOCHS * NYU_IMAGES / images_per_s / 3600


def model_name(config: str) -> str:
    """'configs/zoedepth_nk.py:tiny' -> 'ZoeD_NK (tiny)'."""
    path, _, arg = config.partition(":")
    stem = os.path.splitext(os.path.basename(path))[0]
    name = {"zoedepth_n": "ZoeD_N", "zoedepth_nk": "ZoeD_NK", "zoedepth_k": "ZoeD_K"}.get(stem, stem)
    return f"{name} ({arg})" if arg else name


def best_rows(results: Iterable[dict]) -> list[dict]:
    """Per (model, topology, slices): the fitting train-step result with the most estimated images/s (ties: the
    smaller batch); where no fitting result has a speed estimate, the largest fitting batch; where nothing fits,
    the smallest batch, marked as not fitting. Each row gains ``batches``: the per-chip batches compiled."""
    groups: dict[tuple, list[dict]] = {}
    for r in results:
        if r.get("mode", "train") != "train" or r.get("override"):
            continue
        slices = r.get("num_slices", 1)
        groups.setdefault((model_name(r["config"]), r["topology"], slices), []).append(r)
    rows = []
    for (model, _, slices), rs in groups.items():
        fitting = [r for r in rs if r["fits"]]
        timed = [r for r in fitting if math.isfinite(r["images_per_s"] or float("nan"))]
        if timed:
            pick = max(timed, key=lambda r: (r["images_per_s"], -r["global_batch"]))
        elif fitting:
            pick = max(fitting, key=lambda r: r["global_batch"])
        else:
            pick = min(rs, key=lambda r: r["global_batch"])
        rows.append({**pick, "model": model, "slices": slices,
                     "batches": sorted({r["global_batch"] // r["chips"] for r in rs})})
    return sorted(rows, key=lambda r: (r["model"], r["topology"], r["slices"]))


def markdown(rows: list[dict]) -> str:
    head = ("| model | topology | chips | fits | HBM per chip (GiB) | best per-chip batch (of compiled) | "
            "estimated images/s | MFU | NYU fine-tune (h) |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        topology = r["topology"] + (f" x {r['slices']} slices" if r["slices"] > 1 else "")
        ips = r["images_per_s"]
        known = ips is not None and math.isfinite(ips)
        mfu = f"{100 * r['mfu']:.1f}%" + (" (xla flops)" if r.get("mfu_basis") == "xla" else "") if known else "n/a"
        lines.append(
            f"| {r['model']} | {topology} | {r['chips']} | {'yes' if r['fits'] else 'no'} | "
            f"{r['hbm_gib']:.2f} of {r['capacity_gib']:.0f} | {r['global_batch'] // r['chips']} "
            f"({', '.join(map(str, r['batches']))}) | {f'{ips:.1f}' if known else 'n/a'} | {mfu} | "
            f"{f'{nyu_finetune_hours(ips):.2f}' if known else 'n/a'} |")
    return "\n".join(lines)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("results", help="a JSON-lines file written by tpu_aot.py --json")
    args = p.parse_args(argv)
    if not os.path.isfile(args.results):
        raise SystemExit(f"tpu_table: results file not found: {args.results}")
    with open(args.results) as f:
        results = [json.loads(line) for line in f if line.strip()]
    print(markdown(best_rows(results)))


if __name__ == "__main__":
    main()
