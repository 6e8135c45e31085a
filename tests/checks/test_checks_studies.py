"""Statistical studies of bayespref.checks (slow; ``pytest -m slow tests/checks/test_checks_studies.py -s``).

* SBC: BradleyTerry and Hierarchical pass rank uniformity (100 simulations each, chi-square
  p > 0.01 for every parameter summarised); a model whose likelihood flips the sign fails.
* Misspecification: pooled BT on two-type data fails per-user agreement (p < 0.05) in every seed;
  the two-type model passes in at least 4 of 5.
* Model choice: leave-users-out and LOO prefer the true model (pooled / hierarchical / latent
  types) in at least 4 of 5 seeds each.
* Position: a simulated order effect (log-odds 0.6) shows without a position term (p < 0.05 in
  every seed) and disappears with it (p > 0.05 in at least 4 of 5).
* Calibration: on data simulated from the fitted model, the ECE is within Monte Carlo error of zero.
"""

from __future__ import annotations

import warnings

import jax
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest

import bayespref as bp
from bayespref.checks import ppc
from bayespref.checks._draws import predictive_draws
from bayespref.models import CustomModel
from bayespref.models.likelihood import observe

pytestmark = pytest.mark.slow
SEEDS = range(5)
NUTS = dict(chains=2, warmup=300, draws=300, progress=False)


def _fit(spec, data, seed=0):
    if seed_changed(seed):
        jax.clear_caches()  # release compiled code between seeds (a long run exhausts memory maps)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return bp.fit(spec, data, seed=seed, **NUTS)


_last_seed = [None]


def seed_changed(seed):
    changed = _last_seed[0] != seed
    _last_seed[0] = seed
    return changed


# ---------------------------------------------------------------------------------------------
# SBC
# ---------------------------------------------------------------------------------------------
def _broken_bt(data, *, n_options, predict=False, batch=None, **_):
    worth = numpyro.sample("worth", dist.ZeroSumNormal(2.0, event_shape=(n_options,)))
    d = worth[data["a"]] - worth[data["b"]]
    sign = 1.0 if data["y"] is None else -1.0  # the bug: inference disagrees with simulation
    with numpyro.plate("comparison", data["a"].shape[0]):
        observe(sign * d, data["y"], predict=predict)


def test_sbc_bradley_terry_and_hierarchical_pass_a_broken_model_fails():
    bt = bp.simulate.bradley_terry(n_options=4, n_comparisons=40, seed=1).comparisons()
    hier = bp.simulate.hierarchical(n_users=6, comparisons_per_user=10, n_options=3, n_features=0,
                                    seed=1).comparisons()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # the seeds of benchmarks/bench_sbc.py. With the cached NUTS driver (one compiled program for all
        # simulations) this run gave min p 0.145 (BT), 0.052 (Hierarchical), 1e-62 (broken); with
        # NumPyro's MCMC before it, the recorded run of RESULTS.md. A correct model fails the per-parameter
        # criterion by chance at about 1 - 0.99^P (4% for BT's 4 worths): BT with seed 11 gave
        # worth[2] p = 0.006, with seed 21 min p = 0.40 (benchmarks/RESULTS.md)
        r_bt = bp.checks.sbc(bp.BradleyTerry(), bt, n_sims=100, seed=1)
        r_h = bp.checks.sbc(bp.Hierarchical(varying=["worths"], correlated=False), hier, n_sims=100, seed=2)
        r_bad = bp.checks.sbc(CustomModel(_broken_bt, dims={"worth": ["option"]}), bt, n_sims=100, seed=3)
    for name, r in [("BradleyTerry", r_bt), ("Hierarchical", r_h), ("broken", r_bad)]:
        print(f"\nSBC {name}: {r}")
    assert r_bt.passes and len(r_bt.table) == 4
    assert r_h.passes and len(r_h.table) == 6
    assert not r_bad.passes
    assert r_bad.min_p < 1e-6


# ---------------------------------------------------------------------------------------------
# misspecification, position, calibration
# ---------------------------------------------------------------------------------------------
def test_pooled_model_on_two_type_data_is_caught_and_the_two_type_model_is_not():
    p_pooled, p_types = [], []
    for seed in SEEDS:
        data = bp.simulate.latent_types(n_users=60, comparisons_per_user=20, n_options=8, worth_sd=1.5,
                                        seed=100 + seed).comparisons()
        p_pooled.append(float(ppc.user_agreement(_fit(bp.BradleyTerry(), data, seed)).p_value))
        p_types.append(float(ppc.user_agreement(_fit(bp.LatentTypes(n_types=2), data, seed)).p_value))
    print(f"\nper-user agreement p-values: pooled {np.round(p_pooled, 3)}, two types {np.round(p_types, 3)}")
    assert all(p < 0.05 for p in p_pooled)
    assert sum(p >= 0.05 for p in p_types) >= 4


