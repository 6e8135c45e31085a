"""bayespref.report.group_report: sections, tables, figures, rendering and atomic saving; and README's
alignment snippet, run as it is shown."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import bayespref as bp
from bayespref.report import GroupReport, group_report

QUICK = dict(chains=2, warmup=300, draws=300, progress=False)
SECTIONS = ["overview", "rankings", "contrasts", "reversals", "pooled", "variance_shares", "convergence", "ppc"]

pytestmark = [pytest.mark.filterwarnings("ignore::bayespref.errors.ConvergenceWarning"),
              pytest.mark.filterwarnings("ignore::bayespref.errors.DataWarning")]


@pytest.fixture(scope="module")
def data(arena):
    battles, judges = arena
    return bp.Comparisons.from_arena(battles, user_covariates=judges)


@pytest.fixture(scope="module")
def report(readme_run):
    """The report on the README snippet's fit (tests/report/conftest.py, run once per session):
    ``Hierarchical(varying=["worths"], covariates=["region"], ties=True)`` on these Arena data
    (2 x (500 + 500) in the default run), so the model is compiled and sampled once for both parts."""
    fit = readme_run[1]["fit"]
    assert fit.model == bp.Hierarchical(varying=["worths"], covariates=["region"], ties=True)
    return group_report(fit, "region", reference=None, seed=1)


@pytest.fixture(scope="module")
def pooled_report(data):
    """A pooled Bradley-Terry fit: no groups to compare."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = bp.fit(bp.BradleyTerry(ties=True), data, seed=3, **QUICK)
    return group_report(fit, "region")


def test_sections_tables_and_figures(report):
    assert isinstance(report, GroupReport) and report.by == "region"
    assert [s.key for s in report.sections] == SECTIONS
    assert report.notes == {}
    t = report.tables
    ranks = t["rankings"]
    assert ranks.index.names == ["group", "term"]
    assert set(ranks.index.get_level_values("group")) == {"americas", "asia", "europe", "pooled"}
    assert len(ranks) == 24 and list(ranks.columns) == ["mean", "sd", "lower", "upper", "rank"]
    for _, g in ranks.groupby(level="group"):
        assert sorted(g["rank"]) == [1, 2, 3, 4, 5, 6]
        assert (g["lower"] <= g["mean"]).all() and (g["mean"] <= g["upper"]).all()
    assert len(t["contrasts"]) == 3 * 6
    assert set(t["contrasts"].index.get_level_values("contrast")) == {"americas - asia", "americas - europe",
                                                                      "asia - europe"}
    assert len(t["reversals"]) == 3 * 15 and t["reversals_matrix"].shape == (3, 3)
    assert list(t["pooled"].index) == ["americas", "asia", "europe", "pooled"]
    assert t["pooled"]["users"].tolist() == [20, 20, 20, 60]
    assert t["pooled"].loc["pooled", "p_same_top"] == 1.0
    shares = t["variance_shares"]
    assert list(shares.index) == ["between_groups", "within_groups", "residual"]
    assert abs(shares["mean"].sum() - 1) < 1e-9
    assert {"calibration", "win_rates", "position_flip"} <= set(t["ppc"].index)
    assert "max R-hat" in t["convergence"].index
    assert t["overview_groups"]["judgements"].sum() == 900
    assert set(report.figures) == {"rankings", "reversals", "ppc_calibration"}
    assert all(report.png(k).startswith(b"\x89PNG") for k in report.figures)


def test_known_region_shifts(report):
    """asia: qwen-u up by 0.9; europe: mistral-w up by 0.7 (bayespref.simulate.arena.SHIFTS)."""
    c = report.tables["contrasts"]
    assert c.loc[("americas - asia", "qwen-u"), "upper"] < 0
    assert c.loc[("americas - europe", "mistral-w"), "upper"] < 0
    ranks = report.tables["rankings"]["rank"]
    assert ranks[("asia", "qwen-u")] < ranks[("americas", "qwen-u")]
    assert ranks[("europe", "mistral-w")] < ranks[("americas", "mistral-w")]


