"""Bayesian experimental design (bayespref.design): EIG estimators, targets, batches, onboarding,
overlap-breaking proposals and bad input.

The default tests use fits built by hand (posterior draws written into a Fit, no sampling), so they
check the formulas against brute force in seconds; statistical checks on real fits are marked slow.
"""

from __future__ import annotations

import warnings

import arviz as az
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
from scipy.special import expit

import bayespref as bp
from bayespref.analyses import design
from bayespref.analyses.design import eig as E
from bayespref.errors import DataError, ModelError

pytestmark = [pytest.mark.filterwarnings("ignore::bayespref.errors.ConvergenceWarning"),
              pytest.mark.filterwarnings("ignore::bayespref.errors.DataWarning")]


# -- fits built by hand ------------------------------------------------------------------------------------
def hand_fit(spec, data, draws: dict) -> bp.Fit:
    """A Fit whose posterior is ``draws`` (site -> array (chain, draw, ...)): no sampling."""
    sizes = spec.sizes(data)
    idata = az.from_dict({"posterior": {k: np.asarray(v) for k, v in draws.items()}},
                         coords=spec.coords(data), dims=spec.dims(sizes))
    return bp.Fit(idata, spec, data, {"method": "hand"})


def features_frame(n, rho=0.0, seed=0, prefix="r", w=(0.5, 1.5)):
    rng = np.random.default_rng(seed)
    cov = np.array([[1.0, rho], [rho, 1.0]]) / 2
    xa, xb = rng.multivariate_normal([0, 0], cov, n), rng.multivariate_normal([0, 0], cov, n)
    ids = np.arange(n)
    frame = pd.DataFrame({"a": [f"{prefix}{i}a" for i in ids], "b": [f"{prefix}{i}b" for i in ids],
                          "x1_a": xa[:, 0], "x1_b": xb[:, 0], "x2_a": xa[:, 1], "x2_b": xb[:, 1]})
    frame["outcome"] = (rng.random(n) < expit((xa - xb) @ np.asarray(w))).astype(float)
    return frame


@pytest.fixture(scope="module")
def bt_fit():
    """Features-only BT (x1, x2 correlated 0.9), weights drawn from a Gaussian posterior."""
    data = bp.Comparisons.from_frame(features_frame(200, rho=0.9), features=["x1", "x2"], check_connected=False)
    rng = np.random.default_rng(1)
    cov = np.array([[0.12, -0.10], [-0.10, 0.12]])
    w = rng.multivariate_normal([0.6, 1.3], cov, size=(2, 400))
    return hand_fit(bp.BradleyTerry(), data, {"weight": w})


@pytest.fixture(scope="module")
def worth_fit():
    """BT with worths of 6 options (zero-sum draws) and users u0..u3."""
    rng = np.random.default_rng(2)
    opts = [f"o{i}" for i in range(6)]
    a = rng.integers(0, 6, 40)
    b = (a + rng.integers(1, 6, 40)) % 6
    frame = pd.DataFrame({"a": np.asarray(opts)[a], "b": np.asarray(opts)[b], "outcome": rng.integers(0, 2, 40),
                          "user": [f"u{i % 4}" for i in range(40)]})
    data = bp.Comparisons.from_frame(frame, user="user")
    true = np.linspace(1.5, -1.5, 6)
    w = true + 0.6 * rng.normal(size=(1, 800, 6))
    w = w - w.mean(-1, keepdims=True)
    return hand_fit(bp.BradleyTerry(), data, {"worth": w})


