"""method="laplace": users' effects integrated out by (importance-corrected) Laplace, globals Gaussian."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import bayespref as bp
from bayespref.errors import BayesprefError, ModelError
from bayespref.inference.laplace import LaplaceSettings, user_marginals


def _quadrature(dx, y, m, s, pos):
    """log of the integral over z of prod_j Bernoulli(y_j | sigmoid(dx_j (m + s z) + pos)) N(z; 0, 1)."""
    z = np.linspace(-12, 12, 24001)
    eta = dx[:, None] * (m + s * z[None]) + pos
    ll = np.sum(y[:, None] * eta - np.logaddexp(0, eta), 0) - 0.5 * z**2 - 0.5 * np.log(2 * np.pi)
    top = ll.max()
    return top + np.log(np.trapezoid(np.exp(ll - top), z))


def test_user_marginals_match_quadrature():
    """One feature, three users (one nearly separable): Laplace within 0.1, importance-corrected within 0.01."""
    rng = np.random.default_rng(0)
    J = 12
    dx = rng.normal(size=(1, 3, J)).transpose(1, 0, 2)  # (user, feature, slot)
    y = np.stack([rng.random(J) < 0.5, dx[1, 0] > 0, rng.random(J) < 0.8]).astype(float)
    mask = np.ones((3, J))
    mask[2, 8:] = 0  # a user with fewer judgements (padding)
    m, S, pos = np.array([[0.3], [0.5], [-0.2]]), np.array([[1.5]]), 0.1
    truth = np.array([_quadrature(dx[u, 0][mask[u] > 0], y[u][mask[u] > 0], m[u, 0], 1.5, pos) for u in range(3)])
    args = [jnp.asarray(a, jnp.float32) for a in (dx, y, mask, m, S)]
    z0 = jnp.zeros((3, 1), jnp.float32)
    plain, zhat, _ = user_marginals(*args, pos, z0, max_newton=20, tol=1e-5)
    eps = jax.random.normal(jax.random.PRNGKey(1), (4000, 3, 1))
    corrected, _, _ = user_marginals(*args, pos, z0, max_newton=20, tol=1e-5, eps=eps)
    assert np.max(np.abs(np.asarray(plain) - truth)) < 0.1
    assert np.max(np.abs(np.asarray(corrected) - truth)) < 0.01
    # the mode is a stationary point of the joint log density
    grad = jax.grad(lambda z: jnp.sum(args[2] * (args[1] * (jnp.einsum("ufj,uf->uj", args[0], args[3] + z * 1.5) + pos)
                                                  - jax.nn.softplus(jnp.einsum("ufj,uf->uj", args[0], args[3] + z * 1.5)
                                                                    + pos))) - 0.5 * jnp.sum(z * z))(zhat)
    assert np.max(np.abs(np.asarray(grad))) < 1e-3


@pytest.mark.slow  # a statistical check (9 s); the correction's arithmetic is tested in the default suite
def test_importance_correction_reduces_the_bias_with_few_draws():
    """Two features, wide user SDs: 8 draws from the plain Laplace Gaussian leave the log marginal biased
    low; the default (a widened proposal, plus the delta-method term) removes most of it."""
    rng = np.random.default_rng(0)
    U, J, E = 4, 10, 2
    dx, y = rng.normal(size=(E, U, J)).transpose(1, 0, 2), (rng.random((U, J)) < 0.6).astype(float)
    args = [jnp.asarray(a, jnp.float32) for a in (dx, y, np.ones((U, J)), rng.normal(size=(U, E)) * 0.3, 2 * np.eye(E))]
    z0, kw = jnp.zeros((U, E)), {"max_newton": 20, "tol": 1e-5}
    exact = user_marginals(*args, 0.0, z0, eps=jax.random.normal(jax.random.PRNGKey(9), (200_000, U, E)), **kw)[0]
    draws = jax.random.normal(jax.random.PRNGKey(2), (400, 8, U, E))

    def bias(**opts):
        est = jax.vmap(lambda e: user_marginals(*args, 0.0, z0, eps=e, **kw, **opts)[0])(draws)
        return float(np.mean(np.abs(np.asarray(est).mean(0) - np.asarray(exact))))

    raw = bias(debias=False, widen=1.0)
    default = bias(widen=LaplaceSettings().widen)
    plain = float(np.mean(np.abs(np.asarray(user_marginals(*args, 0.0, z0, **kw)[0] - exact))))
    assert raw < 0.5 * plain          # importance sampling already helps the plain Laplace formula
    assert default < 0.6 * raw, (raw, default)


@pytest.mark.slow  # statistical recovery (~15 s); the README's design snippet runs method="laplace" end to end
def test_laplace_fit_recovers_globals():
    """400 users x 30 judgements, 2 features: population weights within 3 posterior SDs of the truth."""
    sim = bp.simulate.hierarchical(n_users=400, comparisons_per_user=30, n_options=100, n_features=2,
                                   weight_mean=[1.0, -0.5], user_sd=0.5, seed=3)
    fit = bp.fit(bp.Hierarchical(), sim.comparisons(), method="laplace", num_samples=300, progress=False,
                 log_likelihood=False, seed=0)
    post = fit.idata.posterior
    assert fit.info["method"] == "laplace" and fit.info["laplace_converged"]
    assert fit.info["laplace_covariance"] == "hessian"
    report = bp.checks.convergence(fit)
    assert report.method == "laplace" and report.ok and report.stats["laplace_evaluations"] > 1
    assert post["user_weight"].shape == (1, 300, 400, 2)
    for name in ("weight", "sd_weight"):
        d = post[name].values.reshape(300, -1)
        z = (d.mean(0) - np.asarray(sim.truth[name], float)) / d.std(0)
        assert np.all(np.abs(z) < 3), (name, z)
        assert np.all(d.std(0) > 0.01)
    # the users' conditional draws centre on their effects
    uw = post["user_weight"].values.reshape(300, 400, 2).mean(0)
    assert np.corrcoef(uw[:, 0], np.asarray(sim.truth["user_weight"])[:, 0])[0, 1] > 0.7


def test_laplace_user_design_gives_the_models_reward_differences():
    """The per-user design the Laplace method integrates over reproduces the model's differences."""
    from bayespref.inference.laplace import user_design

    sim = bp.simulate.hierarchical(n_users=12, comparisons_per_user=9, n_options=7, n_features=2, seed=1)
    data = sim.comparisons()
    spec = bp.Hierarchical(varying=["worths", "features"])
    grouped, sizes = spec.by_user_arrays(data), spec.sizes(data)
    v = np.random.default_rng(0).normal(size=(data.n_users, data.n_options + 2))
    blocks = spec.effect_blocks(data.n_options, 2)
    expect = np.asarray(spec._grouped_differences(grouped, jnp.asarray(v, jnp.float32), blocks, None, None))
    # with the layout's dense one-hot worths, and built from the options shown (many options)
    for layout in (grouped, {k: g for k, g in grouped.items() if k != "dw"}):
        X = np.asarray(user_design(spec, data, layout, sizes))                  # (U, O + F, J)
        np.testing.assert_allclose(np.einsum("uej,ue->uj", X, v), expect, rtol=1e-5, atol=1e-5)


