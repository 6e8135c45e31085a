"""Sensitivity analysis for an unobserved user-level confounder (bayespref.sensitivity).

Default tests: the U-augmented likelihood against brute-force enumeration, grid-mode outputs on a
small fit, formulas, errors and the CLI. Slow tests (``pytest -m slow``): the statistical claims on
simulated confounded data (naive bias, coverage at the true sensitivity parameters, monotone bias,
tipping point growing with the effect), agreement with exact NUTS refits, the closed-form
omitted-variable bias in a linear-Gaussian case, and prior mode.
"""

from __future__ import annotations

import json
import math
import pathlib
import warnings

import numpy as np
import pandas as pd
import pytest

import bayespref as bp
from bayespref import sensitivity as sa
from bayespref.errors import DataError, FitError, ModelError

ROOT = pathlib.Path(__file__).resolve().parents[2]
SMALL = {"steps": 200, "warm_steps": 800, "num_samples": 300, "anchors": None}


def _fit(data, model=None, **kw):
    settings = {"chains": 2, "warmup": 300, "draws": 300, "progress": False, "seed": 1}
    settings.update(kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bp.ConvergenceWarning)
        return bp.fit(model or bp.Hierarchical(correlated=False), data, **settings)


@pytest.fixture(scope="module")
def small():
    sim = sa.simulate_confounded(n_users=40, comparisons_per_user=20, n_options=20, seed=3)
    return sim, _fit(sim.comparisons(), chains=2, warmup=200, draws=200)


@pytest.fixture(scope="module")
def small_grid(small):
    _, fit = small
    return sa.grid(fit, sa.group_contrast("group[B]", "x0"), gamma=[0.0, 1.0, 2.0], delta=[0.0, 1.5, 3.0], **SMALL)


# ---------------------------------------------------------------------------------------------------
# the augmented likelihood
# ---------------------------------------------------------------------------------------------------
def test_augmented_likelihood_matches_enumeration(small):
    """log p(y | theta, gamma, delta) with U summed out equals brute-force enumeration per user."""
    import jax.numpy as jnp
    import numpyro
    from numpyro.infer.util import log_density

    _, fit = small
    prob = sa._Problem(fit, sa.group_contrast("group[B]", "x0"))
    model = prob.model()
    post = fit.idata.posterior
    params = {k: jnp.asarray(post[k].values[0, 5]) for k in ("weight", "group_weight", "sd_weight", "z")}
    gamma, delta = 1.3, -0.7
    ld, tr = log_density(model, (prob.arrays,), {"gamma": gamma, "delta": delta}, params)
    ld0, _ = log_density(model, (prob.arrays,), {"gamma": 0.0, "delta": delta}, params)
    base_ld, base_tr = log_density(fit.model.bind(fit.data), (fit.model.arrays(fit.data),), {}, params)
    np.testing.assert_allclose(float(ld0), float(base_ld), rtol=1e-5)  # gamma = 0: the fitted model

    # by hand: per-user weights from the trace, then U in {0, 1}
    W = np.asarray(tr["user_weight"]["value"], float)
    d = fit.data
    X = d.option_features.loc[d.options, ["x0", "x1"]].to_numpy()
    dx = X[d.a] - X[d.b]
    lin = np.sum(dx * W[d.user], 1)
    y = np.asarray(d.y, float)

    def loglik(eta, y):
        return y * -np.logaddexp(0, -eta) + (1 - y) * -np.logaddexp(0, eta)
    e = np.asarray(d.covariates)[:, list(d.covariate_names).index("group[B]")]
    e = e - e.mean()
    total = 0.0
    for u in range(d.n_users):
        rows = d.user == u
        p1 = 1 / (1 + np.exp(-(0.0 + delta * e[u])))
        l0 = loglik(lin[rows], y[rows]).sum()
        l1 = loglik(lin[rows] + gamma * dx[rows, 0], y[rows]).sum()
        total += np.logaddexp(np.log1p(-p1) + l0, np.log(p1) + l1)
    prior = float(ld0) - float(jnp.sum(base_tr["y"]["fn"].log_prob(base_tr["y"]["value"])))
    np.testing.assert_allclose(float(ld) - prior, total, rtol=1e-5)
    assert numpyro  # imported for the handlers used by log_density


