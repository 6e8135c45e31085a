"""Choosing the number of latent types: compare_k (LOO / leave-users-out CV) and sparse_k.

Data: 120 users x 30 judgements over 12 options, types with independent N(0, 1.5^2) worths
(well separated). All datasets share these sizes so that the JIT compilations of a K are reused
across tests. The default suite runs one seed per check; ``-m slow`` runs the 4-of-5-seeds check.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import bayespref as bp
from bayespref.checks.selection import KSelection, SparseK, _bootstrap_picks, _rule, compare_k, sparse_k
from bayespref.errors import DataError, ModelError

NUTS = dict(method="nuts", chains=2, warmup=300, draws=300)
SVI = dict(method="svi")


def _data(n_types, seed):
    sim = bp.simulate.latent_types(n_users=120, comparisons_per_user=30, n_options=12, n_types=n_types,
                                   worth_sd=1.5, seed=seed)
    return sim.comparisons()


# ---------------------------------------------------------------------------------------------
# the rule and the certainty measures, on synthetic per-user elpds (no fitting)
# ---------------------------------------------------------------------------------------------
def _centred(rng, sd, n):
    x = rng.normal(0, sd, n)
    return x - x.mean()


def test_one_se_rule_prefers_fewest_types_within_one_se():
    rng = np.random.default_rng(0)
    base = rng.normal(-15, 3, 200)
    e = np.stack([base - 1.0 + _centred(rng, 0.5, 200),   # K=1: worse by 200 (SE ~7)
                  base,                                   # K=2
                  base + 0.005 + _centred(rng, 0.2, 200)])  # K=3: best by 1.0, SE ~2.8: within 1 SE
    assert int(e.sum(1).argmax()) == 2
    assert _rule(e) == 1
    picks = _bootstrap_picks(e, n_boot=400)
    # the difference is 0.35 SE, so a resample exceeds 1 SE about a quarter of the time
    assert 0.6 < np.mean(picks == 1) < 0.9 and np.all(picks != 0)
    # equal weights in the bootstrap form give the plain rule
    assert _rule(e[None], weights=np.full((1, 200), 1 / 200))[0] == 1


def test_one_se_rule_keeps_a_clearly_better_larger_k():
    rng = np.random.default_rng(1)
    base = rng.normal(-15, 3, 200)
    e = np.stack([base - 1.0, base, base + 0.3 + _centred(rng, 0.2, 200)])  # K=3 better by 60, SE ~2.8
    assert _rule(e) == 2
    assert np.all(_bootstrap_picks(e, n_boot=200) == 2)


# ---------------------------------------------------------------------------------------------
# compare_k
# ---------------------------------------------------------------------------------------------
def _check_table(sel: KSelection, k_max: int):
    t = sel.table
    assert isinstance(sel, KSelection) and isinstance(t, pd.DataFrame)
    assert list(t.index) == list(range(1, k_max + 1)) and t.index.name == "n_types"
    for col in ("elpd", "se", "elpd_diff", "dse", "z", "p_worse", "n_high_k", "weight", "weight_bb",
                "p_select", "within_1se", "chosen", "fit_warnings"):
        assert col in t
    assert t["chosen"].sum() == 1 and int(t.index[t["chosen"]][0]) == sel.k
    assert np.isclose(t["weight"].sum(), 1, atol=1e-6)
    assert np.isclose(t["weight_bb"].sum(), 1, atol=1e-6)
    assert np.isclose(t["p_select"].sum(), 1)
    assert (t["elpd_diff"] >= -1e-9).all() and t["elpd_diff"].min() == 0
    assert t.loc[sel.k, "within_1se"]
    assert all(not t.loc[k, "within_1se"] for k in t.index if k < sel.k)
    assert sel.pointwise.dims == ("n_types", "user") and sel.pointwise.sizes["n_types"] == k_max
    np.testing.assert_allclose(sel.pointwise.sum("user").values, t["elpd"].values, rtol=1e-9)
    assert f"K = {sel.k} chosen" in sel.message and "Bayesian-bootstrap" in sel.message


@pytest.mark.slow  # a long statistical check (default-suite budget); run with -m slow
def test_compare_k_loo_picks_two_types():
    sel = compare_k(_data(2, seed=1), k_max=3, by="loo", seed=0, **NUTS)
    _check_table(sel, 3)
    assert sel.k == 2, sel
    assert sel.table.loc[1, "z"] > 3                 # one type is clearly worse
    assert sel.table.loc[2, "p_select"] > 0.8
    assert set(sel.fits) == {1, 2, 3}
    assert "user_ll" in sel.fits[2].idata.log_likelihood
    assert "clear" in sel.message


@pytest.mark.slow  # statistical check (30-60 s); keeps the default suite under ~15 min
def test_compare_k_loo_picks_three_types():
    sel = compare_k(_data(3, seed=1), k_max=4, by="loo", seed=0, **NUTS)
    _check_table(sel, 4)
    assert sel.k == 3, sel
    assert sel.table.loc[2, "z"] > 3


@pytest.mark.slow  # statistical check (30-60 s); keeps the default suite under ~15 min
def test_compare_k_leave_users_out_picks_two_types():
    data = _data(2, seed=2)
    sel = compare_k(data, k_max=3, by="users", folds=3, seed=0, **SVI)
    _check_table(sel, 3)
    assert sel.k == 2, sel
    assert sel.fits == {} and sel.by == "users"
    assert (sel.table["n_high_k"] == 0).all()
    # every user is scored once, by the fold that held it out
    assert sel.pointwise.sizes["user"] == data.n_users
    assert np.all(np.isfinite(sel.pointwise.values)) and np.all(sel.pointwise.values < 0)


@pytest.mark.slow
@pytest.mark.parametrize("by", ["loo", "users"])
@pytest.mark.parametrize("true_k", [2, 3])
def test_compare_k_picks_true_k_in_four_of_five_seeds(true_k, by):
    kw = NUTS if by == "loo" else SVI
    sels = [compare_k(_data(true_k, seed=100 + s), k_max=4, by=by, folds=3, seed=s, **kw) for s in range(5)]
    picks = [s.k for s in sels]
    print(f"true K = {true_k}, by = {by}: picks {picks}, "
          f"p_select of the pick {[round(float(s.table.loc[s.k, 'p_select']), 2) for s in sels]}")
    assert sum(k == true_k for k in picks) >= 4, picks


# ---------------------------------------------------------------------------------------------
# sparse_k
# ---------------------------------------------------------------------------------------------
@pytest.mark.slow  # statistical check (30-60 s); keeps the default suite under ~15 min
def test_sparse_k_empties_unneeded_types():
    res = sparse_k(_data(2, seed=1), k_max=4, seed=0, **NUTS)
    assert isinstance(res, SparseK)
    assert res.n_types == 2, res
    t = res.table
    assert list(t.index) == [0, 1, 2, 3] and t["non_empty"].sum() == 2
    assert t["share"].iloc[2:].max() < 0.05
    assert t["n_users"].iloc[:2].sum() >= 115
    d = res.distribution
    assert list(d.index) == list(range(5)) and np.isclose(d.sum(), 1)
    assert d.loc[2] > 0.5
    assert "2 of 4 types are non-empty" in res.message
    assert res.fit.model.concentration == 0.05 and res.fit.model.n_types == 4


# ---------------------------------------------------------------------------------------------
# bad arguments (all raise before any fitting)
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def small():
    return bp.simulate.latent_types(n_users=10, comparisons_per_user=5, n_options=5, seed=0).comparisons()


@pytest.mark.parametrize("kwargs, match", [
    (dict(k_max=1), "k_max"),
    (dict(k_max=8), "k_max"),
    (dict(k_max=2.5), "k_max"),
    (dict(k_max=True), "k_max"),
    (dict(by="comparison"), "by="),
    (dict(method="mcmc"), "method"),
    (dict(by="users", folds=1), "folds"),
    (dict(by="users", folds=11), "folds"),
    (dict(model_kwargs={"n_types": 2}), "n_types"),
    (dict(model_kwargs=["covariates"]), "model_kwargs"),
    (dict(model_kwargs={"n_type": 2}), "model_kwargs"),
])
def test_compare_k_bad_arguments(small, kwargs, match):
    with pytest.raises(ModelError, match=match):
        compare_k(small, **kwargs)


def test_compare_k_bad_data():
    with pytest.raises(DataError, match="Comparisons"):
        compare_k(pd.DataFrame({"a": [1], "b": [2], "outcome": [1]}))
    no_users = bp.Comparisons.from_frame(pd.DataFrame({"a": [1, 2, 3], "b": [2, 3, 1], "outcome": [1, 0, 1]}))
    with pytest.raises(DataError, match="two users"):
        compare_k(no_users)


@pytest.mark.parametrize("kwargs, match", [
    (dict(concentration=1.0), "concentration"),
    (dict(concentration=0.0), "concentration"),
    (dict(threshold=0.0), "threshold"),
    (dict(threshold=1.5), "threshold"),
    (dict(k_max=1), "k_max"),
    (dict(model_kwargs={"covariates": ["group"]}), "covariates"),
    (dict(model_kwargs={"concentration": 0.1}), "concentration"),
    (dict(method="hmc"), "method"),
])
def test_sparse_k_bad_arguments(small, kwargs, match):
    with pytest.raises(ModelError, match=match):
        sparse_k(small, **kwargs)
