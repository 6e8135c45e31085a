"""Heterogeneity analyses: group effects and contrasts, variance shares, membership by group,
rank reversal, pooled versus groups, their plots and errors.

Statistical checks use fixed seeds and tolerances of a few posterior SDs.
"""

from __future__ import annotations

import math
import warnings

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import xarray as xr  # noqa: E402

import bayespref as bp  # noqa: E402
from bayespref import heterogeneity as het  # noqa: E402

QUICK = dict(chains=2, warmup=300, draws=300, progress=False)
MU = np.array([1.0, 0.5])
BETA = np.array([-2.0, 0.0])  # group B reverses feature x0, leaves x1 alone


def _quiet_fit(spec, data, seed):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bp.ConvergenceWarning)
        return bp.fit(spec, data, seed=seed, **QUICK)


@pytest.fixture(scope="module")
def hier():
    """Two groups of 20 users; weight of x0 is +1 in group A and -1 in group B; a numeric noise covariate."""
    sim = bp.simulate.hierarchical(n_users=40, comparisons_per_user=25, n_options=10, n_features=2,
                                   weight_mean=MU, user_sd=0.4, group_effect=BETA, seed=1)
    users = sim.user_table.assign(age=np.random.default_rng(0).integers(18, 70, 40))
    fit = _quiet_fit(bp.Hierarchical(correlated=False), sim.comparisons(user_covariates=users), seed=1)
    return sim, fit, het.group_effects(fit, "group")


@pytest.fixture(scope="module")
def types(latent_types_fit):
    """Two latent types; P(type 1) is 0.2 in group A and 0.8 in group B (120 users x 20 comparisons of
    8 options, LatentTypes(n_types=2) with QUICK chains: the session's fit, tests/conftest.py)."""
    sim, fit = latent_types_fit
    return sim, fit, het.membership_by_group(fit, "group")


def _true_utilities(sim):
    """True utilities of the options in groups A and B, and pooled (equal group sizes), centred."""
    X = sim.option_table.to_numpy()
    u = np.stack([X @ MU, X @ (MU + BETA), X @ (MU + BETA / 2)])
    return u - u.mean(1, keepdims=True)


def _sd_check(table, truth, k=3.0):
    z = np.abs(table["mean"].to_numpy() - truth) / table["sd"].to_numpy()
    assert np.all(z < k), (table, truth)


# -- group effects and contrasts ------------------------------------------------------------------
def test_group_effects_layout_and_gauge(hier):
    _, fit, eff = hier
    assert set(eff.data_vars) == {"weight", "utility"}
    assert eff["weight"].dims == ("chain", "draw", "group", "feature")
    assert eff["utility"].dims == ("chain", "draw", "group", "option")
    assert list(eff["group"].values) == ["A", "B"] and list(eff["n_users"].values) == [20, 20]
    assert eff.attrs["method"] == "design" and eff.attrs["by"] == "group"
    np.testing.assert_allclose(eff["utility"].sum("option").values, 0.0, atol=1e-9)
    t = het.summary(eff)
    assert t.index.names == ["variable", "group", "term"]
    assert {"mean", "sd", "lower", "upper"} == set(t.columns)
    assert (t["lower"] <= t["mean"]).all() and (t["mean"] <= t["upper"]).all()
    # relative to a reference option instead of centred
    ref = het.group_effects(fit, "group", reference="o000")
    np.testing.assert_allclose(ref["utility"].sel(option="o000").values, 0.0, atol=1e-9)


def test_group_contrast_recovers_simulated_group_effect(hier):
    sim, fit, eff = hier
    c = het.contrast(eff, "B", "A")
    w = c.loc["weight"]
    _sd_check(w, BETA)
    assert w.loc["x0", "upper"] < 0 and w.loc["x0", "p_positive"] < 0.01
    assert w.loc["x1", "lower"] < 0 < w.loc["x1", "upper"]
    # the design contrast of one categorical covariate is exactly its coefficient
    draws = het.contrast(eff["weight"], "B", "A", draws=True)
    coef = fit.idata.posterior["group_weight"].sel(covariate="group[B]")
    np.testing.assert_allclose(draws.values, coef.transpose("chain", "draw", "feature").values, rtol=1e-5, atol=1e-6)
    # averaging the users' posterior effects tells the same story
    users = het.contrast(het.group_effects(fit, "group", method="users"), "B", "A").loc["weight"]
    _sd_check(users, BETA)
    # "pooled" is the user-weighted average: with equal groups, B - pooled = (B - A) / 2
    half = het.contrast(eff, "B", "pooled").loc["weight"]
    np.testing.assert_allclose(half["mean"], w["mean"] / 2, rtol=1e-6)