# ---------------------------------------------------------------------------------------------------
# grid mode on a small fit
# ---------------------------------------------------------------------------------------------------
def test_grid_outputs_are_labelled_and_consistent(small, small_grid):
    _, fit = small
    res = small_grid
    s = res.summary
    assert s["mean"].dims == ("gamma", "delta")
    assert res.draws.dims == ("gamma", "delta", "sample")
    # gamma = 0 is the fitted model, whatever delta
    ref = fit.idata.posterior["group_weight"].sel(covariate="group[B]", feature="x0").values.ravel()
    for d in res.delta:
        np.testing.assert_allclose(s["mean"].sel(gamma=0.0, delta=d), ref.mean(), rtol=1e-5)
        np.testing.assert_allclose(s["sd"].sel(gamma=0.0, delta=d), ref.std(ddof=1), rtol=1e-4)
    # stronger confounding in the direction of the estimate pulls it down, monotonically
    m = s["mean"].values
    assert np.all(np.diff(m[:, 1:], axis=0) < 0) and np.all(np.diff(m[1:, :], axis=1) < 0)
    t = res.table()
    assert {"gamma", "delta", "mean", "sd", "lower", "upper", "includes_null"} <= set(t.columns)
    assert len(t) == 9
    json.dumps(res.report())  # JSON-ready


def test_tipping_and_summaries(small_grid):
    res = small_grid
    curve = res.tipping_curve()
    assert curve.dims == ("delta",)
    assert np.isnan(curve.sel(delta=0.0))  # U unrelated to the group cannot tip it
    tp = res.tipping_point()
    nv = res.naive()
    assert nv["lower"] > 0  # the fitted contrast is clearly positive
    if np.isfinite(tp["t"]):
        at = res.summary["lower"].interp(gamma=tp["gamma"], delta=tp["delta"])
        assert abs(float(at)) < 0.05 * nv["sd"] + 1e-6
    rv = res.robustness_value()
    f = rv["partial_f"]
    assert rv["rv_q"] == pytest.approx(0.5 * (math.sqrt(f ** 4 + 4 * f ** 2) - f ** 2))
    assert 0 < rv["rv_q_alpha"] < rv["rv_q"] < 1
    ev = res.evalue()
    rr = math.sqrt(math.exp(nv["mean"]))
    assert ev["evalue"] == pytest.approx(rr + math.sqrt(rr * (rr - 1)))
    assert 1 < ev["evalue_bound"] < ev["evalue"]


def test_evalue_formula_known_value():
    # VanderWeele & Ding: RR = 2 gives E = 2 + sqrt(2) = 3.41; for a common outcome OR = RR^2
    assert sa._evalue_from_or(4.0) == pytest.approx(2 + math.sqrt(2))
    assert sa._evalue_from_or(0.25) == pytest.approx(2 + math.sqrt(2))


def test_benchmarks_and_plots(small_grid):
    import matplotlib.figure

    b = small_grid.benchmarks(multiples=(1, 2))
    assert list(b.index.unique()) == ["trait[yes]"]
    assert np.all(np.isfinite(b[["gamma", "delta"]].to_numpy()))
    assert (b["delta"] > 0).all()  # the trait is more common in group B by construction
    fig = small_grid.plot_contour()
    assert isinstance(fig, matplotlib.figure.Figure)
    fig2 = small_grid.plot_intervals()
    assert isinstance(fig2, matplotlib.figure.Figure) and len(fig2.axes) == 2
    import matplotlib.pyplot as plt

    plt.close("all")