@pytest.fixture(scope="module")
def hier_fit():
    """Hierarchical, user-varying weights of x0, x1, a binary group covariate (draws by hand)."""
    rng = np.random.default_rng(3)
    n_users, n_opt = 12, 10
    opts = np.array([f"o{i}" for i in range(n_opt)])
    table = pd.DataFrame(rng.normal(size=(n_opt, 2)), index=pd.Index(opts, name="option"), columns=["x0", "x1"])
    users = np.array([f"u{i:02d}" for i in range(n_users)])
    groups = pd.DataFrame({"group": np.where(np.arange(n_users) % 3 == 0, "B", "A")},
                          index=pd.Index(users, name="user"))
    u = np.repeat(np.arange(n_users), 8)
    a = rng.integers(0, n_opt, u.size)
    b = (a + rng.integers(1, n_opt, u.size)) % n_opt
    frame = pd.DataFrame({"a": opts[a], "b": opts[b], "outcome": rng.integers(0, 2, u.size), "user": users[u]})
    data = bp.Comparisons.from_frame(frame, user="user", features=table, user_covariates=groups)
    spec = bp.Hierarchical(covariates=["group"], correlated=False)
    S = (1, 600)
    draws = {"weight": np.array([1.0, -0.5]) + 0.2 * rng.normal(size=S + (2,)),
             "group_weight": np.array([[0.5, 0.0]]) + 0.3 * rng.normal(size=S + (1, 2)),
             "sd_weight": 0.3 + 0.05 * np.abs(rng.normal(size=S + (2,))),
             "z": rng.normal(size=S + (n_users, 2))}
    return hand_fit(spec, data, draws)


@pytest.fixture(scope="module")
def types_fit():
    """LatentTypes K = 3 on 6 options, types well apart (draws by hand)."""
    rng = np.random.default_rng(4)
    opts = [f"o{i}" for i in range(6)]
    a = rng.integers(0, 6, 90)
    b = (a + rng.integers(1, 6, 90)) % 6
    frame = pd.DataFrame({"a": np.asarray(opts)[a], "b": np.asarray(opts)[b], "outcome": rng.integers(0, 2, 90),
                          "user": [f"u{i % 9}" for i in range(90)]})
    data = bp.Comparisons.from_frame(frame, user="user")
    base = np.array([[2.0, 1.0, 0.0, -1.0, -2.0, 0.0], [-2.0, -1.0, 0.0, 1.0, 2.0, 0.0],
                     [0.0, 2.0, -2.0, 0.0, 1.0, -1.0]])
    worth = base + 0.2 * rng.normal(size=(1, 300, 3, 6))
    worth = worth - worth.mean(-1, keepdims=True)
    share = rng.dirichlet([30, 30, 30], size=(1, 300))
    return hand_fit(bp.LatentTypes(n_types=3), data, {"worth": worth, "type_share": share})


def entropy(p):
    p = np.clip(p, 1e-300, 1)
    return -np.sum(p * np.log(p), -1)


# -- the estimators against brute force --------------------------------------------------------------------
def test_eig_formulas_match_brute_force_on_a_tiny_problem():
    # three draws, two candidates, binary outcome
    P = np.array([[[0.9, 0.1], [0.5, 0.5]], [[0.2, 0.8], [0.5, 0.5]], [[0.6, 0.4], [0.4, 0.6]]], dtype=np.float32)
    w = np.array([0.5, 0.3, 0.2], dtype=np.float32)
    bald = np.asarray(E.eig_parameters(jnp.asarray(P), jnp.asarray(w)))
    brute = [entropy(np.einsum("s,sy->y", w, P[:, c])) - np.sum(w * entropy(P[:, c])) for c in range(2)]
    np.testing.assert_allclose(bald, brute, rtol=1e-5)
    # a discrete target: draws 0 and 2 share a class; enumerate the joint (class, outcome) by hand
    labels = np.array([0, 1, 0])
    onehot = np.eye(2, dtype=np.float32)[labels]
    got = np.asarray(E.eig_discrete(jnp.asarray(P), jnp.asarray(onehot), jnp.asarray(w)))
    for c in range(2):
        joint = np.zeros((2, 2))
        for s in range(3):
            joint[labels[s]] += w[s] * P[s, c]
        mi = sum(joint[i, y] * np.log(joint[i, y] / (joint[i].sum() * joint[:, y].sum()))
                 for i in range(2) for y in range(2) if joint[i, y] > 0)
        assert got[c] == pytest.approx(mi, rel=1e-5, abs=1e-7)
    # one class per draw: the target pins the parameters, so its EIG is the BALD score
    np.testing.assert_allclose(E.eig_discrete(jnp.asarray(P), jnp.eye(3, dtype=jnp.float32), jnp.asarray(w)),
                               bald, rtol=1e-5)
    # the Gaussian estimator: reweighted variances by hand
    T = np.array([[1.0], [-1.0], [0.5]], dtype=np.float32)
    gauss = np.asarray(E.eig_gaussian(jnp.asarray(P), jnp.asarray(T), jnp.asarray(w)))
    v0 = np.sum(w * (T[:, 0] - w @ T[:, 0]) ** 2)
    for c in range(2):
        tot = 0.0
        for y in range(2):
            wy = w * P[:, c, y]
            py = wy.sum()
            m = (wy @ T[:, 0]) / py
            vy = (wy @ (T[:, 0] - m) ** 2) / py
            tot += py * 0.5 * np.log(v0 / vy)
        assert gauss[c] == pytest.approx(tot, rel=1e-3, abs=1e-6)


