"""LatentTypes: recovery of hidden types, membership (with covariates, few-shot) and label switching."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import bayespref as bp
from bayespref.models.mixture import separation

SETTINGS = dict(chains=4, warmup=400, draws=400, progress=False)


@pytest.fixture(scope="module")
def hidden():
    sim = bp.simulate.hidden_context(n_users=200, comparisons_per_user=30, seed=1)
    data = sim.comparisons()
    types = bp.fit(bp.LatentTypes(n_types=2), data, seed=1, **SETTINGS)
    with warnings.catch_warnings():  # the pooled model is misspecified here; its mixing is not under test
        warnings.simplefilter("ignore", bp.ConvergenceWarning)
        pooled = bp.fit(bp.BradleyTerry(), data, seed=1, **SETTINGS)
    return sim, data, types, pooled


def _match_types(fit, truth_worth):
    """Fitted type label for each true type (closest worths)."""
    est = fit.idata.posterior["worth"].mean(("chain", "draw")).values
    return np.array([np.argmin(((est - w) ** 2).sum(1)) for w in truth_worth])


@pytest.mark.slow  # the 4-chain recovery fit shared by these (~25 s); keeps the default suite within 10 min
def test_two_types_recover_both_reward_functions(hidden):
    sim, _, fit, _ = hidden
    label = _match_types(fit, sim.truth["worth"])
    assert sorted(label) == [0, 1]
    w = fit.idata.posterior["worth"]
    lo = w.quantile(0.05, ("chain", "draw")).values[label]
    hi = w.quantile(0.95, ("chain", "draw")).values[label]
    coverage = np.mean((lo <= sim.truth["worth"]) & (sim.truth["worth"] <= hi))
    assert coverage >= 0.85, coverage
    # chains agree after relabelling (label switching shows as R-hat 1.5 and more); with 4 x 400
    # draws the largest R-hat over ~50 parameters fluctuates around 1.01 by Monte Carlo error alone
    assert fit.diagnostics()["max_rhat"] < 1.02


@pytest.mark.slow  # the 4-chain recovery fit shared by these (~25 s); keeps the default suite within 10 min
def test_users_assigned_to_their_true_type(hidden):
    sim, _, fit, _ = hidden
    label = _match_types(fit, sim.truth["worth"])
    m = fit.membership()
    assert m.dims == ("user", "type") and m.sizes["user"] == 200
    assigned = m.argmax("type").values
    assert np.mean(assigned == label[sim.truth["type"]]) >= 0.9
    sep = separation(m, fit.idata)
    assert sep["separated"].all()


@pytest.mark.slow  # the 4-chain recovery fit shared by these (~25 s); keeps the default suite within 10 min
def test_pooled_model_averages_and_serves_the_minority_badly(hidden):
    sim, data, types, pooled = hidden
    truth = sim.truth["worth"]
    share = sim.truth["shares"]
    average = share @ truth
    pooled_worth = pooled.idata.posterior["worth"].mean(("chain", "draw")).values
    corr = lambda x, y: pd.Series(x).corr(pd.Series(y), method="spearman")
    # pooled BT follows the share-weighted average reward, not the minority's reward
    assert corr(pooled_worth, average) > 0.9 > corr(pooled_worth, truth[1]) + 0.3
    # expected accuracy on fresh comparisons of minority users, known outcome probabilities
    rng = np.random.default_rng(0)
    minority = np.flatnonzero(sim.truth["type"] == 1)
    users = np.repeat(minority, 20)
    a = rng.integers(0, truth.shape[1], users.size)
    b = (a + rng.integers(1, truth.shape[1], users.size)) % truth.shape[1]
    p_true = 1 / (1 + np.exp(-(truth[1, a] - truth[1, b])))
    opts = np.asarray(data.options)
    queries = pd.DataFrame({"a": opts[a], "b": opts[b], "user": np.asarray(data.users)[users]})

    def accuracy(fit):
        p = fit.predict(queries)["p_a"].to_numpy()
        return np.mean(np.where(p > 0.5, p_true, 1 - p_true))

    assert accuracy(types) >= accuracy(pooled) + 0.10


@pytest.mark.slow  # statistical check (about 30 s); keeps the default suite within 10 min
def test_membership_depends_on_covariate():
    sim = bp.simulate.latent_types(n_users=300, comparisons_per_user=20, n_options=12, covariate_shift=(0.2, 0.8),
                                   worth_sd=1.5, seed=4)
    fit = bp.fit(bp.LatentTypes(n_types=2), sim.comparisons(), seed=2, **SETTINGS)
    label = _match_types(fit, sim.truth["worth"])
    coef = fit.idata.posterior["type_coef"].sel(covariate="group[B]")
    diff = (coef.isel(type=label[1]) - coef.isel(type=label[0])).values.ravel()
    lo, hi = np.quantile(diff, [0.05, 0.95])
    assert lo > 0 and lo <= sim.truth["type_coef"] <= hi, (lo, hi, sim.truth["type_coef"])


@pytest.mark.slow  # the 4-chain recovery fit shared by these (~25 s); keeps the default suite within 10 min
def test_few_shot_new_users_from_ten_judgements(hidden):
    sim, data, fit, _ = hidden
    label = _match_types(fit, sim.truth["worth"])
    new = bp.simulate.latent_types(n_users=60, comparisons_per_user=10, worths=sim.truth["worth"],
                                   shares=[0.5, 0.5], seed=77)
    frame = new.frame.assign(user=lambda f: "new-" + f["user"])
    frame["a"] = np.asarray(data.options)[pd.Index(sorted(set(new.frame.a) | set(new.frame.b))).get_indexer(frame["a"])]
    frame["b"] = np.asarray(data.options)[pd.Index(sorted(set(new.frame.a) | set(new.frame.b))).get_indexer(frame["b"])]
    membership, _ = fit.few_shot(frame)
    true_label = label[new.truth["type"]]
    p_true = membership.values[np.arange(60), true_label]
    assert membership.sizes["user"] == 60
    assert p_true.mean() >= 0.8, p_true.mean()
    # predictions for the same users follow their inferred type
    q = frame.groupby("user").head(1).drop(columns="outcome")
    _, pred = fit.few_shot(frame, queries=q)
    assert pred["p_a"].between(0, 1).all() and len(pred) == 60


@pytest.mark.slow  # statistical check (30-60 s); keeps the default suite under ~15 min
def test_label_switching_handled_for_three_types():
    worths = np.array([[2.0, 1.0, 0.0, -1.0, -2.0, 0.0], [-2.0, -1.0, 0.0, 1.0, 2.0, 0.0],
                       [0.0, 0.0, 2.5, 0.0, 0.0, -2.5]]) * 1.2
    sim = bp.simulate.latent_types(n_users=150, comparisons_per_user=25, worths=worths, seed=9)
    fit = bp.fit(bp.LatentTypes(n_types=3), sim.comparisons(), seed=3, chains=4, warmup=500, draws=1000,
                 progress=False)
    rhat = fit.summary(var_names=["worth", "type_share"])["r_hat"].astype(float)
    assert rhat.max() < 1.01, rhat.sort_values().tail()
    assert sorted(_match_types(fit, sim.truth["worth"] - sim.truth["worth"].mean(1, keepdims=True))) == [0, 1, 2]


@pytest.mark.slow  # the 4-chain recovery fit shared by these (~25 s); keeps the default suite within 10 min
def test_latent_types_save_load_and_svi(hidden, tmp_path):
    _, data, fit, _ = hidden
    loaded = bp.load_fit(fit.save(tmp_path / "lt.nc"))
    np.testing.assert_allclose(loaded.membership().values, fit.membership().values)
    svi = bp.fit(bp.LatentTypes(n_types=2), data, method="svi", seed=1, num_samples=300, progress=False)
    assert svi.membership().sizes["type"] == 2
    agree = np.mean(svi.membership().argmax("type").values == fit.membership().argmax("type").values)
    assert max(agree, 1 - agree) > 0.9


def test_latent_types_errors(baseball_fit):
    data = bp.load_dataset("citations").comparisons()
    with pytest.raises(bp.ModelError, match="user"):
        bp.fit(bp.LatentTypes(n_types=2), data, progress=False)
    with pytest.raises(bp.ModelError, match="n_types"):
        bp.LatentTypes(n_types=0)
    # any BradleyTerry fit: the session's baseball fit (tests/conftest.py) rather than a new compilation
    assert baseball_fit.model.family == "BradleyTerry"
    with pytest.raises(bp.ModelError, match="LatentTypes"):
        baseball_fit.membership()


@pytest.mark.slow  # statistical check (~35 s); keeps the default suite under 10 min
def test_superfluous_type_triggers_a_separation_warning():
    """One true type fitted with K = 2: the second type is emptied or overlaps the first, and the fit says so."""
    sim = bp.simulate.latent_types(n_users=60, comparisons_per_user=15, n_options=8, n_types=1, seed=12)
    with pytest.warns(bp.SeparationWarning, match="nearly empty|not well separated"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", bp.ConvergenceWarning)
            bp.fit(bp.LatentTypes(n_types=2), sim.comparisons(), seed=1, chains=2, warmup=200, draws=200,
                   progress=False)