def test_feature_effect_and_preference_estimands(small):
    import jax.numpy as jnp

    _, fit = small
    post = fit.idata.posterior
    cbar = np.asarray(fit.data.covariates).mean(0)
    prob = sa._Problem(fit, sa.feature_effect("x0"))
    ref = post["weight"].sel(feature="x0") + (post["group_weight"].sel(feature="x0") * cbar).sum("covariate")
    np.testing.assert_allclose(prob.reference_draws(), ref.values.ravel(), rtol=1e-4, atol=1e-6)
    # the population average adds the U = 1 users' extra weight: gamma * mean_u P(U_u = 1 | e_u)
    sample = {k: jnp.asarray(post[k].values[0, 0]) for k in prob.sites()}
    f = prob.value_fn()
    e = prob.exposure
    assert not prob.binary and abs(e.mean()) < 1e-9 and abs(e.std() - 1) < 1e-6  # standardised exposure
    pbar = np.mean(1 / (1 + np.exp(-1.5 * e)))
    np.testing.assert_allclose(float(f(sample, 2.0, 1.5) - f(sample, 0.0, 1.5)), 2.0 * pbar, rtol=1e-5)
    # the shift direction is the feature difference
    d = fit.data
    X = d.option_features.loc[d.options, "x0"].to_numpy()
    np.testing.assert_allclose(prob.shift, X[d.a] - X[d.b], rtol=1e-6)

    opts = list(fit.data.options)
    pp = sa._Problem(fit, sa.preference(opts[0], opts[1], group={"group": "B"}))
    assert pp.exposure_name.startswith("in group") and pp.binary
    g = pp.value_fn()
    w = sample["weight"] + sample["group_weight"][0]  # group B, trait at its average
    w = w + sample["group_weight"][1] * cbar[1]
    x = fit.data.option_features.loc[[opts[0], opts[1]], ["x0", "x1"]].to_numpy()
    delta_ab = float((x[0] - x[1]) @ np.asarray(w))
    np.testing.assert_allclose(float(g(sample, 0.0, 0.0)), 1 / (1 + np.exp(-delta_ab)), rtol=1e-5)
    pb = 0.5  # delta = 0: P(U = 1) is the prevalence
    want = (1 - pb) / (1 + np.exp(-delta_ab)) + pb / (1 + np.exp(-delta_ab - 1.0))
    np.testing.assert_allclose(float(g(sample, 1.0, 0.0)), want, rtol=1e-5)


def test_errors_name_the_problem(small):
    _, fit = small
    with pytest.raises(ModelError, match="not a covariate"):
        sa.grid(fit, sa.group_contrast("colour[red]", "x0"))
    with pytest.raises(ModelError, match="neither a feature"):
        sa.grid(fit, sa.group_contrast("group[B]", "x9"))
    with pytest.raises(ModelError, match="prevalence"):
        sa.grid(fit, sa.feature_effect("x0"), prevalence=1.0)
    with pytest.raises(ModelError, match="exposure"):
        sa.grid(fit, sa.feature_effect("x0"), exposure="height")
    with pytest.raises(DataError, match="lacks"):
        sa.grid(fit, sa.feature_effect("x0"), exposure=pd.Series([1.0, 2.0], index=["u000", "u001"]))
    with pytest.raises(FitError, match="Fit"):
        sa.grid("not a fit", sa.feature_effect("x0"))
    for steps in (5, 2.5, True):
        with pytest.raises(ModelError, match="steps=.*at least 6"):
            sa.grid(fit, sa.feature_effect("x0"), steps=steps)
    with pytest.raises(ModelError, match="estimand"):
        sa.grid(fit, {"estimand": "odds"})
    with pytest.raises(ModelError, match="non-empty"):
        sa.grid(fit, sa.feature_effect("x0"), gamma=[], delta=[0.0])
    with pytest.raises(ModelError, match="loc, scale"):
        sa.prior(fit, sa.feature_effect("x0"), gamma=(0.0, -1.0))
    with pytest.raises(ModelError, match="level"):
        sa.grid(fit, sa.preference("o000", "o001", group={"group": "C"}))
    bt = bp.Fit(fit.idata, bp.BradleyTerry(), fit.data)  # the check comes before any sampling
    with pytest.raises(ModelError, match="user covariates"):
        sa.grid(bt, sa.group_contrast("group[B]", "x0"))


