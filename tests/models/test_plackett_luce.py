"""The Plackett-Luce observation model: likelihood against brute force, pairs as rankings of two,
replicates, the families on rankings, and what the model refuses."""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
from numpyro import handlers
from numpyro.infer.util import log_density

import bayespref as bp
from bayespref.data.rankings import UNRANKED, Rankings
from bayespref.errors import ModelError
from bayespref.models.likelihood import outcome_distribution
from bayespref.models.plackett_luce import PlackettLuce, ranking_log_prob


def brute_force(r, level, delta):
    """Turner et al.'s likelihood by enumerating every subset of every choice set."""
    r, level = np.asarray(r, float), np.asarray(level)
    dl = np.concatenate([[1.0], delta])
    total = 0.0
    for s in sorted(set(level[(level >= 0) & (level != UNRANKED)])):
        A = [j for j in range(len(r)) if level[j] >= s]
        C = [j for j in range(len(r)) if level[j] == s]
        num = dl[len(C) - 1] * np.exp(r[C].mean())
        Z = sum(dl[k - 1] * sum(np.exp(r[list(T)].mean()) for T in itertools.combinations(A, k))
                for k in range(1, min(len(dl), len(A)) + 1))
        total += np.log(num / Z)
    return total


LEVELS = [
    [0, 1, 2, 3, 4, 5],                                  # complete
    [0, 1, 1, 1, 2, -1],                                 # a tie of three, padding
    [0, 0, 0, 1, UNRANKED, UNRANKED],                    # top tie, then unranked
    [0, UNRANKED, UNRANKED, UNRANKED, UNRANKED, -1],     # a choice set
    [2, 2, 1, 0, 0, 0],                                  # ties in every group
    [1, 0, UNRANKED, UNRANKED, UNRANKED, UNRANKED],      # top-2
]


@pytest.mark.parametrize("level", LEVELS)
def test_log_likelihood_equals_brute_force(level):
    rng = np.random.default_rng(len(level) + sum(map(abs, level)) % 97)
    r = rng.normal(size=6)
    delta = np.exp(np.array([-0.5, -1.2]))
    got = float(ranking_log_prob(jnp.asarray(r), jnp.asarray(level), jnp.asarray(np.asarray(level) >= 0),
                                 jnp.log(jnp.asarray(delta))))
    assert got == pytest.approx(brute_force(r, level, delta), abs=1e-4)
    if max(np.bincount([v for v in level if 0 <= v < UNRANKED])) == 1:  # no ties: plain Plackett-Luce
        plain = float(ranking_log_prob(jnp.asarray(r), jnp.asarray(level), jnp.asarray(np.asarray(level) >= 0)))
        assert plain == pytest.approx(brute_force(r, level, np.array([])), abs=1e-4)


@pytest.mark.parametrize("outcome", [1, 0, 2])
def test_pair_is_davidson(outcome):
    d = jnp.linspace(-3, 3, 7)
    level = {1: [0, 1], 0: [1, 0], 2: [0, 0]}[outcome]
    got = ranking_log_prob(jnp.stack([d, jnp.zeros(7)], -1), jnp.asarray([level] * 7), jnp.ones((7, 2), bool),
                           jnp.asarray([-0.7]))
    want = outcome_distribution(d, log_tie=jnp.asarray(-0.7)).log_prob(jnp.full(7, outcome))
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_replicates_follow_the_first_choice_probabilities_and_rank_as_many_items():
    r = jnp.asarray([1.0, 0.0, -0.5, 0.3])
    n = 40_000
    shown = jnp.asarray([True, True, True, False])
    dist = PlackettLuce(jnp.broadcast_to(r, (n, 4)), jnp.broadcast_to(shown, (n, 4)), jnp.full(n, 2))
    lev = np.asarray(dist.sample(jax.random.PRNGKey(0)))
    p = np.exp(r[:3]) / np.exp(r[:3]).sum()
    se = np.sqrt(p * (1 - p) / n)
    np.testing.assert_array_less(np.abs((lev[:, :3] == 0).mean(0) - p), 4 * se)
    assert np.all(lev[:, 3] == -1)                                  # padding stays padding
    assert np.all((lev[:, :3] == UNRANKED).sum(1) == 1)             # top-2 replicates of three items
    assert np.all(np.sort(lev[:, :3], 1)[:, :2] == [0, 1])