def test_pooled_equals_population_level_of_the_fit(topmodel_fit):
    eff = het.group_effects(topmodel_fit, "q2")
    assert set(eff.data_vars) == {"worth"}
    post = topmodel_fit.idata.posterior
    cov = topmodel_fit.data.covariates.mean(0)  # every user has comparisons
    names = list(topmodel_fit.data.covariate_names)
    cbar = np.array([cov[names.index(c)] for c in post["covariate"].values])
    pop = post["worth"] + (post["group_worth"] * cbar[:, None]).sum("covariate")
    pop = pop - pop.mean("option")
    np.testing.assert_allclose(het.pooled(eff)["worth"].transpose("chain", "draw", "option").values,
                               pop.transpose("chain", "draw", "option").values, atol=1e-5)
    # and its posterior means match Fit.worths() up to the centring
    w = topmodel_fit.worths()["mean"]
    np.testing.assert_allclose(het.summary(het.pooled(eff)["worth"])["mean"], w - w.mean(), atol=0.05)
    one = het.group_effects(topmodel_fit, "gender", levels=["male"])
    assert list(one["group"].values) == ["male"]


def test_numeric_covariate_needs_levels_or_bins(hier):
    _, fit, _ = hier
    with pytest.raises(bp.DataError, match="numeric.*levels="):
        het.group_effects(fit, "age")
    at = het.group_effects(fit, "age", levels=[25, 60])
    assert list(at["group"].values) == ["25", "60"]
    # design levels differ by 35 years times the age coefficient
    diff = het.contrast(at["weight"], "60", "25", draws=True)
    coef = fit.idata.posterior["group_weight"].sel(covariate="age").transpose("chain", "draw", "feature")
    np.testing.assert_allclose(diff.values, 35 * coef.values, rtol=1e-4, atol=1e-5)
    binned = het.group_effects(fit, "age", bins=[0, 45, 100], method="users")
    assert binned["n_users"].sum() == 40 and len(binned["group"]) == 2


# -- variance shares ------------------------------------------------------------------------------
def test_variance_shares_sum_to_one_and_follow_the_group_effect(hier, topmodel_fit):
    sim, fit, _ = hier
    vs = het.variance_shares(fit)
    assert vs["share"].dims == ("chain", "draw", "effect", "source")
    assert list(vs["effect"].values) == ["weight[x0]", "weight[x1]", "overall"]
    np.testing.assert_allclose(vs["share"].sum("source").values, 1.0, atol=1e-9)
    np.testing.assert_allclose(vs["variance"].sel(source="residual").values, math.pi ** 2 / 3)
    t = het.summary(vs["share"])
    # x0 carries a group effect of -2, x1 none (same user SD): a larger between-group share for x0
    assert t.loc[("weight[x0]", "between_groups"), "lower"] > t.loc[("weight[x1]", "between_groups"), "upper"]
    # truth for x0: Var_u(beta g_u) * s^2 = beta^2 / 4 * mean((x_a - x_b)^2)
    data = fit.data
    s2 = np.mean((data.xa[:, 0] - data.xb[:, 0]) ** 2)
    v = het.summary(vs["variance"]).loc[("weight[x0]", "between_groups")]
    assert abs(v["mean"] - BETA[0] ** 2 / 4 * s2) < 3 * v["sd"], v
    assert t.loc[("overall", "between_groups"), "lower"] > 0.05
    # a worths model with LKJ-free SDs on real data: shares still sum to one
    top = het.variance_shares(topmodel_fit)
    np.testing.assert_allclose(top["share"].sum("source").values, 1.0, atol=1e-9)
    assert top.sizes["effect"] == topmodel_fit.data.n_options + 1