def test_markdown_and_html(report):
    md = report.to_markdown()
    assert md.startswith("# Preferences by region")
    assert md.count("\n## ") == len(SECTIONS)
    for name in report.figures:
        assert f"]({name}.png)" in md
    assert "| group | term | mean |" in md
    assert "(15 of 45 rows; all in `reversals.csv`)" in md
    page = report._repr_html_()
    assert page.count("data:image/png;base64,") == len(report.figures)
    assert "<h2>Rank reversals</h2>" in page and "<table" in page
    linked = report.to_html(embed=False)
    assert linked.startswith("<!DOCTYPE html>") and "src='rankings.png'" in linked
    assert "Variance shares" in repr(report)


@pytest.mark.parametrize("fmt", ["md", "html"])
def test_save_writes_the_folder_atomically(report, tmp_path, fmt):
    out = report.save(tmp_path / "rep", format=fmt)
    names = {p.name for p in out.iterdir()}
    assert names == ({f"report.{fmt}"} | {f"{k}.png" for k in report.figures} | {f"{k}.csv" for k in report.tables})
    assert (out / "rankings.png").read_bytes() == report.png("rankings")
    assert [p.name for p in tmp_path.iterdir()] == ["rep"]  # no temporary folder left
    report.save(tmp_path / "rep", format=fmt)  # replacing an existing report
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rep"]


def test_failed_save_leaves_the_old_folder(report, tmp_path, monkeypatch):
    out = report.save(tmp_path / "rep")
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def broken(self):
        raise RuntimeError("disk full")

    monkeypatch.setattr(GroupReport, "to_markdown", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        report.save(tmp_path / "rep")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["rep"]


def test_pooled_model_says_what_is_not_available(pooled_report):
    notes = pooled_report.notes
    assert set(notes) == {"rankings", "contrasts", "reversals", "pooled", "variance_shares"}
    assert all(n.startswith("Not available for this model:") for n in notes.values())
    assert "BradleyTerry" in notes["rankings"]
    assert "ppc" in {s.key for s in pooled_report.sections if s.note is None}
    assert np.isfinite(pooled_report.tables["ppc"]["p_value"]).all()
    md = pooled_report.to_markdown()
    assert md.count("*Not available for this model:") == 5


def test_bad_input(report, data):
    fit = None
    with pytest.raises(bp.FitError):
        group_report(fit, "region")
    with pytest.raises(bp.DataError, match="not a user covariate"):
        group_report(_Stub(data), "age")
    with pytest.raises(bp.DataError, match="format="):
        report.save("unused", format="pdf")


class _Stub:
    """Enough of a Fit for the argument checks."""

    def __init__(self, data):
        self.data, self.idata, self.model = data, None, None

    def convergence(self):  # pragma: no cover - never reached
        raise AssertionError


# ------------------------------------------------------------------------------------------------
# README's alignment snippet, run as it is shown (tests/report/conftest.py reads it from README.md
# and runs it once; the fit above is its fit): raw Arena frames to the per-group report and labels.
# It sets no sampler settings, so the fit uses the library defaults. In this module, not a module
# of its own, so that the two share one run of the snippet on one test worker.
# ------------------------------------------------------------------------------------------------
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


@pytest.mark.slow  # the library's default sampler settings, 4 x (1,000 + 1,000): about a minute
def test_snippet_as_shown_with_the_library_defaults(readme_snippet, arena, snippet_runner, tmp_path):
    """The snippet exactly as a user runs it (no settings added): NUTS with the default chains, no
    convergence warning, the regions' known shifts recovered and both files written."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ns = snippet_runner(readme_snippet, arena, tmp_path)
    assert not [w for w in caught if issubclass(w.category, bp.ConvergenceWarning)]
    fit = ns["fit"]
    assert fit.info["method"] == "nuts" and fit.idata.posterior.sizes["chain"] == 4
    assert fit.idata.posterior.sizes["draw"] >= 1000
    c = ns["report"].tables["contrasts"].loc[("americas - asia", "qwen-u")]
    assert c["upper"] < 0 and c["p_positive"] < 0.05
    assert (tmp_path / "arena-report" / "report.md").is_file() and (tmp_path / "arena-labels.jsonl").is_file()


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
