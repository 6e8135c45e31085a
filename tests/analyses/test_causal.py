"""The causal layer: simulators, the Conditioned model, erasure, estimands and identifiability.

Fast checks only; the statistical studies (Tables 1 and 2 analogues, coverage over seeds) are in
tests/analyses/test_causal_studies.py (marked slow).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import bayespref as bp
from bayespref import causal
from bayespref.errors import DataError, ModelError

QUICK = {"chains": 2, "warmup": 250, "draws": 250, "progress": False}


def _sigmoid(v):
    return 1 / (1 + np.exp(-v))


# -- simulators -------------------------------------------------------------------------------------

def test_simulators_are_seeded_and_split():
    a = bp.simulate.latent_positivity(rho=0.6, n_train=300, n_test=200, seed=3)
    b = bp.simulate.latent_positivity(rho=0.6, n_train=300, n_test=200, seed=3)
    pd.testing.assert_frame_equal(a.frame, b.frame)
    parts = a.split()
    assert {k: v.n_comparisons for k, v in parts.items()} == {"train": 300, "test_id": 200, "test_ood": 200}
    ood = a.frame[a.splits["test_ood"]]
    d1, d2 = ood["z1_a"] - ood["z1_b"], ood["z2_a"] - ood["z2_b"]
    assert (np.sign(d1) != np.sign(d2)).all()  # OOD = the two factors disagree
    # outcome follows the true reward difference
    tr = a.frame[a.splits["train"]]
    assert np.corrcoef(tr["reward_diff"], tr["outcome"])[0, 1] > 0.4


def test_latent_positivity_factor_correlation_matches_rho():
    rho, n = 0.6, 20000
    sim = bp.simulate.latent_positivity(rho=rho, n_train=n, n_test=10, seed=0)
    tr = sim.frame[sim.splits["train"]]
    r = np.corrcoef(tr["z1_a"] - tr["z1_b"], tr["z2_a"] - tr["z2_b"])[0, 1]
    assert abs(r - rho) < 4 * (1 - rho ** 2) / np.sqrt(n)


def test_confounded_objective_assignment():
    rho = 0.8
    sim = bp.simulate.confounded_objective(rho=rho, n_users=40, comparisons_per_user=100, n_test=200, seed=1)
    tr = sim.frame[sim.splits["train"]]
    share = np.mean(tr["prompt_type"] == tr["objective"])
    assert abs(share - rho) < 4 * np.sqrt(rho * (1 - rho) / len(tr))
    assert (sim.frame.loc[sim.splits["test_inconsistent"], "prompt_type"]
            != sim.frame.loc[sim.splits["test_inconsistent"], "objective"]).all()
    # truth: the objectives conflict on compliance only
    w = sim.truth["weight"]
    comply = sim.truth["features"].index("comply")
    assert w[0, comply] > 0 > w[1, comply]
    np.testing.assert_allclose(np.delete(w[0], comply), np.delete(w[1], comply))
    none = bp.simulate.confounded_objective(rho=1.0, n_users=10, comparisons_per_user=20, n_test=10)
    assert not none.splits["train_inconsistent"].any()
    with pytest.raises(ValueError, match="probability"):
        bp.simulate.confounded_objective(rho=1.5)


def test_confounded_shared_truth_and_assignment():
    share, n_test = 0.25, 3000
    sim = bp.simulate.confounded_shared(rho=0.8, n_users=40, comparisons_per_user=50, n_test=n_test,
                                        conflict_share=share, off_sd=0.0, seed=2)
    names, w = sim.truth["features"], sim.truth["weight"]
    conf = [names.index(f) for f in sim.truth["conflicting"]]
    assert sim.truth["conflicting"] == ["s0_1", "s0_2", "s1_1", "s1_2"]
    # the objectives share every weight but the conflicting ones, which flip sign; topic is unused
    np.testing.assert_allclose(np.delete(w[0], conf), np.delete(w[1], conf))
    np.testing.assert_allclose(w[0, conf], -w[1, conf])
    assert w[0, names.index("topic")] == 0
    fr = sim.frame
    tr = fr[sim.splits["train"]]
    assert abs(np.mean(tr["prompt_type"] == tr["objective"]) - 0.8) < 4 * np.sqrt(0.16 / len(tr))
    # the prompt type decides which block varies (off_sd = 0: the other block is constant)
    t0 = fr["prompt_type"] == 0
    assert (fr.loc[t0, "s1_3_a"] == 0).all() and (fr.loc[~t0, "s0_3_a"] == 0).all()
    assert fr.loc[t0, "s0_3_a"].std() > 0.5
    # on either prompt type the objectives' reward differences correlate 1 - 2 * conflict_share
    for split in ("test_consistent", "test_inconsistent"):
        part = fr[sim.splits[split]]
        r = np.corrcoef(part["reward_diff_c0"], part["reward_diff_c1"])[0, 1]
        assert abs(r - (1 - 2 * share)) < 4 * (1 - (1 - 2 * share) ** 2) / np.sqrt(n_test)
    assert not bp.simulate.confounded_shared(rho=1.0, n_users=10, comparisons_per_user=10,
                                             n_test=10).splits["train_inconsistent"].any()
    with pytest.raises(DataError, match="probability"):
        bp.simulate.confounded_shared(rho=-0.1)
    with pytest.raises(DataError, match="conflict_share"):
        bp.simulate.confounded_shared(conflict_share=1.0)
    with pytest.raises(DataError, match="n_conflict"):
        bp.simulate.confounded_shared(n_conflict=12, n_specific=12)


def test_confounded_shared_shortcut_and_noisy_views():
    """``shortcut``: topic's within-prompt difference tracks the reward of the prompt type's usual
    objective (so it predicts consistent preferences, not inconsistent ones); ``view_noise``: the
    models see noisy features while the reward uses the true ones. Defaults change nothing."""
    kw = dict(rho=0.8, n_users=40, comparisons_per_user=50, n_test=3000, seed=3)
    plain = bp.simulate.confounded_shared(**kw)
    same = bp.simulate.confounded_shared(shortcut=0.0, view_noise=0.0, **kw)
    pd.testing.assert_frame_equal(plain.frame, same.frame)
    sim = bp.simulate.confounded_shared(shortcut=1.0, view_noise=0.5, **kw)
    fr, names, w = sim.frame, sim.truth["features"], sim.truth["weight"]
    # the outcomes' reward is the true one: it equals plain's (same draws before the views' noise)
    np.testing.assert_allclose(fr["reward_diff"], plain.frame["reward_diff"])
    dx = np.column_stack([fr[f"{f}_a"] - fr[f"{f}_b"] for f in names])
    r_obs = np.corrcoef(dx @ w[0], fr["reward_diff_c0"])[0, 1]
    assert 0.6 < r_obs < 0.95  # noisy views of the causal features, reliability 2/3 per feature
    dtopic = dx[:, names.index("topic")]
    for split, expect in (("test_consistent", True), ("test_inconsistent", False)):
        part = sim.splits[split]
        r = np.corrcoef(dtopic[part], fr.loc[part, "reward_diff"])[0, 1]
        assert (r > 0.5) if expect else abs(r) < 4 / np.sqrt(part.sum())
    # on inconsistent pairs it tracks the other objective's reward: that of the prompt type's usual one
    part = sim.splits["test_inconsistent"]
    usual = np.where(fr.loc[part, "prompt_type"] == 0, fr.loc[part, "reward_diff_c0"], fr.loc[part, "reward_diff_c1"])
    assert np.corrcoef(dtopic[part], usual)[0, 1] > 0.5


def test_erasure_on_confounded_shared_removes_only_the_topic_proxy():
    """The groups differ in which features vary (second moments) and in the level of ``topic``:
    linear erasure removes the topic direction and leaves the other feature differences alone."""
    sim = bp.simulate.confounded_shared(rho=0.9, n_users=40, comparisons_per_user=50, n_test=10, seed=1)
    train = sim.split()["train"]
    er = causal.erase(train, "objective")
    assert er.erased_rank == 1
    diff = np.asarray(train.xa) - np.asarray(train.xb)
    moved = er.transform(np.asarray(train.xa)) - er.transform(np.asarray(train.xb))
    topic = list(train.feature_names).index("topic")
    # other differences move only by the sampling error of the erased direction, ~ 1/sqrt(2 n) per feature
    rms = np.sqrt(np.mean(np.delete(moved - diff, topic, axis=1) ** 2, 0)) / np.delete(diff, topic, axis=1).std(0)
    assert rms.max() < 4 / np.sqrt(2 * train.n_comparisons)
    assert np.abs(moved[:, topic]).max() < 0.5 * np.abs(diff[:, topic]).max()


def test_nonadditive_truth_is_linear_in_the_features():
    sim = bp.simulate.nonadditive_prompt(n_prompts=200, n_test=100, seed=2)
    fr = sim.frame
    dx = np.column_stack([fr[f"{f}_a"] - fr[f"{f}_b"] for f in ("len", "len2", "len_task")])
    np.testing.assert_allclose(dx @ sim.truth["weight"], fr["reward_diff"], atol=1e-9)
    np.testing.assert_array_equal(fr["task_a"], fr["task_b"])  # the prompt term cancels


def test_position_bias_simulator():
    sim = bp.simulate.position_bias(size=0.7, n_comparisons=50, seed=1)
    assert sim.truth["position"] == 0.7


# -- erasure ----------------------------------------------------------------------------------------

def test_erase_removes_linear_information_about_c():
    sim = bp.simulate.confounded_objective(rho=0.9, n_users=30, comparisons_per_user=40, n_test=10, seed=0)
    train = sim.split()["train"]
    er = causal.erase(train, "objective")
    X = np.vstack([train.xa, train.xb])
    c = np.r_[train.comparison_covariates[:, 0], train.comparison_covariates[:, 0]]
    before = (X - X.mean(0)).T @ (c - c.mean()) / len(c)
    Xe = er.transform(X)
    after = (Xe - Xe.mean(0)).T @ (c - c.mean()) / len(c)
    assert np.abs(before).max() > 0.2  # the topic proxy reveals the objective
    np.testing.assert_allclose(after, 0.0, atol=1e-10)
    assert er.erased_rank == 1
    # the projection is idempotent and the erased direction is mostly the proxy
    np.testing.assert_allclose(er.projection @ er.projection, er.projection, atol=1e-10)
    topic = list(train.feature_names).index("topic")
    assert np.argmax(np.abs(Xe - X).std(0)) == topic


def test_balanced_model_arrays_use_the_training_erasure():
    sim = bp.simulate.confounded_objective(rho=0.9, n_users=20, comparisons_per_user=30, n_test=50, seed=0)
    parts = sim.split()
    spec = bp.Conditioned("objective", balance=True)
    er = causal.erase(parts["train"], "objective")
    arr = spec.predict_arrays(parts["train"], parts["test_consistent"])
    np.testing.assert_allclose(np.asarray(arr["xa"]), er.transform(parts["test_consistent"].xa), rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(np.asarray(arr["head"]), parts["test_consistent"].comparison_covariates[:, 0])


def test_erase_errors():
    data = bp.simulate.latent_positivity(n_train=50, n_test=10).comparisons()
    with pytest.raises(DataError, match="no user covariate"):
        causal.erase(data, "objective")



def test_balance_weights_balance_the_spread_across_c():
    """Configuration C hides C in which features vary (the spread |x_a - x_b|), which linear erasure
    cannot touch; the propensity weights balance it: within each objective the weighted share of
    inconsistent prompt types is ~1/2, and the weighted mean spreads (and levels) agree across C."""
    sim = bp.simulate.confounded_shared(rho=0.8, n_users=40, comparisons_per_user=20, n_test=10, seed=7)
    train = sim.split()["train"]
    bw = causal.balance_weights(train, "objective")
    c = bw.level
    t = sim.frame.loc[sim.splits["train"], "prompt_type"].to_numpy()
    spread = np.abs(np.asarray(train.xa) - np.asarray(train.xb))
    # unweighted: the spread of a type-k feature block is larger under objective k
    un = np.abs(spread[c == 0].mean(0) - spread[c == 1].mean(0)) / spread.std(0)
    wt = np.abs(np.average(spread[c == 0], 0, bw.weights[c == 0])
                - np.average(spread[c == 1], 0, bw.weights[c == 1])) / spread.std(0)
    assert np.median(un) > 0.5 and np.median(wt) < 0.1 and wt.max() < 0.25
    tab = bw.balance_table()
    assert tab["smd_unweighted"].max() > 1.0 and tab["smd_weighted"].max() < 0.25
    for k in (0, 1):
        assert np.mean(t[c == k] != k) < 0.3
        assert abs(np.average(t[c == k] != k, weights=bw.weights[c == k]) - 0.5) < 0.1
        np.testing.assert_allclose(bw.weights[c == k].mean(), 1.0)
    summ = bw.summary()
    assert list(summ.columns[:4]) == ["n", "ess", "ess_share", "max_weight"]
    assert (summ["ess_share"] < 0.9).all() and (summ["max_weight"] > 2).all()
    # rho = 1: no inconsistent pairs, nothing to upweight (weights ~ 1)
    full = bp.simulate.confounded_shared(rho=1.0, n_users=40, comparisons_per_user=20, n_test=10, seed=7)
    w1 = causal.balance_weights(full.split()["train"], "objective").weights
    assert np.abs(w1 - 1).max() < 0.05


def test_weighted_model_scales_the_training_likelihood_only():
    import jax
    import jax.numpy as jnp
    from numpyro.infer.util import log_density

    sim = bp.simulate.confounded_shared(rho=0.8, n_users=10, comparisons_per_user=20, n_test=20, seed=2)
    train = sim.split()["train"]
    plain, weighted = bp.Conditioned("objective"), bp.Conditioned("objective", balance="weights")
    w = weighted.balance_weights(train).weights
    arr_p, arr_w = plain.arrays(train), weighted.arrays(train)
    np.testing.assert_allclose(np.asarray(arr_w["balance_weight"]), w, rtol=1e-6)
    assert "balance_weight" not in weighted.predict_arrays(train, sim.split()["test_inconsistent"])
    rng = np.random.default_rng(0)
    n_f = len(train.feature_names)
    params = {"weight": jnp.asarray(rng.normal(0, 1, n_f)), "sd_head": jnp.asarray(rng.uniform(0.2, 1, n_f)),
              "z_head": jnp.asarray(rng.normal(0, 1, (2, n_f)))}
    W = np.asarray(params["weight"] + params["sd_head"] * params["z_head"])
    d = np.sum((np.asarray(train.xa) - np.asarray(train.xb)) * W[np.asarray(arr_p["head"])], -1)
    y = np.asarray(train.y)
    ll = np.where(y == 1, -np.logaddexp(0, -d), -np.logaddexp(0, d))  # unweighted pointwise log-likelihood

    def dens(spec, arr, **kw):  # jitted: one compile instead of one per operation
        return float(jax.jit(lambda a, p, kw: log_density(spec.bind(train), (a,), kw, p)[0])(arr, params, kw))

    base = dens(plain, arr_p)
    np.testing.assert_allclose(dens(weighted, arr_w) - base, np.sum((w - 1) * ll), rtol=1e-4, atol=1e-3)
    batch = jnp.arange(0, 200, 4)  # a minibatch keeps the N/B scaling on top of the weights
    np.testing.assert_allclose(dens(weighted, arr_w, batch=batch) - dens(plain, arr_p, batch=batch),
                               4 * np.sum((w[::4] - 1) * ll[::4]), rtol=1e-4, atol=1e-3)


def test_balance_errors():
    with pytest.raises(ModelError, match="balance='weight'"):
        bp.Conditioned("objective", balance="weight")
    with pytest.raises(ModelError, match="weight_trim"):
        bp.Conditioned("objective", balance="weights", weight_trim=1.5)
    assert bp.Conditioned("objective", balance=True).balance_mode == "erase"
    assert bp.Conditioned("objective").balance_mode is None
    sim = bp.simulate.confounded_shared(rho=0.8, n_users=10, comparisons_per_user=10, n_test=10, seed=1)
    train = sim.split()["train"]
    level = train.user_table["objective"].to_numpy()[np.asarray(train.user)]
    only0 = train.subset(np.flatnonzero(level == 0))  # users of objective 1 remain, without comparisons
    with pytest.raises(DataError, match="no comparisons of users with objective in \\['1'\\]"):
        causal.balance_weights(only0, "objective")
    with pytest.raises(DataError, match="no user covariate"):
        causal.balance_weights(bp.simulate.latent_positivity(n_train=50, n_test=10).comparisons(), "objective")
    with pytest.raises(DataError, match="trim"):
        causal.balance_weights(train, "objective", trim=0.0)

# -- identifiability ----------------------------------------------------------------------------------

def _log_lik(spec, data, params):
    from numpyro.infer import log_likelihood

    fn = spec.bind(data)
    return np.asarray(log_likelihood(fn, params, spec.arrays(data))["y"])


def _prior_draws(spec, data, n=20, seed=0):
    import jax
    from numpyro.infer import Predictive

    fn = spec.bind(data)
    arrays = spec.arrays(data, with_outcome=False)
    draws = Predictive(fn, num_samples=n)(jax.random.PRNGKey(seed), arrays)
    return {k: v for k, v in draws.items() if k not in ("y",)}


def _shifted(sim, shift):
    """The same comparisons with every feature of both responses shifted by a per-prompt offset."""
    fr = sim.frame.copy()
    for f in sim.options["features"]:
        fr[f"{f}_a"] = fr[f"{f}_a"] + shift
        fr[f"{f}_b"] = fr[f"{f}_b"] + shift
    return bp.simulate.Simulated(fr, None, sim.user_table, sim.truth, sim.splits, sim.options)


@pytest.mark.parametrize("spec", [bp.BradleyTerry(worths=False), bp.Conditioned("objective"),
                                  bp.Conditioned("objective", head_prior="sparse")],
                         ids=["BradleyTerry", "Conditioned", "Conditioned-sparse"])
def test_per_prompt_offset_leaves_log_likelihood_unchanged(spec):
    sim = bp.simulate.confounded_objective(rho=0.7, n_users=10, comparisons_per_user=30, n_test=10, seed=4)
    offset = np.random.default_rng(0).normal(0, 3, sim.frame.shape[0])  # one per prompt (prompt = row)
    data, moved = sim.comparisons(), _shifted(sim, offset).comparisons()
    params = _prior_draws(spec, data)
    ll, ll_moved = _log_lik(spec, data, params), _log_lik(spec, moved, params)
    assert np.abs(ll).max() > 0.1
    np.testing.assert_allclose(ll_moved, ll, atol=1e-6 * max(1.0, np.abs(ll).max()), rtol=1e-6)


def _swapped(frame):
    out = frame.copy()
    for col in [c for c in frame.columns if c.endswith("_a")]:
        out[col], out[col[:-2] + "_b"] = frame[col[:-2] + "_b"], frame[col]
    out["a"], out["b"] = frame["b"], frame["a"]
    out["outcome"] = 1 - frame["outcome"]
    return out


@pytest.mark.parametrize("position", [False, True])
def test_swapping_a_and_b_and_flipping_the_outcome(position):
    """Without a position term the log density (hence the posterior) is unchanged; with one, not."""
    from numpyro.infer.util import log_density

    sim = bp.simulate.latent_positivity(rho=0.3, n_train=300, n_test=10, seed=5)
    data = sim.comparisons()
    swapped = bp.Comparisons.from_frame(_swapped(sim.frame), **sim.options)
    spec = bp.BradleyTerry(worths=False, position=position)
    params = _prior_draws(spec, data, n=5)
    fa, fb = spec.bind(data), spec.bind(swapped)
    aa, ab = spec.arrays(data), spec.arrays(swapped)
    diffs = []
    for i in range(5):
        p = {k: v[i] for k, v in params.items()}
        la = float(log_density(fa, (aa,), {}, p)[0])
        lb = float(log_density(fb, (ab,), {}, p)[0])
        diffs.append(abs(la - lb) / max(1.0, abs(la)))
    if position:
        assert max(diffs) > 1e-3
    else:
        assert max(diffs) < 1e-6


# -- the Conditioned model and the estimands ------------------------------------------------------

@pytest.fixture(scope="module")
def conditioned(conditioned_svi):
    """``(sim, parts, fit)``: the SVI fit of ``Conditioned("objective")`` made once per session
    (tests/conftest.py: rho=0.7, 30 users x 40 comparisons, 300 test pairs, 2500 steps)."""
    return conditioned_svi


def test_conditioned_recovers_conflicting_heads(conditioned):
    sim, _parts, fit = conditioned
    post = fit.idata.posterior
    assert post["head_weight"].dims[-2:] == ("head", "feature")
    assert list(post["head"].values) == ["0", "1"]
    hw = post["head_weight"].sel(feature="comply")
    truth = sim.truth["weight"][:, sim.truth["features"].index("comply")]
    for k in (0, 1):
        d = hw.isel(head=k)
        assert abs(float(d.mean()) - truth[k]) < 4 * float(d.std()) + 0.3
    # the heads share the quality weights (small head SD) and differ on compliance
    sd = post["sd_head"].mean(("chain", "draw"))
    assert float(sd.sel(feature="comply")) > 3 * float(sd.sel(feature="q0_1"))
    s = fit.summary()
    assert "head_weight[0, comply]" in s.index


@pytest.mark.slow  # a long statistical check (default-suite budget); run with -m slow
def test_conditioned_beats_pooled_on_inconsistent_pairs(conditioned):
    sim, parts, fit = conditioned
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pooled = bp.fit(bp.BradleyTerry(worths=False), parts["train"], method="svi", seed=1, progress=False,
                        steps=2500)
    truth = sim.frame.loc[sim.splits["test_inconsistent"], "reward_diff"]
    acc_c = causal.accuracy(fit, parts["test_inconsistent"], truth=truth)
    acc_p = causal.accuracy(pooled, parts["test_inconsistent"], truth=truth)
    assert acc_c > acc_p + 0.05


def test_group_preference_and_standardisation(conditioned):
    sim, parts, fit = conditioned
    pairs = sim.frame[sim.splits["test_inconsistent"]].head(5)
    gp = causal.group_preference(fit, pairs)
    assert gp.dims == ("chain", "draw", "group", "comparison")
    assert list(gp["group"].values) == ["0", "1"]
    truth = _sigmoid(pairs[["reward_diff_c0", "reward_diff_c1"]].to_numpy().T)  # (group, comparison)
    est = gp.mean(("chain", "draw")).values
    assert np.corrcoef(est.ravel(), truth.ravel())[0, 1] > 0.8
    uni = causal.standardise(gp, "uniform")
    np.testing.assert_allclose(uni.values, gp.mean("group").values, rtol=1e-6)
    tilted = causal.standardise(gp, {"0": 3, "1": 1})
    np.testing.assert_allclose(tilted.values, (0.75 * gp.sel(group="0") + 0.25 * gp.sel(group="1")).values,
                               rtol=1e-6)
    emp = causal.standardise(gp, "empirical", data=parts["train"], condition="objective")
    np.testing.assert_allclose(emp.values, uni.values, rtol=1e-6)  # half the users in each group
    table = causal.summary(gp)
    assert list(table.columns) == ["mean", "sd", "lower", "upper"]
    assert (table["lower"] <= table["mean"]).all() and (table["mean"] <= table["upper"]).all()


def test_interventions(conditioned):
    _sim, parts, fit = conditioned
    test = parts["test_consistent"]
    base = causal.interventional(fit, test, group=1)
    assert base.dims == ("chain", "draw")
    # do(comply_a = comply_b + 1): harmlessness-minded users then prefer b; helpfulness-minded, a
    more = {"comply_a": lambda f: f["comply_b"] + 1.0}
    p1 = causal.interventional(fit, test, more, group=1)
    p0 = causal.interventional(fit, test, more, group=0)
    assert float(p1.mean()) < 0.4 and float(p0.mean()) > 0.6
    per = causal.interventional(fit, test, more, group=0, average=False)
    assert per.sizes["comparison"] == test.n_comparisons
    tp = causal.transported_preference(fit, parts["train"], group=0, prompts_of=1)
    assert tp.dims == ("chain", "draw") and 0 < float(tp.mean()) < 1


def test_amce_covers_the_analytic_value():
    b1, gamma, p2 = 1.0, 0.8, 0.3
    sim = bp.simulate.binary_factors((b1, -0.5, 0.5), gamma, (0.5, p2, 0.5), n_comparisons=1500, seed=3)
    data = sim.comparisons()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = bp.fit(bp.BradleyTerry(worths=False), data, seed=3, **QUICK)
    observed = pd.DataFrame(np.vstack([data.xa[:, :3], data.xb[:, :3]]), columns=["f1", "f2", "f3"])
    uniform = pd.DataFrame([(a, b, c) for a in (0.0, 1.0) for b in (0.0, 1.0) for c in (0.0, 1.0)],
                           columns=["f1", "f2", "f3"])

    def design(prof):
        return prof.assign(f1f2=prof["f1"] * prof["f2"])

    for profiles, m2 in ((uniform, 0.5), (observed, observed["f2"].mean())):
        est = causal.summary(causal.amce(fit, "f1", reference=profiles, design=design), 0.95).iloc[0]
        truth = (1 - m2) * _sigmoid(b1) + m2 * _sigmoid(b1 + gamma)
        assert est["lower"] <= truth <= est["upper"]
    # a built-in reference on the model's own features (f1f2 is then a factor of its own);
    # f3 is additive: sigma(beta_3) under any reference
    for ref in ("uniform", "empirical"):
        s = causal.summary(causal.amce(fit, "f3", reference=ref, both_orders=False), 0.95).iloc[0]
        assert s["lower"] <= _sigmoid(0.5) <= s["upper"]


# -- errors -------------------------------------------------------------------------------------------

def test_conditioned_errors():
    with pytest.raises(ModelError, match="condition"):
        bp.Conditioned()
    with pytest.raises(ModelError, match="pooling"):
        bp.Conditioned("objective", pooling="full")
    with pytest.raises(ModelError, match="head_prior"):
        bp.Conditioned("objective", head_prior="horseshoe")
    data = bp.simulate.latent_positivity(n_train=50, n_test=10).comparisons()
    with pytest.raises(ModelError, match="no user covariate 'objective'"):
        bp.Conditioned("objective").check(data)
    sim = bp.simulate.confounded_objective(rho=0.5, n_users=10, comparisons_per_user=10, n_test=10)
    with pytest.raises(ModelError, match="features"):
        bp.Conditioned("objective").check(sim.comparisons(features=None))


def test_estimand_errors(conditioned):
    sim, parts, fit = conditioned
    pairs = sim.frame.head(3)
    with pytest.raises(DataError, match="no user covariate 'age'"):
        causal.group_preference(fit, pairs, condition="age")
    with pytest.raises(DataError, match="column 'length_a'"):
        causal.interventional(fit, pairs, {"length_a": 1.0}, group=0)
    gp = causal.group_preference(fit, pairs)
    with pytest.raises(DataError, match="groups \\['2'\\]"):
        causal.standardise(gp, {"2": 1.0})
    with pytest.raises(DataError, match="not a factor"):
        causal.amce(fit, "length")
    with pytest.raises(DataError, match="value combinations"):
        causal.amce(fit, "comply", reference="uniform")
    with pytest.raises(DataError, match="no comparisons of users"):
        causal.transported_preference(fit, parts["train"], group=0, prompts_of=7)
    with pytest.raises(DataError, match="chain and draw"):
        causal.summary(gp.mean("chain"))


def test_conditioned_fit_saves_and_loads(conditioned, tmp_path):
    _, parts, fit = conditioned
    back = bp.load_fit(fit.save(tmp_path / "cond.nc"))
    assert isinstance(back.model, bp.Conditioned) and back.model.condition == "objective"
    test = parts["test_inconsistent"]
    np.testing.assert_allclose(back.predict(test)["p_a"], fit.predict(test)["p_a"], rtol=1e-6)