@pytest.mark.slow  # statistical check against NUTS (~40 s); keeps the default suite under 10 min
def test_laplace_with_user_varying_worths_agrees_with_nuts():
    """Arena-style judges (no ties), worths varying by judge and shifted by region: the Laplace fit's
    population worths, region effects and SDs against a NUTS fit of the same data."""
    sim = bp.simulate.arena(n_judges=150, battles_per_judge=40, user_sd=0.5, log_tie=-np.inf, seed=4)
    data = bp.Comparisons.from_arena(sim.battles, user_covariates=sim.judges)
    spec = bp.Hierarchical(varying="worths")
    lap = bp.fit(spec, data, method="laplace", seed=0, progress=False, num_samples=500, log_likelihood=False)
    nuts = bp.fit(spec, data, seed=0, progress=False, chains=2, warmup=500, draws=500, log_likelihood=False)
    assert lap.info["laplace_converged"]
    assert lap.idata.posterior["user_worth"].shape[2:] == (data.n_users, data.n_options)
    for name, tol in (("worth", 0.3), ("group_worth", 0.3), ("sd_worth", 1.0)):
        a, b = lap.summary(var_names=[name]), nuts.summary(var_names=[name])
        z = np.abs(a["mean"] - b["mean"]) / b["sd"]
        assert z.max() < tol, (name, z.max())
        ratio = a["sd"] / b["sd"]
        assert ratio.between(0.75, 1.35).all(), (name, ratio.min(), ratio.max())