def test_membership_eig_is_the_mutual_information_of_type_and_answer():
    rng = np.random.default_rng(0)
    Pk = rng.dirichlet([1, 1], size=(4, 3, 2)).astype(np.float32)   # (S, C, K, Y)
    omega = rng.dirichlet(np.ones(8)).reshape(4, 2).astype(np.float32)
    got = np.asarray(E.eig_membership(jnp.asarray(Pk), jnp.asarray(omega)))
    for c in range(3):
        joint = np.einsum("sk,sky->ky", omega, Pk[:, c])
        brute = entropy(joint.sum(0)) - sum(joint[k].sum() * entropy(joint[k] / joint[k].sum()) for k in range(2))
        assert got[c] == pytest.approx(brute, rel=1e-4, abs=1e-7)


def test_cheap_estimator_within_ten_percent_of_nested_monte_carlo():
    # T = theta_1, logit P(a) = alpha theta_1 + beta theta_2 + gamma, theta ~ N(0, I)
    coef = np.array([[0.5, 0.0, 0.0], [1.0, 0.5, 0.0], [2.0, 1.0, 1.0], [1.5, 0.0, -1.0]])

    def prob(th):
        p = expit(th[:, :1] * coef[:, 0] + th[:, 1:2] * coef[:, 1] + coef[:, 2])
        return np.stack([p, 1 - p], -1)

    nested = E.nested_eig(prob, np.zeros(2), np.eye(2), np.array([1.0, 0.0]), outer=200, inner=1024, seed=1)
    th = np.random.default_rng(2).standard_normal((20000, 2))
    cheap = np.asarray(E.eig_gaussian(jnp.asarray(prob(th), dtype=jnp.float32),
                                      jnp.asarray(th[:, :1], dtype=jnp.float32), jnp.full(20000, 1 / 20000)))
    np.testing.assert_allclose(cheap, nested, rtol=0.10)
    assert np.all(np.diff(nested[[0, 1]]) > 0)   # a steeper logit in T teaches more about T


# -- scoring -------------------------------------------------------------------------------------------------
def test_score_all_parameters_is_bald_on_the_fit_draws(bt_fit):
    pool = features_frame(30, seed=5, prefix="c").drop(columns="outcome")
    ranked = design.score(bt_fit, pool)
    assert list(ranked.columns[-5:]) == ["eig", "p_a", "p_a_sd", "entropy", "rank"]
    assert ranked["rank"].tolist() == list(range(1, 31))
    assert ranked["eig"].is_monotonic_decreasing
    w = bt_fit.idata.posterior["weight"].values.reshape(-1, 2)          # P(a) = sigmoid((x_a - x_b) w) by hand
    dx = pool[["x1_a", "x2_a"]].to_numpy() - pool[["x1_b", "x2_b"]].to_numpy()
    pa = expit(w @ dx.T)
    P = np.stack([pa, 1 - pa], -1)
    brute = entropy(P.mean(0)) - entropy(P).mean(0)
    np.testing.assert_allclose(ranked.sort_index()["eig"].to_numpy(), brute, rtol=2e-3, atol=1e-6)
    np.testing.assert_allclose(ranked.sort_index()["p_a"].to_numpy(), pa.mean(0), rtol=1e-5)


