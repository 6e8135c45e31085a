"""Convergence problems told plainly: when a NUTS fit ends with R-hat > 1.01, bulk ESS below 100 per
chain (400 for 4 chains) or divergences, the warning, ``fit.summary()``, ``fit.convergence()``, the
CLI's printed summary and the group report's convergence section name the parameters concerned and
the remedy the package can apply itself (a refit with more warm-up and draws, a higher
target_accept, a deeper tree, chains started from an SVI fit).

The fit is a deliberately short run (2 chains, 5 warm-up iterations, 20 draws) that fails the rules.
"""

from __future__ import annotations

import copy
import math
import warnings

import numpy as np
import pandas as pd
import pytest

import bayespref as bp
from bayespref import config
from bayespref.cli import _print_convergence
from bayespref.inference import convergence
from bayespref.inference.result import Fit
from bayespref.report.group_report import _convergence as report_section


@pytest.fixture(scope="module")
def short():
    """``(fit, messages)``: a short NUTS run and the texts of its convergence warnings."""
    data = bp.load_dataset("citations").comparisons()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit = bp.fit(bp.BradleyTerry(), data, seed=0, chains=2, warmup=5, draws=20, progress=False)
    return fit, [str(w.message) for w in caught if issubclass(w.category, bp.ConvergenceWarning)]


def test_the_warning_names_the_parameters_and_the_remedy(short):
    fit, messages = short
    assert len(messages) == 1
    message = messages[0]
    check = fit.info["convergence_check"]
    assert check["flagged"] and check["n_flagged"] == len(check["flagged"])
    assert any(name in message for name in check["flagged"])  # by name, with coordinates
    assert "worth[" in message
    assert "bulk ESS < 200 (100 per chain x 2 chains" in message or "R-hat > 1.01" in message
    # the remedy: the settings of a refit, which the package applies when they are passed back
    assert check["remedy"]["warmup"] == 1000 and check["remedy"]["draws"] >= 1000
    assert "Remedy: refit with warmup=1000, draws=" in message
    assert "bp.fit(model, data, ..., warmup=1000" in message
    assert "fit.summary() flags these parameters" in message


def test_summary_flags_the_rows(short):
    fit, _ = short
    table = fit.summary()
    assert "flag" in table.columns
    flagged = table.index[table["flag"] != ""]
    assert len(flagged) > 0
    assert set(flagged) <= set(fit.info["convergence_check"]["flagged"]) | set(
        table.index[table["ess_tail"] < config.min_ess(2)])
    need = config.min_ess(2)
    row = table.loc[flagged[0]]
    assert (row["r_hat"] > config.RHAT_MAX) or (row["ess_bulk"] < need) or (row["ess_tail"] < need)
    assert all(set(f.split(", ")) <= {"R-hat", "bulk ESS", "tail ESS"} for f in table["flag"] if f)


def test_summary_of_svi_has_no_flag_column(conditioned_svi):
    # any SVI fit: the one made once per session (tests/conftest.py) rather than a new compilation
    fit = conditioned_svi[2]
    assert fit.info["method"] == "svi"
    assert "flag" not in fit.summary().columns


def test_report_names_parameters_and_remedy(short):
    fit, _ = short
    rep = fit.convergence()
    assert not rep.ok and len(rep.flagged) > 0
    assert rep.remedy["warmup"] == 1000
    assert rep.advice.startswith("refit with warmup=1000")
    text = str(rep)
    assert "flagged parameters" in text and "remedy: refit with warmup=1000" in text
    assert any(str(name) in text for name in rep.flagged.index[:5])
    worst = rep.table["r_hat"].idxmax()  # the parameters are listed worst first
    assert f"(max {rep.stats['max R-hat']:.3f}): {worst}" in rep.problems[0]
    assert "remedy:" in rep._repr_html_()


def test_cli_prints_the_parameters_and_the_remedy(short, capsys):
    fit, _ = short
    _print_convergence(fit)
    out = capsys.readouterr().out
    assert "Convergence:" in out and "problem(s)" in out and "worth[" in out
    assert "Remedy: refit with warmup=1000" in out