def test_laplace_needs_every_effect_to_vary_by_user():
    sim = bp.simulate.hierarchical(n_users=20, comparisons_per_user=10, n_options=30, n_features=2, seed=0)
    data = sim.comparisons()
    with pytest.raises(ModelError, match="every effect the model uses must vary by user"):
        bp.fit(bp.Hierarchical(varying="features", worths=True), data, method="laplace", progress=False)
    with pytest.raises(ModelError, match="every effect the model uses must vary by user"):
        bp.fit(bp.Hierarchical(varying="worths"), data, method="laplace", progress=False)


def test_laplace_errors():
    sim = bp.simulate.hierarchical(n_users=20, comparisons_per_user=10, n_options=30, n_features=2, seed=0)
    data = sim.comparisons()
    with pytest.raises(ModelError, match="Hierarchical"):
        bp.fit(bp.BradleyTerry(), data, method="laplace", progress=False)
    with pytest.raises(ModelError, match="logit"):
        bp.fit(bp.Hierarchical(link="probit"), data, method="laplace", progress=False)
    with pytest.raises(ModelError, match="batch_size"):
        bp.fit(bp.Hierarchical(), data, method="laplace", batch_size=50, progress=False)
    with pytest.raises(ModelError, match="laplace_options"):
        bp.fit(bp.Hierarchical(), data, method="laplace", laplace_options={"newton": 3}, progress=False)
    with pytest.raises(ModelError, match="laplace_options"):
        bp.fit(bp.Hierarchical(), data, method="svi", laplace_options={"importance": 4}, progress=False)
    with pytest.raises(ModelError, match="covariance"):
        bp.fit(bp.Hierarchical(), data, method="laplace", laplace_options={"covariance": "exact"}, progress=False)
    # ties: Davidson's, on user-varying worths alone with independent SDs (the paired design), only
    arena = bp.simulate.arena(n_judges=20, battles_per_judge=10, seed=0)
    ties = bp.Comparisons.from_arena(arena.battles)
    assert (np.asarray(ties.y) == 2).any()
    for spec in (bp.Hierarchical(varying="worths", ties=True, correlated=True),    # correlated: dense
                 bp.Hierarchical(varying="worths", ties="half", correlated=False)):
        with pytest.raises(ModelError, match="Davidson ties"):
            bp.fit(spec, ties, method="laplace", progress=False)
    with pytest.raises(BayesprefError, match="tied comparisons"):                 # tie codes, model without ties
        bp.fit(bp.Hierarchical(varying="worths", correlated=False), ties, method="laplace", progress=False)


@pytest.mark.slow
def test_laplace_agrees_with_nuts_with_covariates_and_position():
    """300 users x 30, a group covariate and a position effect: every population parameter's mean
    within 0.3 NUTS posterior SDs of NUTS's, and its SD within 20 % of NUTS's."""
    sim = bp.simulate.hierarchical(n_users=300, comparisons_per_user=30, n_options=60, n_features=2,
                                   weight_mean=[1.0, -0.5], group_effect=[0.8, 0.0], position=0.4, seed=2)
    data = sim.comparisons()
    spec = bp.Hierarchical(position=True, covariates=["group"])
    lap = bp.fit(spec, data, method="laplace", num_samples=1000, progress=False, log_likelihood=False, seed=1)
    nuts = bp.fit(spec, data, chains=4, warmup=500, draws=500, progress=False, log_likelihood=False, seed=1)
    a, b = lap.summary(), nuts.summary()
    z = (a["mean"] - b["mean"]) / b["sd"]
    ratio = a["sd"] / b["sd"]
    assert np.all(np.abs(z) < 0.3), z
    assert np.all((ratio > 0.8) & (ratio < 1.2)), ratio


def test_block_hessian_equals_the_hessian():
    # blocks of 1, 3 (last block padded with zero vectors) and more than the size give jax.hessian
    from bayespref.inference.laplace import _block_hessian

    A = jnp.asarray(np.random.default_rng(0).normal(size=(7, 7)), jnp.float32)

    def f(v):
        return jnp.sum(jnp.tanh(A @ v) ** 2) + 0.5 * jnp.sum(v ** 4)

    x = jnp.linspace(-1.0, 1.0, 7)
    want = np.asarray(jax.hessian(f)(x))
    for block in (1, 3, 10):
        np.testing.assert_allclose(_block_hessian(f, x.size, block)(x), want, atol=1e-5, rtol=1e-5)
