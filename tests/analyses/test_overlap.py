"""Overlap / positivity diagnostics: shares, correlations, propensity, cells and warnings."""

from __future__ import annotations

import warnings

import matplotlib.figure
import numpy as np
import pandas as pd
import pytest

import bayespref as bp
from bayespref import overlap
from bayespref.errors import DataError, DataWarning


def test_informative_share_formula():
    np.testing.assert_allclose(overlap.informative_share(np.array([0.0, 0.3, 0.6, 0.9])),
                               [0.5, 0.403, 0.295, 0.144], atol=1e-3)
    assert overlap.informative_share(1.0) == 0.0 and overlap.informative_share(-1.0) == 1.0


@pytest.mark.parametrize("rho", [0.0, 0.6, 0.9])
def test_observed_share_matches_theory_on_latent_factors(rho):
    n = 6000
    sim = bp.simulate.latent_positivity(rho=rho, n_train=n, n_test=10, seed=1)
    latent = sim.comparisons(features=["z1", "z2"]).subset(sim.splits["train"])
    row = overlap.informative_pairs(latent).loc[("z1", "z2")]
    theory = 0.5 - np.arcsin(rho) / np.pi
    se = np.sqrt(theory * (1 - theory) / n)
    assert abs(row["share"] - theory) < 4 * se
    assert abs(row["rho"] - rho) < 0.05
    corr = overlap.feature_correlation(latent)
    assert corr.dims == ("feature", "feature_bis")
    np.testing.assert_allclose(np.diag(corr.values), 1.0)


def test_correlated_features_and_constant_differences_warn():
    sim = bp.simulate.latent_positivity(rho=0.95, n_train=2000, n_test=10, seed=0)
    fr = sim.frame.assign(const_a=1.0, const_b=1.0)
    data = bp.Comparisons.from_frame(fr, features=["z1", "z2", "const"], check_connected=False)
    with pytest.warns(DataWarning, match="'z1' and 'z2' move together"):
        rep = overlap.diagnose(data)
    assert any("'const' has the same difference" in m for m in rep.messages)
    assert np.isnan(rep.correlation.sel(feature="const", feature_bis="z1"))


def _confounded(rho, seed=0):
    sim = bp.simulate.confounded_objective(rho=rho, n_users=40, comparisons_per_user=40, n_test=10, seed=seed)
    return sim, sim.split()["train"], sim.frame.loc[sim.splits["train"], "prompt_type"].to_numpy()


def test_empty_cells_warn_at_rho_one_only():
    _, train, t = _confounded(1.0)
    with pytest.warns(DataWarning, match="No comparisons of objective = 0 on prompt type 1"):
        rep = overlap.diagnose(train, "objective", prompt_type=t)
    assert (rep.cells.loc[(0, 1), "n"], rep.cells.loc[(1, 0), "n"]) == (0, 0)
    assert rep.propensity["auc"].min() > 0.95
    _, train, t = _confounded(0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)
        rep = overlap.diagnose(train, "objective", prompt_type=t)
    assert rep.messages == []
    assert abs(rep.propensity["auc"].mean() - 0.5) < 0.08  # the groups saw the same comparisons


def test_cells_counts_and_effective_users():
    sim, train, t = _confounded(0.8)
    c = overlap.cells(train, "objective", t)
    assert c["n"].sum() == train.n_comparisons
    np.testing.assert_allclose(c.groupby(level="group")["share"].sum(), 1.0)
    assert (c["ess"] <= c["users"] + 1e-9).all() and (c["ess"] > 0).all()
    # a Series by prompt id and a column of the frame give the same table
    by_prompt = pd.Series(t, index=sim.frame.loc[sim.splits["train"], "prompt"].to_numpy())
    pd.testing.assert_frame_equal(overlap.cells(train, "objective", by_prompt), c)
    # one user carrying a cell: ess equals 1
    one = train.subset(np.flatnonzero(np.asarray(train.user) == 0))
    assert overlap.cells(one, "objective", t[np.asarray(train.user) == 0])["ess"].max() == pytest.approx(1.0)


def test_report_repr_and_plot():
    _, train, t = _confounded(0.9)
    rep = overlap.diagnose(train, "objective", prompt_type=t, warn=False)
    text = repr(rep)
    assert "cells:" in text and "group propensity:" in text
    fig = overlap.plot_overlap(rep)
    assert isinstance(fig, matplotlib.figure.Figure) and len(fig.axes) >= 2


def test_overlap_errors():
    _, train, t = _confounded(0.8)
    with pytest.raises(DataError, match="no user covariate 'age'"):
        overlap.cells(train, "age", t)
    with pytest.raises(DataError, match="one per"):
        overlap.cells(train, "objective", t[:10])
    with pytest.raises(DataError, match="not in the data"):
        overlap.feature_correlation(train, ["length"])
    plain = bp.Comparisons.from_frame(pd.DataFrame({"a": ["x", "y"], "b": ["y", "z"], "outcome": [1, 0]}))
    with pytest.raises(DataError, match="no option features"):
        overlap.informative_pairs(plain)