def test_group_report_section_lists_them(short):
    fit, _ = short
    section = report_section(fit)
    assert "Remedy: refit with warmup=1000" in section["text"]
    assert "worth[" in section["text"]
    assert "flagged" in section["tables"] and (section["tables"]["flagged"]["flag"] != "").all()


def test_divergences_name_where_they_lie_and_raise_target_accept(short):
    """Divergent draws placed where one parameter is largest: the message names that parameter and
    the remedy raises target_accept (0.8 -> 0.95)."""
    fit, _ = short
    dt = fit.idata.copy()
    post = dt.posterior.dataset
    worth = post["worth"].isel(option=1)
    high = (worth > worth.quantile(0.8)).values  # (chain, draw)
    ss = dt.sample_stats.dataset.copy()
    ss["diverging"] = (("chain", "draw"), high)
    dt["sample_stats"] = ss
    bent = Fit(dt, fit.model, fit.data, copy.deepcopy(fit.info))
    check = convergence.quick_check(bent)
    assert check["divergences"] == int(high.sum())
    label = f"worth[{fit.data.options[1]}]"
    assert f"divergent draws lie furthest from the others in {label}" in check["message"]
    assert check["remedy"]["target_accept"] == 0.95
    assert "target_accept=0.95" in check["message"]
    rep = bent.convergence()
    assert any("divergent" in p and label in p for p in rep.problems)


# -- the rules, one at a time -------------------------------------------------------------------------
def test_min_ess_is_100_per_chain():
    assert config.min_ess(4) == 400 and config.min_ess(2) == 200 and config.min_ess(1) == 100
    assert config.min_ess(4, per_chain=50) == 200


def test_flag_rows():
    table = pd.DataFrame({"r_hat": [1.0, 1.02, math.nan, 1.0], "ess_bulk": [500, 500, 500, 399],
                          "ess_tail": [500, 300, math.nan, 500]}, index=["a", "b", "c", "d"])
    flags = convergence.flag_rows(table, chains=4)
    assert flags.tolist() == ["", "R-hat, tail ESS", "", "bulk ESS"]
    assert convergence.flag_rows(table, chains=4, rhat_max=1.05)["b"] == "tail ESS"


def test_name_list_says_how_many_more():
    assert convergence.name_list([f"w[{i}]" for i in range(13)]) == ", ".join(f"w[{i}]" for i in range(10)) + \
        " and 3 more"
    assert convergence.name_list(["a"]) == "a"


@pytest.mark.parametrize("info, kwargs, expected", [
    ({"warmup": 5, "draws": 20}, dict(rhat_bad=True), {"warmup": 1000, "draws": 1000}),
    ({"warmup": 1000, "draws": 1000}, dict(ess_bad=True, min_ess_seen=100, need=400), {"warmup": 2000, "draws": 4000}),
    ({"warmup": 1000, "draws": 1000}, dict(ess_bad=True, min_ess_seen=1, need=400), {"warmup": 2000, "draws": 20000}),
    ({"target_accept": 0.8}, dict(divergences=3), {"target_accept": 0.95}),
    ({"target_accept": 0.95}, dict(divergences=3), {"target_accept": 0.99}),
    ({"target_accept": 0.99}, dict(divergences=3), {}),
    ({"max_tree_depth": 10}, dict(tree_depth=True), {"max_tree_depth": 12}),
])
def test_remedy(info, kwargs, expected):
    assert convergence.remedy(info, chains=4, **kwargs) == expected


def test_remedy_text_says_what_the_package_cannot_do():
    text = convergence.remedy_text({}, divergences=2)
    assert "reparameterise or use stronger priors" in text
    text = convergence.remedy_text({"warmup": 2000, "draws": 2000}, rhat_bad=True)
    assert text.startswith("refit with warmup=2000, draws=2000") and "init=bp.fit(model, data, method='svi')" in text


def test_divergent_parameters_points_at_the_shifted_one():
    import xarray as xr

    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 200))
    y = rng.normal(size=(2, 200))
    div = x > 1.5
    ds = xr.Dataset({"x": (("chain", "draw"), x), "y": (("chain", "draw"), y)})
    found = convergence.divergent_parameters(ds, div)
    assert found[0][0] == "x" and found[0][1] > 1
    assert all(name != "y" for name, _ in found)
    assert convergence.divergent_parameters(ds, np.zeros_like(div)) == []
