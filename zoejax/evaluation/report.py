"""Reporting evaluation results: the paper's table, JSON, and the relative-improvement scores mRIθ / mRID.

Columns are ``metrics.METRIC_TABLE``'s, in the paper's order (δ1 δ2 δ3 REL RMSE log10, then the other official
metrics). Values print rounded to 3 decimals as the official ``evaluate.py`` does; the JSON keeps full precision.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence

from zoejax.evaluation.metrics import METRIC_TABLE
from zoejax.io.safe_output import atomic_path

HIGHER_IS_BETTER = {m.name: m.higher_is_better for m in METRIC_TABLE}
# The metrics of the paper's zero-shot tables, over which mRIθ averages.
PAPER_METRICS = ("a1", "abs_rel", "rmse")


def format_table(results: Sequence[Mapping]) -> str:
    """Rows of ``{"dataset", "metrics", "num_images"}`` (``EvalResult.to_dict()``) as a fixed-width table."""
    head = f"{'dataset':<16}" + "".join(f"{m.column:>9}" for m in METRIC_TABLE) + f"{'images':>8}"
    lines = [head, "-" * len(head)]
    for r in results:
        m = r["metrics"]
        cells = "".join(f"{m[c.name]:>9.3f}" if c.name in m else f"{'-':>9}" for c in METRIC_TABLE)
        lines.append(f"{r['dataset']:<16}{cells}{r['num_images']:>8}")
    return "\n".join(lines)


def relative_improvement(target: float, reference: float, metric: str) -> float:
    """The paper's RI of ``target`` over ``reference``: (r - t) / r for lower-is-better metrics, (t - r) / r for
    higher-is-better ones (positive = better than the reference)."""
    if metric not in HIGHER_IS_BETTER:
        raise ValueError(f"unknown metric {metric!r}; choose one of {', '.join(HIGHER_IS_BETTER)}")
    if reference == 0:
        raise ValueError(f"reference {metric} is 0: relative improvement undefined")
    sign = 1.0 if HIGHER_IS_BETTER[metric] else -1.0
    return sign * (target - reference) / reference


def improvement_scores(results: Mapping[str, Mapping[str, float]], reference: Mapping[str, Mapping[str, float]],
                       metrics: Sequence[str] = PAPER_METRICS) -> dict[str, dict]:
    """mRIθ per dataset (mean RI over ``metrics``) and mRID per metric (mean RI over datasets), over the
    datasets present in both ``results`` and ``reference`` ({dataset: {metric: value}}).

    A metric missing from either side is left out (a REL-only reference gives REL-only means; "compared" lists
    the metrics used). An RI whose reference value is 0 is undefined: it is left out of both means and listed
    under "undefined".
    """
    common = [d for d in results if d in reference]
    if not common:
        raise ValueError("no dataset is in both the results and the reference table")
    both = {d: [m for m in metrics if m in results[d] and m in reference[d]] for d in common}
    if not any(both.values()):
        raise ValueError(f"no metric of {', '.join(metrics)} is in both the results and the reference table")
    ri = {d: {m: relative_improvement(results[d][m], reference[d][m], m) for m in both[d] if reference[d][m] != 0}
          for d in common}
    undefined = [f"{d}/{m}" for d in common for m in both[d] if m not in ri[d]]
    theta = {d: sum(v.values()) / len(v) for d, v in ri.items() if v}
    over_datasets = {}
    for m in metrics:
        values = [ri[d][m] for d in common if m in ri[d]]
        if values:
            over_datasets[m] = sum(values) / len(values)
    # The metrics compared are those with an mRID (at least one dataset gives their RI).
    return {"mRI_theta": theta, "mRID": over_datasets, "undefined": undefined, "compared": list(over_datasets)}


def write_json(path: str | os.PathLike, payload: Mapping) -> None:
    """Writes ``payload`` atomically (a reader never sees a half-written file)."""
    with atomic_path(path) as tmp, open(tmp, "w") as f:
        json.dump(payload, f, indent=2, sort_keys=False)
        f.write("\n")
