"""bayespref.checks: posterior predictive checks, cross-validation, comparison, SBC, convergence.

Small data and short chains; the statistical studies (SBC with 100 simulations per model, model
choice over 5 seeds, misspecification and position over seeds) are in checks/test_checks_studies.py.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import bayespref as bp
from bayespref.checks import crossval, ppc
from bayespref.checks._draws import predictive_draws
from bayespref.errors import DataError, FitError, ModelError

NUTS = dict(chains=2, warmup=200, draws=200, progress=False)


def _fit(spec, data, seed=0, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bp.ConvergenceWarning)
        return bp.fit(spec, data, seed=seed, **{**NUTS, **kw})


@pytest.fixture(scope="module")
def position_data():
    # first-shown option wins with log-odds +1 on top of the worths
    return bp.simulate.bradley_terry(n_options=5, n_comparisons=300, position=1.0, seed=3).comparisons()


@pytest.fixture(scope="module")
def fit_no_position(position_data):
    return _fit(bp.BradleyTerry(), position_data, seed=1)


@pytest.fixture(scope="module")
def fit_position(position_data):
    return _fit(bp.BradleyTerry(position=True), position_data, seed=2)


# ---------------------------------------------------------------------------------------------
# p-values and tournament arithmetic, no fitting
# ---------------------------------------------------------------------------------------------
def test_ppp_mid_p_and_tails():
    import xarray as xr

    rep = xr.DataArray(np.array([0.0, 1.0, 2.0, 3.0]), dims="sample")
    assert float(ppp_upper := ppc.ppp(xr.DataArray(2.0), rep, "upper")) == pytest.approx(1 / 4 + 0.5 / 4)
    assert float(ppc.ppp(xr.DataArray(2.0), rep, "lower")) == pytest.approx(1 - ppp_upper)
    assert float(ppc.ppp(xr.DataArray(10.0), rep, "two-sided")) == 0.0
    assert float(ppc.ppp(xr.DataArray(1.5), rep, "two-sided")) == pytest.approx(1.0)


def test_cyclic_triad_rate():
    # 3 options: 0 > 1 > 2 > 0 is one cyclic triad out of one; 0 > 1 > 2, 0 > 2 is none
    i, j = np.array([0, 0, 1]), np.array([1, 2, 2])
    cyc, tri = ppc._cyclic_rate(np.array([0.8, 0.3, 0.9]), i, j, 3)   # 0>1, 2>0, 1>2
    assert cyc == 1.0 and tri == 1.0
    cyc, _ = ppc._cyclic_rate(np.array([0.8, 0.7, 0.9]), i, j, 3)
    assert cyc == 0.0
    # 4 options, complete: scores (3, 1, 1, 1) -> C(4,3) - sum C(s,2) = 4 - 3 = 1 cyclic triad
    i4, j4 = np.triu_indices(4, 1)
    rate = np.array([1, 1, 1, 1, 0, 1], float)  # 0 beats all; 1>2, 3>1 (pair (1,3) rate 0), 2>3
    rate[[3, 4, 5]] = [1.0, 0.0, 1.0]
    cyc, tri = ppc._cyclic_rate(rate, i4, j4, 4)
    assert tri == 4 and cyc == pytest.approx(1 / 4)


# ---------------------------------------------------------------------------------------------
# posterior predictive checks
# ---------------------------------------------------------------------------------------------
@pytest.mark.slow  # a second model fit (~10 s); keeps the default suite within 10 min
def test_position_bias_shows_without_position_term_and_disappears_with_it(fit_no_position, fit_position):
    without = ppc.position_flip(fit_no_position)
    with_ = ppc.position_flip(fit_position)
    y = fit_position.data.y
    observed = np.mean(y == 1)  # no ties in these data
    assert float(without.observed) == pytest.approx(observed)
    assert float(without.p_value) < 0.01
    assert without.extra["excess"] > 0.08  # logit 1 shifts P(first wins) by ~0.2 at even worths
    assert float(with_.p_value) > 0.05
    assert abs(with_.extra["excess"]) < 2 * float(with_.predicted.std())


def test_win_rates_per_pair_match_a_direct_count(fit_position):
    chk = ppc.win_rates(fit_position)
    df = fit_position.data.frame.reset_index(drop=True)
    first = np.minimum(fit_position.data.a, fit_position.data.b)
    labels = np.asarray(fit_position.data.options).astype(str)
    lo = labels[first]
    hi = labels[np.maximum(fit_position.data.a, fit_position.data.b)]
    won = np.where(fit_position.data.a == first, df["outcome"], 1 - df["outcome"])
    direct = pd.Series(won).groupby([lo, hi]).mean()
    for (x, z), v in direct.items():
        assert float(chk.observed.sel(pair=f"{x} vs {z}")) == pytest.approx(v)
    t = chk.to_frame()
    assert {"observed", "predicted", "lower", "upper", "p_value", "count"} <= set(t.columns)
    assert t["count"].sum() == fit_position.data.n_comparisons
    assert (t["p_value"] >= 0).all() and (t["p_value"] <= 1).all()
    assert chk.plot().__class__.__name__ == "Figure"


def test_calibration_ece_matches_definition(fit_position):
    chk = ppc.calibration(fit_position, bins=5)
    p = fit_position.predict(return_draws=True).mean(("chain", "draw")).values
    s = np.asarray(fit_position.data.outcome)
    b = np.minimum((p * 5).astype(int), 4)
    ece = sum(np.sum(b == k) / len(p) * abs(s[b == k].mean() - p[b == k].mean()) for k in range(5) if np.any(b == k))
    assert float(chk.observed) == pytest.approx(ece, abs=0.01)  # p-bar from different (thinned) draws
    assert chk.extra["reliability"]["count"].sum() == len(p)
    assert chk.plot().__class__.__name__ == "Figure"


def test_ece_of_data_simulated_from_the_fit_is_within_monte_carlo_error(fit_position):
    """Data drawn from the fitted model, refitted: the ECE is the model's own noise (excess ~ 0)."""
    _, y_rep = predictive_draws(fit_position, seed=5, max_draws=50)
    frame = fit_position.data.frame.reset_index(drop=True).copy()
    frame["outcome"] = np.where(y_rep[17] == 2, 0.5, y_rep[17]).astype(float)
    data = bp.Comparisons.from_frame(frame)
    refit = _fit(bp.BradleyTerry(position=True), data, seed=6)
    chk = ppc.calibration(refit)
    assert abs(chk.extra["excess"]) < 3 * chk.extra["excess_se"]
    assert float(chk.p_value) > 0.01