def _pairs():
    rng = np.random.default_rng(3)
    n = 60
    a = rng.integers(0, 5, n)
    b = (a + rng.integers(1, 5, n)) % 5
    df = pd.DataFrame({"a": a, "b": b, "outcome": rng.choice([1.0, 0.0, 0.5], n), "user": rng.integers(0, 6, n),
                       "len_a": rng.normal(size=n), "len_b": rng.normal(size=n)})
    df["group"] = np.where(df["user"] % 2 == 0, "x", "y")
    return bp.Comparisons.from_frame(df, user="user", features=["len"], user_covariates=["group"],
                                     check_connected=False)


@pytest.mark.parametrize("spec", [
    bp.BradleyTerry(ties=True, features=False),
    bp.BradleyTerry(ties=True, worths="random"),
    bp.Hierarchical(ties=True, varying=["worths", "features"], worths=True),
    bp.LatentTypes(n_types=2, ties=True, worths=True),
    bp.Conditioned(condition="group", ties=True),
], ids=["bt", "bt-random-features", "hierarchical", "latent-types", "conditioned"])
def test_pairs_as_rankings_of_two_have_the_bradley_terry_density(spec):
    """The same joint log density at random parameters, so the same posterior."""
    pairs = _pairs()
    ranks = Rankings.from_comparisons(pairs)
    fn_p, fn_r = spec.bind(pairs), spec.bind(ranks)
    arr_p, arr_r = spec.arrays(pairs), spec.arrays(ranks)
    trace = handlers.trace(handlers.seed(fn_p, 7)).get_trace(arr_p)
    params = {k: v["value"] for k, v in trace.items() if v["type"] == "sample" and not v["is_observed"]}
    lp_p = jax.jit(lambda p: log_density(fn_p, (arr_p,), {}, p)[0])(params)
    lp_r = jax.jit(lambda p: log_density(fn_r, (arr_r,), {}, p)[0])(params)
    assert float(lp_r) == pytest.approx(float(lp_p), rel=1e-5, abs=1e-3)


@pytest.fixture(scope="module")
def small_fit():
    sim = bp.simulate.rankings(n_rankings=120, n_options=6, n_shown=4, top=3, n_users=12, seed=4)
    data = sim.rankings()
    return bp.fit(bp.BradleyTerry(), data, seed=1, chains=2, warmup=200, draws=200, progress=False), sim


def test_fit_on_rankings_gives_ranking_dims_predictions_and_checks(small_fit, tmp_path):
    fit, sim = small_fit
    data = fit.data
    assert fit.idata.observed_data["y"].dims == ("ranking", "slot")
    assert fit.idata.log_likelihood["y"].dims == ("chain", "draw", "ranking")
    table = fit.predict()
    assert len(table) == int((np.asarray(data.items) >= 0).sum())
    sums = table.groupby("ranking")["p_first"].sum()
    np.testing.assert_allclose(sums.to_numpy(), 1.0, atol=1e-5)     # first-choice probabilities of a ranking
    fit.add_posterior_predictive(seed=0)
    rep = fit.idata.posterior_predictive["y"].values
    ranked = (np.asarray(data.level) != UNRANKED) & (np.asarray(data.level) >= 0)
    assert np.all(((rep != UNRANKED) & (rep >= 0)).sum(-1) == ranked.sum(-1))
    checks = bp.checks.check_all(fit)
    assert set(checks) == {"first_choice", "item_positions", "ranking_agreement"}
    assert checks["first_choice"].observed.sizes["option"] == data.n_options
    path = fit.save(tmp_path / "rankings.nc")
    back = bp.load_fit(path)
    assert isinstance(back.data, Rankings) and back.data.n_rankings == data.n_rankings
    np.testing.assert_allclose(back.summary()["mean"], fit.summary()["mean"])
    loo = bp.checks.loo(fit, refit=False)
    assert loo.elpd_i.dims == ("ranking",) and np.isfinite(loo.elpd)