def test_position_bias_shows_without_position_term_and_disappears_with_it():
    without, with_ = [], []
    for seed in SEEDS:
        data = bp.simulate.bradley_terry(n_options=6, n_comparisons=400, position=0.6, seed=200 + seed).comparisons()
        without.append(float(ppc.position_flip(_fit(bp.BradleyTerry(), data, seed)).p_value))
        with_.append(float(ppc.position_flip(_fit(bp.BradleyTerry(position=True), data, seed)).p_value))
    print(f"\nposition-flip p-values: without position term {np.round(without, 4)}, with {np.round(with_, 3)}")
    assert all(p < 0.05 for p in without)
    assert sum(p > 0.05 for p in with_) >= 4


def test_ece_on_data_simulated_from_the_fit_is_within_monte_carlo_error():
    z = []
    for seed in SEEDS:
        data = bp.simulate.bradley_terry(n_options=8, n_comparisons=500, seed=300 + seed).comparisons()
        f = _fit(bp.BradleyTerry(), data, seed)
        _, y_rep = predictive_draws(f, seed=seed, max_draws=20)
        frame = data.frame.reset_index(drop=True).copy()
        frame["outcome"] = y_rep[7].astype(float)
        chk = ppc.calibration(_fit(bp.BradleyTerry(), bp.Comparisons.from_frame(frame), seed))
        z.append(chk.extra["excess"] / chk.extra["excess_se"])
    print(f"\nECE excess in Monte Carlo SEs: {np.round(z, 2)}")
    assert all(abs(v) < 3 for v in z)


# ---------------------------------------------------------------------------------------------
# model choice
# ---------------------------------------------------------------------------------------------
def _dataset(truth, seed):
    if truth == "pooled":
        sim = bp.simulate.bradley_terry(n_options=6, n_comparisons=600, seed=400 + seed)
        frame = sim.frame.assign(user=[f"u{i:03d}" for i in np.repeat(np.arange(40), 15)])
        return bp.Comparisons.from_frame(frame, user="user"), "worths"
    if truth == "types":
        sim = bp.simulate.latent_types(n_users=40, comparisons_per_user=15, n_options=6, worth_sd=1.5,
                                       seed=500 + seed)
        return sim.comparisons(), "worths"
    sim = bp.simulate.hierarchical(n_users=40, comparisons_per_user=15, n_options=12, n_features=2,
                                   weight_mean=[1.0, -0.5], user_sd=1.0, seed=600 + seed)
    return sim.comparisons(), "features"


def _models(kind):
    if kind == "worths":
        return {"pooled": bp.BradleyTerry(), "hierarchical": bp.Hierarchical(varying=["worths"], correlated=False),
                "types": bp.LatentTypes(n_types=2)}
    return {"pooled": bp.BradleyTerry(), "hierarchical": bp.Hierarchical(correlated=False),
            "types": bp.LatentTypes(n_types=2)}


def _prefers(cmp, truth):
    """The true model is the best, or (pooled truth) within one paired SE of the best: the simplest
    adequate model, as the one-SE rule chooses."""
    t = cmp.table
    if cmp.best == truth:
        return True
    return truth == "pooled" and t.loc["pooled", "elpd_diff"] <= t.loc["pooled", "dse"]


@pytest.mark.parametrize("truth", ["pooled", "hierarchical", "types"])
def test_leave_users_out_and_loo_prefer_the_true_model(truth):
    hits = {"users": 0, "loo": 0}
    rows = []
    for seed in SEEDS:
        data, kind = _dataset(truth, seed)
        fits = {name: _fit(spec, data, seed) for name, spec in _models(kind).items()}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            by_users = bp.compare(fits, by="users", folds=3, seed=seed)
            by_loo = bp.compare(fits, by="loo", seed=seed)
        hits["users"] += _prefers(by_users, truth)
        hits["loo"] += _prefers(by_loo, truth)
        rows.append((seed, by_users.best, by_loo.best,
                     by_users.table["elpd_diff"].round(1).to_dict(), by_loo.table["elpd_diff"].round(1).to_dict()))
    print(f"\ntruth {truth}: preferred by leave-users-out {hits['users']}/5, by LOO {hits['loo']}/5")
    for r in rows:
        print("  seed {}: best users {}, best loo {}; diffs users {}, loo {}".format(*r))
    assert hits["users"] >= 4 and hits["loo"] >= 4


def test_leave_prompts_out():
    """Leave-prompts-out scores each held-out prompt jointly; prompt effects absent, so it matches
    the per-comparison K-fold in scale, and a model with the true order effect wins."""
    frame = bp.simulate.bradley_terry(n_options=5, n_comparisons=300, position=1.0, seed=9).frame
    data = bp.Comparisons.from_frame(frame.assign(prompt=np.arange(300) % 30), prompt="prompt")
    fits = {"plain": _fit(bp.BradleyTerry(), data, 1), "position": _fit(bp.BradleyTerry(position=True), data, 1)}
    cmp = bp.compare(fits, by="prompts", folds=3)
    print(f"\nleave-prompts-out: {cmp}")
    assert cmp.unit == "prompt" and cmp.pointwise.sizes["prompt"] == 30
    assert cmp.best == "position" and cmp.table.loc["plain", "z"] > 2