# ---------------------------------------------------------------------------------------------------
# command line
# ---------------------------------------------------------------------------------------------------
def test_cli_writes_report(small, tmp_path, capsys):
    """The CLI on the small fixture's data and settings (same shapes: JAX's compilation cache is reused)."""
    from bayespref.cli import main

    sim, _ = small
    sim.frame.to_csv(tmp_path / "judgements.csv", index=False)
    sim.option_table.to_csv(tmp_path / "options.csv")
    sim.user_table.to_csv(tmp_path / "users.csv")
    spec = tmp_path / "sens.toml"
    spec.write_text("""
name = "sens_test"
[data]
path = "judgements.csv"
user = "user"
option_table = "options.csv"
user_table = "users.csv"
[model]
family = "Hierarchical"
correlated = false
[inference]
seed = 1
chains = 2
warmup = 200
draws = 200
[sensitivity]
estimand = "group_contrast"
covariate = "group[B]"
effect = "x0"
gamma = [0.0, 1.0, 2.0]
delta = [0.0, 1.5, 3.0]
steps = 200
warm_steps = 800
num_samples = 300
anchors = false
""")
    out = tmp_path / "report"
    rc = main(["sensitivity", str(spec), "--out", str(out), "--quick", "--no-progress"])
    assert rc == 0, capsys.readouterr().err
    names = {p.name for p in out.iterdir()}
    assert {"sensitivity.csv", "summary.json", "benchmarks.csv", "contour.png", "intervals.png", "spec.toml",
            "fit.nc"} <= names
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # nothing half-written left
    table = pd.read_csv(out / "sensitivity.csv")
    assert len(table) == 9
    summary = json.loads((out / "summary.json").read_text())
    assert summary["estimand"]["covariate"] == "group[B]"
    assert list(pd.read_csv(out / "benchmarks.csv")["covariate"].unique()) == ["trait[yes]"]
    assert "Tipping point" in capsys.readouterr().out
    # a bad [sensitivity] key is refused before any fitting
    spec.write_text(spec.read_text().replace("anchors = false", "anchor = false"))
    assert main(["sensitivity", str(spec), "--out", str(out), "--quick", "--no-progress"]) == 2
    assert "anchor" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------------
# slow statistical checks
# ---------------------------------------------------------------------------------------------------
TRUE_GAMMA, TRUE_DELTA = 1.5, 2.0


@pytest.mark.slow
def test_naive_bias_and_coverage_at_true_parameters():
    """Hidden U: the naive contrast misses the truth; at the true (gamma, delta) the 90% interval of
    the augmented model (exact NUTS refit, i.e. a grid anchor) covers it in >= 85% of seeds.

    Design: 400 users x 30 judgements. At 100 users the fitted model is biased upward by about half a
    posterior SD at this design even with U observed (the oracle covers 16/20 there, the exact refit
    14/20; 30 judgements per user hold little information about the large x0 weights, and the
    small-sample bias of the logistic hierarchical fit shrinks with the number of users: at 400 the
    oracle's mean is within 0.03 of the truth). See ``benchmarks/bench_sensitivity.py coverage`` and the
    sensitivity section of benchmarks/RESULTS.md."""
    naive_miss, covered, rows = 0, 0, []
    for seed in range(20):
        sim = sa.simulate_confounded(n_users=400, comparisons_per_user=30, effect=0.5, gamma=TRUE_GAMMA,
                                     delta=TRUE_DELTA, seed=100 + seed)
        fit = _fit(sim.comparisons(), chains=2, warmup=400, draws=400, seed=seed)
        est = sa.group_contrast("group[B]", "x0")
        exact = sa.grid(fit, est, gamma=[TRUE_GAMMA], delta=[TRUE_DELTA], method="nuts", benchmark=False,
                        nuts={"chains": 2, "warmup": 400, "draws": 400}, seed=seed)
        nv = exact.naive()
        e = exact.summary.isel(gamma=0, delta=0)
        naive_miss += nv["lower"] > 0.5
        covered += float(e["lower"]) <= 0.5 <= float(e["upper"])
        rows.append((seed, nv["mean"], nv["lower"], float(e["mean"]), float(e["sd"]), float(e["lower"]),
                     float(e["upper"])))
        print(rows[-1], flush=True)
    print(pd.DataFrame(rows, columns=["seed", "naive", "naive_lower", "exact", "exact_sd", "exact_lower",
                                      "exact_upper"]).round(3).to_string())
    print(f"naive interval above the truth: {naive_miss}/20; coverage at the true parameters: exact {covered}/20")
    assert naive_miss >= 16
    assert covered >= 17  # >= 85%