def test_weight_target_prefers_pairs_that_vary_the_feature(bt_fit):
    base = pd.DataFrame({"a": ["p:a", "q:a", "r:a"], "b": ["p:b", "q:b", "r:b"],
                         "x1_a": [1.0, 0.0, 1.0], "x1_b": [-1.0, 0.0, -1.0],
                         "x2_a": [0.0, 1.0, 1.0], "x2_b": [0.0, -1.0, -1.0]})
    ranked = design.score(bt_fit, base, design.weight("x1"))
    # varying x1 alone teaches most about its weight; x2 alone teaches through their correlation
    assert ranked.index[0] == 0
    assert ranked.attrs["estimator"].startswith("gaussian")
    assert (ranked["target_sd_after"] < ranked.attrs["target_sd"]).all()


def test_information_is_invariant_where_it_must_be(bt_fit):
    pool = features_frame(12, seed=5, prefix="c").drop(columns="outcome")
    bald = design.score(bt_fit, pool).sort_index()["eig"]
    # the log-odds of a test set spanning both weights carry all the parameters' information
    test = features_frame(10, rho=-0.5, seed=6, prefix="t").drop(columns="outcome")
    pred = design.score(bt_fit, pool, design.predictions(test)).sort_index()["eig"]
    np.testing.assert_allclose(pred, bald, rtol=0.08)
    # the AMCE of x1 is a monotone function of weight[x1] here: the same information
    amce = design.score(bt_fit, pool, design.amce("x1", max_profiles=16)).sort_index()["eig"]
    np.testing.assert_allclose(amce, design.score(bt_fit, pool, design.weight("x1")).sort_index()["eig"], rtol=1e-2)


def test_contrast_target_of_a_hierarchical_fit(hier_fit):
    users = hier_fit.data.users
    pool = pd.DataFrame({"a": ["o0", "o1", "o2", "o3"], "b": ["o5", "o6", "o7", "o8"],
                         "user": [users[0], users[1], "newbie", "newbie2"]})
    cov = pd.DataFrame({"group": ["B", "A"]}, index=pd.Index(["newbie", "newbie2"], name="user"))
    t = design.contrast("group", "B", "A", effect="x0")
    ranked = design.score(hier_fit, pool, t, user_covariates=cov)
    assert ranked.attrs["target"] == "x0 in group=B minus group=A"
    assert np.isfinite(ranked["eig"]).all() and (ranked["eig"] >= 0).all()
    # the contrast's draws are the group effect on x0 (design method)
    post = hier_fit.idata.posterior
    od = design.outcomes.OutcomeDraws(np.zeros((600, 0, 2)), post["chain"].values, post["draw"].values)
    vals = t.values(hier_fit, od)[:, 0]
    np.testing.assert_allclose(vals, hier_fit.idata.posterior["group_weight"].values[0, :, 0, 0], rtol=1e-5)
    # candidates named by their group only: new users of that group
    pool2 = design.prepare(hier_fit, pool[["a", "b"]].assign(group=["A", "B", "A", "B"]))
    assert (pool2.users == ["__new[group=A]", "__new[group=B]"] * 2).all() and pool2.new_user.all()


def test_top_k_and_from_draws_targets(worth_fit):
    pool = pd.DataFrame({"a": ["o0", "o1", "o0", "o4"], "b": ["o1", "o2", "o5", "o5"]})
    ranked = design.score(worth_fit, pool, design.top_k(2))
    # the top two (o0, o1) are uncertain only against each other and o2: o4 vs o5 says little
    assert ranked.index[0] in (0, 1) and ranked.index[-1] == 3
    w = worth_fit.idata.posterior["worth"]
    diff = design.from_draws(w.sel(option="o0") - w.sel(option="o1"), "o0 minus o1")
    ranked2 = design.score(worth_fit, pool, diff)
    assert ranked2.index[0] == 0


