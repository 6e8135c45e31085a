"""Statistical checks of the Plackett-Luce family (slow): pairs as rankings of two give the
Bradley-Terry posterior, the published beans estimates, latent types on rankings, and a ranking
check that sees missing heterogeneity."""

from __future__ import annotations

import numpy as np
import pytest

import bayespref as bp
from bayespref.data.rankings import Rankings

pytestmark = pytest.mark.slow
NUTS = dict(chains=4, warmup=1000, draws=2000, progress=False)


def test_pairs_as_rankings_give_the_bradley_terry_posterior():
    """pudding (745 pairs, 27% ties): means within 0.02, SDs within 5% (MC error of an SD from 8,000
    draws with ESS > 2,000 is about 1.5%)."""
    pairs = bp.load_dataset("pudding").comparisons()
    ranks = Rankings.from_comparisons(pairs)
    a = bp.fit(bp.BradleyTerry(ties=True), pairs, seed=3, **NUTS).summary()
    b = bp.fit(bp.BradleyTerry(ties=True), ranks, seed=4, **NUTS).summary()
    assert list(a.index) == list(b.index)
    np.testing.assert_array_less(np.abs(a["mean"] - b["mean"]), 0.02)
    np.testing.assert_array_less(np.abs(b["sd"] / a["sd"] - 1), 0.05)


def test_beans_reproduces_the_published_plackett_luce_estimates():
    """Pooled Plackett-Luce on the bundled beans rankings against the published MLE (reference
    ALS 0532-6): within 0.05 or 0.2 posterior SD (the prior, N(0, 2) on zero-sum worths, is weak
    against 3,368 rankings)."""
    ds = bp.load_dataset("beans")
    fit = bp.fit(bp.BradleyTerry(), ds.rankings(), seed=1, **NUTS)
    ref = ds.reference
    w = fit.idata.posterior["worth"]
    rel = w - w.sel(option=ref["reference_option"])
    mean, sd = rel.mean(("chain", "draw")), rel.std(("chain", "draw"))
    for option, published in ref["log_worth"].items():
        diff = abs(float(mean.sel(option=option)) - published)
        assert diff < 0.05 or diff < 0.2 * float(sd.sel(option=option)), (option, diff)


def test_latent_types_on_rankings_recover_membership():
    sim = bp.simulate.rankings(n_rankings=1500, n_options=8, n_shown=4, n_users=150, n_types=2, worth_sd=1.0,
                               seed=11)
    fit = bp.fit(bp.LatentTypes(n_types=2), sim.rankings(), seed=2, chains=2, warmup=500, draws=500,
                 progress=False)
    guess = fit.membership().values.argmax(1)
    z = sim.truth["type"]
    assert max(np.mean(guess == z), np.mean(guess != z)) >= 0.9


def test_ranking_agreement_flags_a_pooled_model_of_two_types():
    """Two user types fitted by one pooled model: users depart from it consistently (small p); the
    latent-types model of the same data passes."""
    sim = bp.simulate.rankings(n_rankings=800, n_options=6, n_shown=4, n_users=80, n_types=2, worth_sd=1.5,
                               seed=5)
    data = sim.rankings()
    kw = dict(seed=1, chains=2, warmup=300, draws=300, progress=False)
    pooled = bp.checks.ranking_agreement(bp.fit(bp.BradleyTerry(), data, **kw))
    types = bp.checks.ranking_agreement(bp.fit(bp.LatentTypes(n_types=2), data, **kw))
    assert float(pooled.p_value) < 0.01
    assert float(types.p_value) > 0.05


def test_hierarchical_rankings_recover_user_worths():
    """User-varying worths from top-3 rankings: 90% intervals of the users' worths cover the truth
    at about the nominal rate (0.8-0.97 over 40 users x 6 options)."""
    sim = bp.simulate.rankings(n_rankings=1200, n_options=6, n_shown=5, top=3, n_users=40, user_sd=0.8, seed=8)
    fit = bp.fit(bp.Hierarchical(correlated=False), sim.rankings(), seed=1, chains=2, warmup=500, draws=500,
                 progress=False)
    uw = fit.idata.posterior["user_worth"]
    lo, hi = uw.quantile(0.05, ("chain", "draw")).values, uw.quantile(0.95, ("chain", "draw")).values
    users = [int(str(u)[1:]) for u in fit.data.users]      # simulated labels "u<index>", "o<index>"
    opts = [int(str(o)[1:]) for o in fit.data.options]
    truth = sim.truth["user_worth"] - sim.truth["user_worth"].mean(1, keepdims=True)
    t = truth[np.ix_(users, opts)]
    cover = np.mean((lo <= t) & (t <= hi))
    assert 0.8 <= cover <= 0.97, cover