def test_variance_shares_use_the_correlation_of_user_effects(hier):
    """Within-group variance of a comparison is tr(Sigma M): correlated effects add 2 rho tau_0 tau_1 M_01."""
    _, fit, _ = hier
    post = fit.idata.posterior.dataset
    rho = 0.6
    L = np.array([[1.0, 0.0], [rho, np.sqrt(1 - rho ** 2)]])
    shape = (post.sizes["chain"], post.sizes["draw"], 2, 2)
    corr = xr.DataArray(np.broadcast_to(L, shape), dims=("chain", "draw", "effect", "effect_bis"))
    idata = fit.idata.copy()
    idata["posterior"] = xr.DataTree(post.assign(corr_chol=corr))
    correlated = het.variance_shares(bp.Fit(idata, fit.model, fit.data, fit.info))["variance"]
    independent = het.variance_shares(fit)["variance"]
    dx = fit.data.xa - fit.data.xb
    tau = post["sd_weight"].transpose("chain", "draw", "feature").values
    extra = 2 * rho * tau[..., 0] * tau[..., 1] * np.mean(dx[:, 0] * dx[:, 1])
    within = ("overall", "within_groups")
    np.testing.assert_allclose(correlated.sel(effect=within[0], source=within[1]).values,
                               independent.sel(effect=within[0], source=within[1]).values + extra, rtol=1e-6)
    per_effect = dict(effect=["weight[x0]", "weight[x1]"])
    np.testing.assert_allclose(correlated.sel(**per_effect).values, independent.sel(**per_effect).values)


# -- latent types ---------------------------------------------------------------------------------
def _matched_type(fit, sim):
    """Fitted label of the true type 1 (closest worths)."""
    est = fit.idata.posterior["worth"].mean(("chain", "draw")).values
    return int(np.argmin(((est - sim.truth["worth"][1]) ** 2).sum(1)))


def test_membership_by_group_shows_the_covariate_shift(types):
    sim, fit, mg = types
    assert mg.dims == ("chain", "draw", "group", "type")
    np.testing.assert_allclose(mg.sum("type").values, 1.0, atol=1e-6)
    k = _matched_type(fit, sim)
    t = het.summary(mg).xs(k, level="type")
    groups = np.where(np.arange(120) % 2 == 1, "B", "A")
    empirical = np.array([np.mean(sim.truth["type"][groups == g] == 1) for g in ("A", "B")])
    # posterior mean membership of the users in each group matches the share of true type-1 users
    assert np.all(np.abs(t["mean"].to_numpy() - empirical) < 3 * t["sd"].to_numpy() + 0.05), (t, empirical)
    shift = het.contrast(mg.to_dataset(), "B", "A").loc[("membership", k)]
    assert shift["lower"] > 0.4 and shift["p_positive"] == 1.0


def test_latent_types_group_effects_are_membership_mixtures(types):
    sim, fit, mg = types
    eff = het.group_effects(fit, "group")
    assert set(eff.data_vars) == {"worth"} and eff.attrs["method"] == "users"
    mix = (mg.drop_vars("n_users") * fit.idata.posterior["worth"]).sum("type")
    np.testing.assert_allclose(eff["worth"].values, mix.transpose(*eff["worth"].dims).values, atol=1e-5)
    mean = eff["worth"].mean(("chain", "draw"))
    corr = [np.corrcoef(mean.sel(group=g).values, sim.truth["worth"][1])[0, 1] for g in ("A", "B")]
    assert corr[1] > corr[0] + 0.3  # group B, mostly type 1, prefers what type 1 prefers
    with pytest.raises(bp.ModelError, match="design"):
        het.group_effects(fit, "group", method="design")