def test_membership_target_and_onboarding_match_bayes_rule(types_fit):
    ob = design.Onboarding(types_fit)
    assert len(ob.pool) == 15
    first = ob.next(2)
    assert first["eig"].is_monotonic_decreasing and (first["eig"] > 0).all()
    ob.record(first["a"].iloc[0], first["b"].iloc[0], 1.0).record(first["a"].iloc[1], first["b"].iloc[1], 0.0)
    asked = {tuple(r) for r in first[["a", "b"]].to_numpy()}
    assert not asked & {tuple(r) for r in ob.next(15)[["a", "b"]].to_numpy()}
    # Bayes' rule by hand: P(z = k | answers) over the draws
    post = types_fit.idata.posterior
    opts = list(types_fit.data.options)
    worth, share = post["worth"].values[0], post["type_share"].values[0]        # (S, K, O), (S, K)
    log_w = np.log(share)
    for (a, b), y in zip(first[["a", "b"]].to_numpy(), [1.0, 0.0]):
        d = worth[:, :, opts.index(a)] - worth[:, :, opts.index(b)]
        log_w = log_w + np.log(expit(d) if y == 1.0 else expit(-d))
    joint = np.exp(log_w - log_w.max())
    np.testing.assert_allclose(ob.membership().to_numpy(), joint.sum(0) / joint.sum(), rtol=1e-4)
    # the same numbers through the membership target
    answers = pd.DataFrame(ob.answers).assign(user="newbie")
    ranked = design.score(types_fit, design.all_pairs(types_fit), design.membership("newbie", answers))
    np.testing.assert_allclose(ranked.sort_index()["eig"].to_numpy(), ob.scores(), rtol=1e-4, atol=1e-6)


# -- batches -------------------------------------------------------------------------------------------------
def test_batch_honours_budgets_exclusions_and_no_repeats(worth_fit):
    frame = worth_fit.data.frame
    seen = {(min(a, b), max(a, b), u) for a, b, u in frame[["a", "b", "user"]].itertuples(index=False)}
    opts = list(worth_fit.data.options)
    fresh = [(a, b, u) for u in ["u0", "u1", "u2", "u3"] for i, a in enumerate(opts) for b in opts[i + 1:]
             if (a, b, u) not in seen]
    judged = frame.iloc[:3][["a", "b", "user"]]
    pool = pd.concat([judged, pd.DataFrame(fresh, columns=["a", "b", "user"])], ignore_index=True)
    per_user = pool.iloc[3:]["user"].value_counts()
    assert (per_user >= 2).all()                              # the test needs two fresh pairs per user
    batch = design.select(worth_fit, pool, None, n=10, budget=2, exclude_judged=True, fantasies=4)
    assert len(batch) == 8                                   # 4 users x budget 2
    assert batch["user"].value_counts().max() == 2
    assert not batch.index.isin([0, 1, 2]).any()              # the judged pairs are out
    assert batch.index.is_unique
    assert batch["step"].tolist() == list(range(1, 9)) and np.allclose(batch["cumulative_eig"], batch["eig"].cumsum())
    capped = design.select(worth_fit, pool, None, n=6, budget={"u0": 0, "u1": 1}, fantasies=4)
    assert "u0" not in set(capped["user"]) and (capped["user"] == "u1").sum() <= 1
    top = design.select(worth_fit, pool, None, n=3, method="top")
    assert top["eig"].is_monotonic_decreasing


