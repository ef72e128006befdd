"""Published results to score against: ``zoejax-eval --reference paper:TABLE:METHOD``.

The numbers are the ZoeDepth paper's (Bhat et al., 2023), as printed (three decimals), keyed by this library's
dataset and metric names. Table 4 (zero-shot transfer to unseen outdoor datasets, δ1 / REL / RMSE) and Table 2
(REL of models fine-tuned on NYU + KITTI) give every method the paper compares; ``released`` holds the REL of the
three released checkpoints across the zero-shot datasets (the official repository's model table).

The paper's mRIθ (Table 4) and mRID (Table 2) columns are relative improvements over the NeWCRFs row of the same
table: ``--reference paper:table4:newcrfs`` (or ``paper:table2:newcrfs-x-nk-shared``) puts a zoejax evaluation
on that scale. ``tests/test_paper_results.py`` recomputes both columns from these rows.
"""

from __future__ import annotations

import dataclasses
import difflib

# The outdoor datasets of Table 4, in its column order.
_OUTDOOR = ("vkitti2", "ddad", "diml_outdoor", "diode_outdoor")
# Table 2's datasets, in its column order.
_TABLE2 = ("nyu", "kitti", "ibims", "vkitti2")


@dataclasses.dataclass(frozen=True)
class PaperRow:
    """One method's row of a published table.

    Attributes:
      table: "table2", "table4" or "released".
      method: the method as the table names it.
      results: {dataset: {metric: value}}; depths in metres (RMSE).
      paper_score: the row's published relative-improvement column, as a fraction (Table 4: mRIθ per dataset,
        Table 2: mRID of REL); empty where the table has none.
    """

    table: str
    method: str
    results: dict[str, dict[str, float]]
    paper_score: dict[str, float] = dataclasses.field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"paper:{self.table}:{self.method.lower()}"


def _table4(method: str, *cells: float) -> PaperRow:
    """Cells as printed: for each outdoor dataset δ1, REL, RMSE, mRIθ (%)."""
    results, theta = {}, {}
    for i, dataset in enumerate(_OUTDOOR):
        a1, rel, rmse, mri = cells[4 * i:4 * i + 4]
        results[dataset] = {"a1": a1, "abs_rel": rel, "rmse": rmse}
        theta[dataset] = mri / 100
    return PaperRow("table4", method, results, theta)


def _table2(method: str, *cells: float) -> PaperRow:
    """Cells as printed: REL on NYU, KITTI, iBims-1, vKITTI-2, then mRID (%)."""
    results = {d: {"abs_rel": v} for d, v in zip(_TABLE2, cells[:4], strict=True)}
    return PaperRow("table2", method, results, {"abs_rel": cells[4] / 100})


def _released(method: str, **rel: float) -> PaperRow:
    return PaperRow("released", method, {d: {"abs_rel": v} for d, v in rel.items()})


ROWS: tuple[PaperRow, ...] = (
    # Table 4: zero-shot transfer to four unseen outdoor datasets (models trained on KITTI, or NYU + KITTI).
    _table4("BTS", .831, .115, 5.368, 2.5, .805, .147, 7.550, -17.8, .016, 1.785, 5.908, 24.3,
            .171, .837, 10.48, -4.8),
    _table4("AdaBins", .826, .122, 5.420, 0.0, .766, .154, 8.560, -26.7, .013, 1.941, 6.272, 9.7,
            .161, .863, 10.35, -7.2),
    _table4("LocalBins", .810, .127, 5.981, -5.3, .777, .151, 8.139, -23.2, .016, 1.820, 6.706, 19.5,
            .170, .821, 10.27, -3.6),
    _table4("NeWCRFs", .829, .117, 5.691, 0.0, .874, .119, 6.183, 0.0, .010, 1.918, 6.283, 0.0,
            .176, .854, 9.228, 0.0),
    _table4("ZoeD-X-K", .837, .112, 5.338, 3.8, .790, .137, 7.734, -16.6, .005, 1.756, 6.180, -13.3,
            .242, .799, 7.806, 19.8),
    _table4("ZoeD-M12-K", .864, .100, 4.974, 10.5, .835, .129, 7.108, -9.3, .003, 1.921, 6.978, -27.1,
            .269, .852, 6.898, 26.1),
    _table4("ZoeD-M12-NK", .850, .105, 5.095, 7.8, .824, .138, 7.225, -12.8, .292, .641, 3.610, 976.4,
            .208, .757, 7.569, 15.8),
    # Table 2: REL of models fine-tuned on NYU + KITTI (the "†" single, shared metric head variants end in -shared).
    _table2("DORN-X-NK-shared", .156, .115, .287, .259, -45.7),
    _table2("LocalBins-X-NK-shared", .245, .133, .296, .265, -74.0),
    _table2("NeWCRFs-X-NK-shared", .109, .076, .189, .190, 0.0),
    _table2("DORN-M12-NK-shared", .110, .081, .242, .215, -12.2),
    _table2("LocalBins-M12-NK-shared", .086, .071, .221, .121, 11.8),
    _table2("PixelBins-M12-NK-shared", .088, .071, .232, .119, 10.1),
    _table2("NeWCRFs-M12-NK-shared", .088, .073, .233, .124, 8.7),
    _table2("ZoeD-X-NK-shared", .095, .074, .187, .184, 4.9),
    _table2("ZoeD-M12-NK-shared", .081, .061, .210, .112, 18.8),
    _table2("ZoeD-M12-NK", .077, .057, .186, .105, 25.2),
    # The released checkpoints' REL on the zero-shot datasets (NYU is in-domain for N and NK).
    _released("ZoeD-M12-N", nyu=.075, sunrgbd=.119, ibims=.169, diode_indoor=.327, hypersim=.410),
    _released("ZoeD-M12-NK", nyu=.077, sunrgbd=.123, ibims=.186, diode_indoor=.331, hypersim=.419,
              vkitti2=.105, ddad=.138, diml_outdoor=.641, diode_outdoor=.757),
    _released("ZoeD-M12-K", vkitti2=.100, ddad=.129, diml_outdoor=1.921, diode_outdoor=.852),
)
REFERENCES: dict[str, PaperRow] = {row.key: row for row in ROWS}
# The baseline each table's relative-improvement column is computed against.
BASELINES = {"table4": "paper:table4:newcrfs", "table2": "paper:table2:newcrfs-x-nk-shared"}


def paper_reference(key: str) -> dict[str, dict[str, float]]:
    """The ``{dataset: {metric: value}}`` results of ``paper:TABLE:METHOD`` (case-insensitive).

    Raises:
      ValueError: the key names no row; the message lists the rows.
    """
    row = REFERENCES.get(key.lower())
    if row is None:
        close = difflib.get_close_matches(key.lower(), REFERENCES, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ValueError(f"unknown paper reference {key!r}; {hint}zoejax-eval --list-references lists them")
    return {d: dict(m) for d, m in row.results.items()}


def describe() -> str:
    """The rows, their datasets and metrics, one line each (``zoejax-eval --list-references``)."""
    lines = []
    for row in ROWS:
        metrics = sorted({m for values in row.results.values() for m in values})
        lines.append(f"{row.key:<37} {','.join(metrics):<16} {','.join(row.results)}")
    return "\n".join(lines)
