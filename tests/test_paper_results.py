"""The paper's tables as --reference rows: their numbers reproduce the paper's own relative-improvement columns
through zoejax's mRItheta / mRID, and zoejax-eval accepts, lists and rejects row names as documented."""

import pytest

from zoejax.cli.evaluate import load_reference, main
from zoejax.evaluation.metrics import METRIC_TABLE
from zoejax.evaluation.paper_results import BASELINES, REFERENCES, ROWS, paper_reference
from zoejax.evaluation.protocols import PROTOCOLS
from zoejax.evaluation.report import improvement_scores

SCORED = [row for row in ROWS if row.table in BASELINES]


@pytest.mark.parametrize("row", SCORED, ids=[row.key for row in SCORED])
def test_rows_reproduce_the_papers_improvement_column(row):
    baseline = REFERENCES[BASELINES[row.table]].results
    scores = improvement_scores(row.results, baseline)
    # Table 4 prints mRItheta per dataset (mean RI over d1, REL, RMSE); Table 2 mRID of REL (mean over datasets).
    ours = scores["mRI_theta"] if row.table == "table4" else scores["mRID"]
    assert set(ours) == set(row.paper_score)
    for key, published in row.paper_score.items():
        # Recomputed from three-decimal cells, the printed one-decimal percentages agree to their rounding.
        assert ours[key] == pytest.approx(published, abs=0.0006), key


def test_rows_use_known_datasets_and_metrics():
    metrics = {m.name for m in METRIC_TABLE}
    for row in ROWS:
        assert set(row.results) <= set(PROTOCOLS), row.key
        assert all(set(m) <= metrics and all(v > 0 or k == "a1" for k, v in m.items())
                   for m in row.results.values()), row.key
    assert len(REFERENCES) == len(ROWS)  # no two rows share a key


def test_lookup_is_case_insensitive_and_a_typo_gets_a_hint():
    assert paper_reference("PAPER:Table4:NeWCRFs") == REFERENCES["paper:table4:newcrfs"].results
    assert load_reference("paper:released:zoed-m12-n")["nyu"] == {"abs_rel": 0.075}
    with pytest.raises(ValueError, match="did you mean 'paper:table4:newcrfs'"):
        paper_reference("paper:table4:newcrf")


def test_a_rel_only_reference_compares_rel_and_calls_nothing_undefined():
    ours = {"nyu": {"a1": 0.9, "abs_rel": 0.0825, "rmse": 0.3}, "kitti": {"a1": 0.9, "abs_rel": 0.0627, "rmse": 2.5}}
    scores = improvement_scores(ours, paper_reference("paper:table2:zoed-m12-nk"))
    assert scores["compared"] == ["abs_rel"] and scores["undefined"] == []
    assert scores["mRI_theta"] == pytest.approx({"nyu": -(0.0825 - 0.077) / 0.077, "kitti": -(0.0627 - 0.057) / 0.057})
    with pytest.raises(ValueError, match="no metric"):
        improvement_scores({"nyu": {"a1": 0.9}}, paper_reference("paper:table2:zoed-m12-nk"))


def test_cli_lists_rows_and_rejects_an_unknown_one_before_loading(capsys):
    assert main(["--list-references"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in listed] == list(REFERENCES)
    with pytest.raises(SystemExit) as exit_info:  # bad usage: exit 2, the checkpoint (absent) never read
        main(["--checkpoint", "/nonexistent", "--reference", "paper:table9:zoe"])
    assert exit_info.value.code == 2
    assert "unknown paper reference 'paper:table9:zoe'" in capsys.readouterr().err
    # A reference without any of the datasets asked for is reported before the evaluation (and the checkpoint).
    assert main(["--checkpoint", "/nonexistent", "--datasets", "nyu", "--reference", "paper:table4:newcrfs"]) == 1
    err = capsys.readouterr().err
    assert "covers vkitti2, ddad, diml_outdoor, diode_outdoor: none of the datasets evaluated (nyu)" in err
    assert "checkpoint not found" not in err