def test_batch_budget_per_group_and_ensemble_sd(hier_fit):
    users = hier_fit.data.users
    pool = pd.DataFrame({"a": ["o0", "o1", "o2", "o3", "o4"] * 12, "b": ["o5", "o6", "o7", "o8", "o9"] * 12,
                         "user": np.repeat(users, 5)})
    t = design.contrast("group", "B", "A", effect="x0")
    batch = design.select(hier_fit, pool, t, n=12, budget={"B": 3}, budget_by="group")
    groups = hier_fit.data.user_table["group"].reindex(batch["user"]).to_numpy()
    assert (groups == "B").sum() <= 3
    assert batch.attrs["method"] == "ensemble"
    sd = np.r_[batch.attrs["target_sd_before"], batch["target_sd"].to_numpy()]
    assert np.all(np.diff(sd) <= 1e-6) and sd[-1] < sd[0]
    # the designed batch beats the same number of pool rows taken in order, in expected SD
    plain = design.expected_target_sd(hier_fit, pool.iloc[:12], t)
    assert plain["target_sd"].iloc[0] == pytest.approx(sd[0], rel=1e-5)


# -- overlap-breaking ------------------------------------------------------------------------------------------
def test_one_factor_pairs_vary_one_feature_and_hold_the_other(bt_fit):
    pairs = design.one_factor_pairs(bt_fit, "x1", n=40, delta=1.5, seed=3)
    dx1 = pairs["x1_a"] - pairs["x1_b"]
    np.testing.assert_allclose(np.abs(dx1), 1.5)
    np.testing.assert_allclose(pairs["x2_a"], pairs["x2_b"])
    assert set(np.sign(dx1)) == {-1.0, 1.0}                    # a is not always the larger
    assert design.feature_overlap(bt_fit)["rho"].iloc[0] > 0.8
    assert set(design.most_entangled(bt_fit)) == {"x1", "x2"}


def test_overlap_breaking_beats_random_pool_judgements(bt_fit):
    pool = features_frame(400, rho=0.9, seed=8, prefix="p").drop(columns="outcome")
    ob = design.overlap_breaking(bt_fit, "x1", n=40, pool=pool, seed=1)
    assert ob.correlation.loc[("x1", "x2"), "max_abs_diff_held_batch"] <= 0.26
    s = ob.summary()
    assert s.loc["overlap-breaking", "sd_after"] < s.loc["random pool", "sd_after"] < s.loc["random pool", "sd_before"]
    assert s.loc["overlap-breaking", "reduction_ratio_vs_random"] > 2
    held = design.pool_one_factor(bt_fit, pool, "x1", tol=0.25)
    assert len(held) and (held["max_diff_held"] <= 0.25).all()


# -- bad input ----------------------------------------------------------------------------------------------------
def test_bad_candidates_raise_data_errors(worth_fit, hier_fit):
    with pytest.raises(DataError, match="empty"):
        design.score(worth_fit, pd.DataFrame({"a": [], "b": []}))
    with pytest.raises(DataError, match="DataFrame"):
        design.score(worth_fit, [("o0", "o1")])
    with pytest.raises(DataError, match=r"unknown option.*'zz'"):
        design.score(worth_fit, pd.DataFrame({"a": ["o0", "zz"], "b": ["o1", "o2"]}))
    with pytest.raises(DataError, match="have no covariates"):
        design.score(hier_fit, pd.DataFrame({"a": ["o0"], "b": ["o1"], "user": ["stranger"]}))
    with pytest.raises(DataError, match="columns"):
        design.score(worth_fit, pd.DataFrame({"first": ["o0"], "second": ["o1"]}))


def test_targets_the_model_cannot_express_raise_model_errors(worth_fit, bt_fit, types_fit):
    pool = pd.DataFrame({"a": ["o0"], "b": ["o1"]})
    with pytest.raises(ModelError, match="no user-level or group effects"):
        design.score(worth_fit, pool, design.contrast("group", "B", "A", effect="o0"))
    with pytest.raises(ModelError, match="latent user types"):
        design.score(worth_fit, pool, design.membership("u0"))
    with pytest.raises(ModelError, match="no weight for 'x9'"):
        design.score(bt_fit, features_frame(3, prefix="c"), design.weight("x9"))
    with pytest.raises(ModelError, match="worth per option"):
        design.score(worth_fit, pool, design.amce("x1"))
    with pytest.raises(ModelError, match="type=k"):
        design.score(types_fit, pool, design.top_k(2))
    with pytest.raises(DataError, match="k=9"):
        design.score(worth_fit, pool, design.top_k(9))
    with pytest.raises(ModelError, match="pass a target"):
        design.score(worth_fit, pool, "the best one")
    with pytest.raises(ModelError, match="continuous target"):
        design.select(worth_fit, pool, design.top_k(2), n=1, method="ensemble")
    with pytest.raises(DataError, match="batch size"):
        design.select(worth_fit, pool, None, n=0)