@pytest.mark.slow
def test_bias_monotone_and_tipping_point_grows_with_effect():
    tips = {}
    for effect in (0.5, 1.0):
        sim = sa.simulate_confounded(n_users=100, comparisons_per_user=30, effect=effect, gamma=TRUE_GAMMA,
                                     delta=TRUE_DELTA, seed=7)
        fit = _fit(sim.comparisons(), chains=4, warmup=400, draws=400)
        gam = np.array([0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0])
        dl = np.array([0.0, 1.0, 2.0, 3.0, 4.0])
        # grid mode as shipped: the variational grid calibrated by the default NUTS anchors (gamma 1.5
        # and 3, delta 0, 2 and 4 here); the variational grid alone under-shifts at gamma = 3 and was
        # not monotone there (2.5 -> 3.0 at delta = 2: |bias| 0.327 -> 0.316)
        res = sa.grid(fit, sa.group_contrast("group[B]", "x0"), gamma=gam, delta=dl, steps=1000, warm_steps=3000,
                      num_samples=1000, anchors=(2, 3))
        m = res.summary["mean"]
        # |bias| grows as the assumed strength moves away from the truth, in either parameter
        bias_g = np.abs(m.sel(delta=TRUE_DELTA).values - effect)
        k = int(np.argmin(bias_g))
        assert abs(gam[k] - TRUE_GAMMA) <= 0.5
        assert np.all(np.diff(bias_g[k:]) > 0) and np.all(np.diff(bias_g[:k + 1]) < 0)
        bias_d = np.abs(m.sel(gamma=TRUE_GAMMA).values - effect)
        j = int(np.argmin(bias_d))
        assert abs(dl[j] - TRUE_DELTA) <= 1.0
        assert np.all(np.diff(bias_d[j:]) > 0) and np.all(np.diff(bias_d[:j + 1]) < 0)
        tips[effect] = res.tipping_point()["t"]
        print(effect, res.naive(), res.tipping_point(), res.robustness_value())
    assert np.isfinite(tips[0.5]) and np.isfinite(tips[1.0])
    assert tips[1.0] > tips[0.5]