# -- rank reversal and pooled versus groups --------------------------------------------------------
def test_rank_reversal_near_one_for_a_reversal_and_near_zero_for_agreement(hier):
    sim, _, eff = hier
    u = _true_utilities(sim)
    dA = u[0][:, None] - u[0][None, :]
    dB = u[1][:, None] - u[1][None, :]
    margin = np.minimum(np.abs(dA), np.abs(dB))
    rev = np.unravel_index(np.argmax(np.where(dA * dB < 0, margin, -1)), margin.shape)
    agree = np.unravel_index(np.argmax(np.where(dA * dB > 0, margin, -1)), margin.shape)
    rr = het.rank_reversal(eff)
    assert rr.dims == ("group_a", "group_b", "option_a", "option_b")
    p = rr.sel(group_a="A", group_b="B").values
    np.testing.assert_allclose(p, p.T)
    assert p[rev] > 0.95 and p[agree] < 0.05, (p[rev], p[agree])
    m = het.reversal_matrix(rr)
    assert m.loc["A", "B"] > 0.95 and m.loc["A", "A"] == 0
    tab = het.reversal_table(rr, min_prob=0.5)
    assert tab["p_reversal"].is_monotonic_decreasing and len(tab) >= 1
    first = tab.iloc[0]
    assert abs(first["p_a_prefers"] - first["p_b_prefers"]) > 0.9


def test_pooled_preference_can_serve_no_group(hier):
    sim, _, eff = hier
    u = _true_utilities(sim)
    tops = u.argmax(1)
    assert tops[2] not in tops[:2]  # truth: the averaged favourite is neither group's favourite
    pv = het.pooled_vs_groups(eff)
    assert list(pv["group"].values) == ["A", "B", "pooled"]
    assert pv["reward"].dims == ("chain", "draw", "group", "option")
    assert float(pv["p_top_serves_no_group"]) > 0.5 and pv.attrs["average_serves_no_group"]
    assert (pv["p_same_top"].sel(group=["A", "B"]) < 0.5).all()
    np.testing.assert_allclose(pv["p_top"].sum("option").values, 1.0)
    assert float(pv["p_top"].sel(group="pooled").isel(option=tops[2])) > 0.5
    tau = pv["kendall_tau"]
    assert float(tau.min()) >= -1 and float(tau.sel(group="pooled").min()) == 1.0


# -- plots ----------------------------------------------------------------------------------------
def test_plots_return_figures(hier, types):
    _, _, eff = hier
    _, _, mg = types
    rr = het.rank_reversal(eff)
    figs = [het.plot_group_effects(eff), het.plot_group_effects(eff, var="weight", pooled=False),
            het.plot_membership_by_group(mg), het.plot_rank_reversal(rr),
            het.plot_rank_reversal(het.reversal_matrix(rr))]
    for fig in figs:
        assert isinstance(fig, matplotlib.figure.Figure) and fig.axes
        plt.close(fig)


# -- errors ---------------------------------------------------------------------------------------
def test_errors_name_the_problem(hier, types):
    _, hfit, eff = hier
    _, tfit, _ = types
    with pytest.raises(bp.DataError, match=r"available.*'group'.*'age'"):
        het.group_effects(hfit, "gender")
    with pytest.raises(bp.DataError, match="levels"):
        het.group_effects(hfit, "group", levels=["C"])
    with pytest.raises(bp.DataError, match="bins= is for numeric"):
        het.group_effects(hfit, "group", bins=[0, 1])
    with pytest.raises(bp.ModelError, match="LatentTypes fit; this fit is Hierarchical"):
        het.membership_by_group(hfit, "group")
    with pytest.raises(bp.ModelError, match="Hierarchical fit; this fit is LatentTypes"):
        het.variance_shares(tfit)
    pooled_only = bp.Fit(hfit.idata, bp.BradleyTerry(), hfit.data, hfit.info)
    with pytest.raises(bp.ModelError, match="BradleyTerry"):
        het.group_effects(pooled_only, "group")
    with pytest.raises(bp.DataError, match="groups"):
        het.contrast(eff, "A", "Z")
    with pytest.raises(bp.DataError, match="name the user covariate"):
        het.rank_reversal(hfit)
    with pytest.raises(bp.DataError, match="unknown"):
        het.rank_reversal(eff, options=["o000", "nope"])