def test_compare_takes_rankings_fits_by_ranking(small_fit):
    fit, _ = small_fit
    cmp = bp.checks.compare({"a": fit, "b": fit}, refit=False)
    assert cmp.unit == "ranking" and cmp.pointwise.sizes["ranking"] == fit.data.n_rankings
    np.testing.assert_allclose(cmp.table["elpd_diff"].to_numpy(), 0.0, atol=1e-9)


def test_pairwise_checks_refuse_rankings(small_fit):
    fit, _ = small_fit
    with pytest.raises(bp.DataError, match="rankings"):
        bp.checks.win_rates(fit)


def test_models_refuse_what_rankings_cannot_express():
    tied = Rankings.from_long(pd.DataFrame({"ranking": [1, 1, 1, 2, 2], "option": list("abcab"),
                                            "rank": [1, 1, 2, 1, 2]}))
    plain = Rankings.from_long(pd.DataFrame({"ranking": [1, 1, 2, 2], "option": list("abba"), "rank": [1, 2, 1, 2]}))
    with pytest.raises(ModelError, match="ties=True"):
        bp.BradleyTerry().check(tied)
    with pytest.raises(ModelError, match="position"):
        bp.BradleyTerry(position=True).check(plain)
    with pytest.raises(ModelError, match="logit"):
        bp.BradleyTerry(link="probit").check(plain)
    with pytest.raises(ModelError, match="half"):
        bp.BradleyTerry(ties="half").check(tied)
    with pytest.raises(ModelError, match="laplace"):
        bp.fit(bp.Hierarchical(), plain, method="laplace")


def test_ties_of_three_have_one_prevalence_per_tie_size():
    tied = Rankings.from_long(pd.DataFrame({"ranking": [1, 1, 1, 2, 2, 2, 3, 3, 3], "option": list("abcabcabc"),
                                            "rank": [1, 1, 1, 1, 1, 2, 1, 2, 3]}))
    spec = bp.BradleyTerry(ties=True)
    arr = spec.arrays(tied)
    assert arr["tie_order"].tolist() == [2, 3]
    tr = handlers.trace(handlers.seed(spec.bind(tied), 0)).get_trace(arr)
    assert tr["log_tie"]["value"].shape == (2,)


def test_rankings_fit_labels_its_implied_pairs_and_refuses_sensitivity(small_fit):
    fit, _ = small_fit
    pairs = fit.data.explode()
    labels = bp.reward_labels(fit, data=pairs)
    assert len(labels) == pairs.n_comparisons
    direct = fit.predict(pairs)["p_a"].to_numpy()
    # exploded pairs list the better item first, so the chosen one is `a` (no position effect here)
    np.testing.assert_allclose(labels["p_chosen"].to_numpy(), direct, atol=0.02)
    with pytest.raises(bp.DataError, match="explode"):
        bp.reward_labels(fit)
    with pytest.raises(ModelError, match="pairwise"):
        bp.sensitivity.grid(fit, bp.sensitivity.preference("o000", "o001"))


@pytest.mark.slow  # a long statistical check (default-suite budget); run with -m slow
def test_sbc_runs_on_a_rankings_design():
    """SBC simulates rankings from the prior (Gumbel-max replicates) and refits them; a smoke test of
    the plumbing (the calibration itself is a slow, many-simulation study)."""
    design = bp.simulate.rankings(n_rankings=40, n_options=4, n_shown=3, seed=0).rankings()
    res = bp.checks.sbc(bp.BradleyTerry(), design, n_sims=3, chains=1, warmup=100, draws=100, n_ranks=50, bins=5)
    assert res.ranks.shape == (3, 4)
    assert np.all((res.ranks.values >= 0) & (res.ranks.values <= 50))