@pytest.mark.slow
def test_grid_matches_exact_refits():
    """Grid mode (variational grid calibrated by NUTS anchors at the largest gamma) vs independent
    NUTS refits at every point of a small grid: posterior means within 0.1 posterior SD. Interval
    ends are printed, not asserted: the Monte Carlo SE of a 5 % quantile from ~1000 effective draws
    is ~0.07 SD, so two independent runs differ by ~0.1 SD from noise alone. The variational grid
    without anchors is reported alongside."""
    sim = sa.simulate_confounded(n_users=100, comparisons_per_user=30, seed=1)
    fit = _fit(sim.comparisons(), chains=4, warmup=500, draws=500)
    est = sa.group_contrast("group[B]", "x0")
    gam, dl = [0.0, 0.75, 1.5], [0.0, 1.0, 2.0]
    kw = {"gamma": gam, "delta": dl, "steps": 1500, "warm_steps": 4000, "num_samples": 1000, "benchmark": False}
    fast = sa.grid(fit, est, anchors=(1, 3), nuts={"chains": 4, "warmup": 500, "draws": 500}, **kw)
    plain = sa.grid(fit, est, anchors=None, **kw)
    exact = sa.grid(fit, est, gamma=gam[1:], delta=dl, method="nuts", nuts={"chains": 4, "warmup": 500, "draws": 500},
                    seed=11, benchmark=False)
    b = exact.summary
    print(fast.info["anchors"].round(3).to_string())
    for name, res in (("variational only", plain), ("with anchors", fast)):
        a = res.summary.sel(gamma=gam[1:])
        for var in ("mean", "lower", "upper"):
            print(name, var, np.round(((a[var] - b[var]) / b["sd"]).values, 3))
    err = ((fast.summary["mean"].sel(gamma=gam[1:]) - b["mean"]) / b["sd"]).values
    assert np.all(np.abs(err) < 0.1), err


@pytest.mark.slow
def test_linear_gaussian_matches_omitted_variable_bias():
    """Observed latent utilities (Gaussian): the grid equals the closed-form omitted-variable bias,
    gamma x imbalance (Cinelli-Hazlett: bias = impact x imbalance), where the binary U's mixture is
    close to a mean shift (gamma small against the noise SD 1; the gap grows like gamma^2). With 6,000
    steps per point the fits agree to 0.001 SD on seeds 0-3; with 2,000 the optimisation's noise
    left gaps of 0.01-0.14 SD (benchmarks/RESULTS.md, "SVI's stopping rule"). The grid's drift check
    stays quiet on the settled grid and flags an unsettled one."""
    import numpyro
    import numpyro.distributions as dist

    rng = np.random.default_rng(5)
    n = 400
    D = (np.arange(n) % 2).astype(float)
    U = (rng.random(n) < 1 / (1 + np.exp(-1.5 * (D - 0.5)))).astype(float)
    y = 0.2 + 0.3 * D + 0.4 * U + rng.normal(size=n)
    users = [f"u{i:03d}" for i in range(n)]
    frame = pd.DataFrame({"a": "x", "b": "z", "outcome": 1, "user": users, "x0_a": 1.0, "x0_b": 0.0,
                          "ystar_a": y, "ystar_b": 0.0})
    data = bp.Comparisons.from_frame(frame, user="user", features=["x0", "ystar"],
                                     user_covariates=pd.DataFrame({"D": D}, index=pd.Index(users, name="user")),
                                     check_connected=False)

    def linear(data, *, n_options, n_users, n_features, n_covariates, predict=False, batch=None):
        with numpyro.plate("feature", n_features):
            w = numpyro.sample("weight", dist.Normal(0.0, 5.0))
        with numpyro.plate("covariate", n_covariates, dim=-2), numpyro.plate("feature", n_features, dim=-1):
            g = numpyro.sample("group_weight", dist.Normal(0.0, 5.0))
        sigma = numpyro.sample("sigma", dist.HalfNormal(2.0))
        with numpyro.plate("comparison", data["a"].shape[0]):
            dx = data["xa"] - data["xb"]
            loc = (w[0] + data["ucov"] @ g[:, 0]) * dx[:, 0]
            numpyro.sample("y", dist.Normal(loc, sigma), obs=dx[:, 1])

    spec = bp.models.CustomModel(linear, dims={"weight": ["feature"], "group_weight": ["covariate", "feature"]})
    fit = _fit(data, spec, chains=4, warmup=500, draws=1000)
    gam, dl = np.array([0.0, 0.1, 0.2]), np.array([0.0, 1.0, 2.0])
    e = D - D.mean()

    def gaps(res):
        nv, out = res.naive(), []
        for g in gam[1:]:
            for d in dl:
                pi = 1 / (1 + np.exp(-d * e))
                imbalance = pi[D == 1].mean() - pi[D == 0].mean()  # OLS coefficient of U's expectation on D
                expected = nv["mean"] - g * imbalance
                out.append(abs(float(res.summary["mean"].sel(gamma=g, delta=d)) - expected) / nv["sd"])
        return np.array(out)

    def run(steps, seed):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            res = sa.grid(fit, sa.group_contrast("D", "x0"), gamma=gam, delta=dl, steps=steps, warm_steps=4000,
                          num_samples=2000, anchors=None, benchmark=False, seed=seed)
        return res, [w for w in caught if issubclass(w.category, bp.ConvergenceWarning)]

    res, warned = run(6000, 0)
    print(gaps(res), res.info["drift_sd"])
    assert np.all(gaps(res) < 0.05)
    assert not warned and res.info["unsettled"] == 0      # settled fits are not flagged
    # an under-converged grid (1,500 steps, this seed: 0.19 SD off) is flagged by the drift check
    res, warned = run(1500, 2)
    print(gaps(res), res.info["drift_sd"])
    assert gaps(res).max() > 0.1 and res.info["unsettled"] > 0
    assert warned and "still moving" in str(warned[0].message)


