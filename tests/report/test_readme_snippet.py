"""The README's alignment snippet, run as it is shown: raw Arena frames to the per-group report and labels.

The snippet is read from README.md between its marker comments (so the README cannot drift from
what is tested) and executed on a small simulated Arena (``bayespref.simulate.arena``: 60 judges in
three regions with known shifts of the models' worths). It sets no sampler settings, so the fit uses
the library defaults; the data are small enough for that.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import bayespref as bp

pytestmark = pytest.mark.filterwarnings("ignore::bayespref.errors.DataWarning")


def test_snippet_is_at_most_ten_lines_of_code(readme_snippet):
    lines = [ln for ln in readme_snippet.splitlines() if ln.strip() and not ln.strip().startswith("#")]
    assert len(lines) <= 10, lines
    assert any("from_arena(battles" in ln for ln in lines) and any("group_report(" in ln for ln in lines)


@pytest.fixture(scope="module")
def ran(readme_run):
    """The snippet run once per session (tests/report/conftest.py: test_group_report uses its fit)."""
    return readme_run


def test_snippet_writes_the_report_folder(ran):
    folder, ns = ran
    out = folder / "arena-report"
    names = {p.name for p in out.iterdir()}
    assert "report.md" in names
    assert {f"{k}.png" for k in ns["report"].figures} <= names
    assert {f"{k}.csv" for k in ns["report"].tables} <= names
    assert not [p for p in folder.iterdir() if p.name.startswith(".")], "temporary files left behind"
    md = (out / "report.md").read_text()
    for title in ("Per-group rankings", "Contrasts between groups", "Rank reversals", "Pooled vs groups",
                  "Variance shares", "Convergence", "Posterior predictive checks"):
        assert f"## {title}" in md
    assert "Not available" not in md  # a hierarchical fit with the covariate supports every section


def test_snippet_report_recovers_the_regions(ran):
    """Known shifts: asia prefers qwen-u (+0.9) and gpt-x less (-0.6) than the americas."""
    _, ns = ran
    ranks = ns["report"].tables["rankings"]
    assert set(ranks.index.get_level_values("group")) == {"americas", "asia", "europe", "pooled"}
    assert len(ranks) == 4 * 6
    assert ranks.loc[("asia", "qwen-u"), "rank"] < ranks.loc[("americas", "qwen-u"), "rank"]
    c = ns["report"].tables["contrasts"].loc[("americas - asia", "qwen-u")]
    assert c["upper"] < 0 and c["p_positive"] < 0.05


def test_snippet_labels_file_reads_back(ran):
    folder, ns = ran
    labels = ns["labels"]
    back = bp.Comparisons.from_trl(folder / "arena-labels.jsonl")
    assert back.frame["a"].tolist() == labels["chosen"].tolist()
    assert back.frame["b"].tolist() == labels["rejected"].tolist()
    assert back.frame["prompt"].tolist() == labels["prompt"].tolist()
    # the file holds the margins exactly, and the reader parses them exactly
    exact = pd.read_json(folder / "arena-labels.jsonl", lines=True, dtype=False, precise_float=True)
    assert (exact["margin"].to_numpy() == labels["margin"].to_numpy()).all()
    np.testing.assert_array_equal(back.frame["margin"].to_numpy(), labels["margin"].to_numpy())
    assert set(labels["region"]) == {"americas", "asia", "europe"} and (labels["level"] == "group").all()