# -- slow: statistical checks on real fits ---------------------------------------------------------------------------
@pytest.mark.slow
def test_onboarding_reaches_the_true_type_sooner_than_random_pairs():
    sim = bp.simulate.latent_types(n_users=120, comparisons_per_user=20, n_options=10, n_types=3, seed=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = bp.fit(bp.LatentTypes(n_types=3), sim.comparisons(), seed=1, chains=2, warmup=400, draws=400,
                     progress=False)
    fitted = fit.idata.posterior["worth"].mean(("chain", "draw")).values
    match = np.array([np.argmax([np.corrcoef(t, f)[0, 1] for f in fitted]) for t in sim.truth["worth"]])
    opts = list(fit.data.options)
    rng = np.random.default_rng(0)
    need = {"eig": [], "random": []}
    for _ in range(20):
        z = rng.integers(0, 3)
        truth = sim.truth["worth"][z]
        for how, asked in need.items():
            ob = design.Onboarding(fit)
            while len(ob.answers) < 15 and ob.membership().iloc[match[z]] < 0.9:
                q = ob.next(1) if how == "eig" else ob.pool[~ob.asked].sample(1, random_state=rng)
                a, b = q["a"].iloc[0], q["b"].iloc[0]
                ob.record(a, b, float(rng.random() < expit(truth[opts.index(a)] - truth[opts.index(b)])))
            asked.append(len(ob.answers) + (ob.membership().iloc[match[z]] < 0.9))
    assert np.median(need["eig"]) < np.median(need["random"])


@pytest.mark.slow
def test_sequential_loop_eig_beats_random_on_a_weight():
    w = np.array([0.5, 1.5])

    def truth(rows):
        return expit((rows[["x1_a", "x2_a"]].to_numpy() - rows[["x1_b", "x2_b"]].to_numpy()) @ w)

    initial = features_frame(150, rho=0.9, seed=1, prefix="i")
    pool = pd.concat([features_frame(300, rho=0.9, seed=2, prefix="p"),
                      features_frame(100, rho=-0.5, seed=3, prefix="q")], ignore_index=True).drop(columns="outcome")
    res = design.sequential(bp.BradleyTerry(), initial, pool, truth, design.weight("x1"),
                            data_options={"features": ["x1", "x2"]}, per_step=40, steps=3, seeds=[0, 1],
                            fit_options={"chains": 2, "warmup": 300, "draws": 300, "log_likelihood": False})
    h = res.history
    last = h[h["step"] == 3].groupby("strategy")["sd"].mean()
    assert last["eig"] < last["random"]
    fig = res.plot(width=0.8)
    assert fig.axes and res.summary(0.8).loc["eig", "seeds"] == 2


@pytest.mark.slow
def test_readme_design_snippet_runs():
    import pathlib

    readme = (pathlib.Path(__file__).resolve().parents[2] / "README.md").read_text()
    block = readme.split("<!-- readme-snippet: design -->")[1].split("<!-- /readme-snippet -->")[0]
    code = block.split("```python")[1].split("```")[0]
    ns: dict = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exec(compile(code, "README.md (design)", "exec"), ns)
    assert len(ns["batch"]) == 40 and ns["batch"]["user"].value_counts().max() <= 3
    assert ns["batch"].attrs["target_sd_after"] < ns["batch"].attrs["target_sd_before"]
    assert ns["ranked"]["eig"].is_monotonic_decreasing