def test_pooled_model_on_two_type_data_fails_user_agreement():
    sim = bp.simulate.latent_types(n_users=40, comparisons_per_user=15, n_options=6, worth_sd=1.5, seed=4)
    f = _fit(bp.BradleyTerry(), sim.comparisons(), seed=1)
    chk = ppc.user_agreement(f)
    assert float(chk.p_value) < 0.05
    per_user = chk.extra["per_user"].to_frame()
    assert len(per_user) == 40 and per_user["count"].eq(15).all()
    assert chk.plot().__class__.__name__ == "Figure"


def test_intransitivity_and_check_all(fit_position):
    checks = bp.checks.check_all(fit_position)
    assert set(checks) == {"win_rates", "calibration", "position_flip", "intransitivity"}  # no users
    assert 0 <= float(checks["intransitivity"].observed) <= 1
    table = ppc.summary(checks)
    assert list(table.index) == list(checks)


def test_check_all_draws_the_replicates_once_and_equals_the_checks_alone(fit_position, monkeypatch):
    calls = []

    def counted(*args, **kwargs):
        calls.append(kwargs.get("max_draws"))
        return predictive_draws(*args, **kwargs)

    monkeypatch.setattr(ppc, "predictive_draws", counted)
    together = bp.checks.check_all(fit_position, seed=3)
    assert sorted(calls, key=str) == [1000, 400]  # the four checks share two sets of replicates
    alone = {"win_rates": ppc.win_rates(fit_position, seed=3), "calibration": ppc.calibration(fit_position, seed=3),
             "position_flip": ppc.position_flip(fit_position, seed=3),
             "intransitivity": ppc.intransitivity(fit_position, seed=3)}
    assert len(calls) == 2 + 4  # outside check_all nothing is shared
    for name, chk in alone.items():
        pd.testing.assert_frame_equal(together[name].to_frame(), chk.to_frame())