@pytest.mark.slow
def test_prior_mode_widens_and_contains_grid_range():
    sim = sa.simulate_confounded(n_users=100, comparisons_per_user=30, seed=2)
    fit = _fit(sim.comparisons(), chains=4, warmup=400, draws=400)
    est = sa.group_contrast("group[B]", "x0")
    g0, d0 = 0.75, 1.0
    widths, prev = [], 0.0
    for s in (0.25, 0.5, 1.0):
        pr = sa.prior(fit, est, gamma=(g0, s), delta=(d0, s), chains=4, warmup=400, draws=400, seed=1)
        lo, hi = pr.interval()
        box = sa.grid(fit, est, gamma=[g0 - s, g0, g0 + s], delta=[d0 - s, d0, d0 + s], steps=1000,
                      warm_steps=3000, num_samples=1000, anchors=None, benchmark=False)
        m = box.summary["mean"].values
        print(s, (lo, hi), (m.min(), m.max()), pr.summary())
        assert lo <= m.min() and m.max() <= hi
        widths.append(hi - lo)
        assert hi - lo > prev
        prev = hi - lo


@pytest.mark.slow
def test_latent_types_group_contrast():
    sim = bp.simulate.latent_types(n_users=120, comparisons_per_user=20, n_options=8, covariate_shift=(0.2, 0.8),
                                   seed=4)
    fit = _fit(sim.comparisons(), bp.LatentTypes(n_types=2), chains=2, warmup=300, draws=300)
    opts = list(fit.data.options)
    res = sa.grid(fit, sa.group_contrast("group[B]", opts[0], reference=opts[1]), gamma=[0.0, 1.0, 2.0],
                  delta=[0.0, 2.0], steps=800, warm_steps=2000, num_samples=500, anchors=None)
    assert np.all(np.isfinite(res.summary["mean"].values))
    # gamma = 0 reproduces the fitted model's contrast
    np.testing.assert_allclose(res.summary["mean"].sel(gamma=0.0).values, res.naive()["mean"], rtol=1e-5)


def test_confounder_shift_of_davidson_ties_moves_the_reward_difference():
    """U's shift enters a tied outcome model as a shift of d, as for the categorical form."""
    import jax.numpy as jnp
    import numpyro.distributions as dist

    from bayespref.analyses.sensitivity.likelihood import _shifted
    from bayespref.models.likelihood import outcome_distribution

    d, shift, y = jnp.array([-1.0, 0.2, 2.5]), jnp.array([0.7, -0.4, 1.1]), jnp.array([0, 2, 1])
    got = _shifted(outcome_distribution(d, log_tie=-0.8), shift).log_prob(y)
    want = dist.Categorical(logits=jnp.stack([-(d + shift) / 2, (d + shift) / 2, jnp.full(3, -0.8)], -1)).log_prob(y)
    np.testing.assert_allclose(got, want, rtol=1e-6)