def test_groups_and_bad_by(fit_position):
    with pytest.raises(DataError, match="not a user covariate"):
        ppc.win_rates(fit_position, by="group")
    with pytest.raises(DataError, match="user column"):
        ppc.user_agreement(fit_position)


# ---------------------------------------------------------------------------------------------
# cross-validation and comparison
# ---------------------------------------------------------------------------------------------
def test_loo_and_compare_prefer_the_position_model(fit_no_position, fit_position):
    res = crossval.loo(fit_position)
    assert res.elpd_i.sizes["comparison"] == fit_position.data.n_comparisons
    cmp = bp.compare({"no position": fit_no_position, "position": fit_position}, by="loo")
    assert cmp.best == "position"
    assert cmp.table.loc["no position", "elpd_diff"] > 2 * cmp.table.loc["no position", "dse"]
    assert cmp.plot().__class__.__name__ == "Figure"


@pytest.mark.slow  # 20 refits (~20 s); keeps the default suite within 10 min
def test_kfold_masked_refits_match_subset_refits():
    """K-fold by masking the held-out likelihood equals fitting the training subset."""
    data = bp.simulate.bradley_terry(n_options=4, n_comparisons=120, seed=8).comparisons()
    f = _fit(bp.BradleyTerry(), data, seed=1)
    res = crossval.kfold(f, by="comparisons", folds=2, seed=3)
    assert res.elpd_i.sizes["comparison"] == data.n_comparisons
    total = 0.0
    for train, test in data.kfold(by="comparison", k=2, seed=3):
        g = _fit(bp.BradleyTerry(), train, seed=2)
        p = g.predict(test, return_draws=True).values.reshape(-1, test.n_comparisons)
        y = np.asarray(test.y)
        total += np.log(np.where(y == 1, p, 1 - p).mean(0)).sum()
    # two independent sets of 500 draws: per-comparison MC error ~0.01, summed over 120
    assert res.elpd == pytest.approx(total, abs=1.0)


def test_errors():
    data = bp.simulate.bradley_terry(n_options=4, n_comparisons=60, seed=1).comparisons()
    with pytest.raises(DataError, match="at least two fits"):
        bp.compare({"one": object()})
    with pytest.raises(FitError, match="bayespref Fit"):
        ppc.calibration(object())
    with pytest.raises(ModelError, match="n_ranks"):
        bp.checks.sbc(bp.BradleyTerry(), data, n_sims=10, chains=1, draws=50, n_ranks=99)
    with pytest.raises(DataError, match="Comparisons"):
        bp.checks.sbc(bp.BradleyTerry(), data.frame)


# ---------------------------------------------------------------------------------------------
# convergence report
# ---------------------------------------------------------------------------------------------
@pytest.mark.slow  # an SVI fit (~8 s); keeps the default suite within 10 min (CI-like runs: 10:07-10:31 before)
def test_convergence_report_nuts_and_svi(fit_position):
    rep = fit_position.convergence()
    assert rep.method == "nuts"
    assert rep.stats["max R-hat"] == pytest.approx(float(fit_position.summary()["r_hat"].max()), abs=1e-6)
    assert rep.stats["divergences"] == int(fit_position.idata.sample_stats["diverging"].sum())
    assert len(rep.stats["E-BFMI per chain"]) == 2
    assert "R-hat" in str(rep) and "<table>" in rep._repr_html_()
    # a run that stops too early is called out
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        short = bp.fit(bp.BradleyTerry(), fit_position.data, method="svi", steps=30, lr=0.001, progress=False)
    srep = bp.checks.convergence(short)
    assert srep.method == "svi" and not srep.ok
    assert any("still falls" in p or "stopping rule" in p for p in srep.problems)
