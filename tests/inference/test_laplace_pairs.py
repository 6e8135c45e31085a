"""The Laplace method's paired-index kernels (user-varying worths, independent SDs) against the dense ones."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bayespref.inference.laplace import user_marginals
from bayespref.inference.laplace_pairs import PairDesign, Precision, conditional_draws, user_marginals_pairs
from bayespref.models.base import worth_differences


def _design(seed=0, U=5, E=7, J=9):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, E, (U, J))
    b = (a + rng.integers(1, E, (U, J))) % E          # a different option
    mask = np.ones((U, J))
    mask[1, 6:] = 0                                   # users with fewer comparisons (padding slots)
    mask[-1, 2:] = 0
    a, b = np.where(mask > 0, a, 0), np.where(mask > 0, b, 0)
    y = np.where(mask > 0, rng.random((U, J)) < 0.6, 0).astype(float)
    m = rng.normal(0, 0.5, (U, E))
    sd = rng.uniform(0.3, 1.5, E)
    return a, b, y, mask, m, sd


def _compiled(kernel, **static):
    """``kernel`` with its keyword settings fixed, compiled as one program (run op by op, each of its
    many small operations would compile on its own: seconds per test)."""
    return jax.jit(functools.partial(kernel, **static))


def _dense(a, b, mask, E):
    return np.asarray(worth_differences(jnp.asarray(a), jnp.asarray(b), E, jnp.asarray(mask))).transpose(0, 2, 1)


@pytest.mark.parametrize("space", ["options", "comparisons"])
def test_pairs_match_the_dense_design(space):
    """Same modes and plain-Laplace log marginals as the dense one-hot design with S = diag(sd), with the
    precisions factored in either space."""
    a, b, y, mask, m, sd = _design()
    U, E = m.shape
    f32 = lambda x: jnp.asarray(x, jnp.float32)   # noqa: E731
    kw = {"max_newton": 30, "tol": 1e-6}
    z0 = jnp.zeros((U, E), jnp.float32)
    dense_k, pairs_k = _compiled(user_marginals, **kw), _compiled(user_marginals_pairs, space=space, **kw)
    X = f32(_dense(a, b, mask, E))
    dense, zd, _ = dense_k(X, f32(y), f32(mask), f32(m), f32(np.diag(sd)), 0.2, z0)
    pairs, zp, _ = pairs_k(jnp.asarray(a), jnp.asarray(b), f32(y), f32(mask), f32(m), f32(sd), 0.2, z0)
    np.testing.assert_allclose(np.asarray(pairs), np.asarray(dense), rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(np.asarray(zp), np.asarray(zd), atol=1e-4)
    # and their derivatives in the SDs and mean worths (the globals' gradient flows through them)
    def total(fn, *args):
        return jax.jit(jax.grad(lambda s, mm: jnp.sum(fn(s, mm)[0]), argnums=(0, 1)))(*args)
    gd = total(lambda s, mm: dense_k(X, f32(y), f32(mask), mm, jnp.diag(s), 0.2, z0),
               f32(sd), f32(m))
    gp = total(lambda s, mm: pairs_k(jnp.asarray(a), jnp.asarray(b), f32(y), f32(mask), mm, s, 0.2, z0),
               f32(sd), f32(m))
    for x, ref in zip(gp, gd):
        np.testing.assert_allclose(np.asarray(x), np.asarray(ref), rtol=1e-3, atol=1e-3)


def test_importance_estimates_agree_with_many_draws():
    """With many importance draws both constructions estimate the same log marginal (to 0.02, about
    three Monte Carlo standard errors of the difference)."""
    a, b, y, mask, m, sd = _design(seed=1, J=6)
    U, E, J = m.shape[0], m.shape[1], a.shape[1]
    f32 = lambda x: jnp.asarray(x, jnp.float32)   # noqa: E731
    kw = {"max_newton": 30, "tol": 1e-6, "widen": 1.0}
    z0 = jnp.zeros((U, E), jnp.float32)
    dense = _compiled(user_marginals, **kw)(f32(_dense(a, b, mask, E)), f32(y), f32(mask), f32(m), f32(np.diag(sd * 2)),
                                            0.0, z0, eps=jax.random.normal(jax.random.PRNGKey(0), (20_000, U, E)))[0]
    pairs = _compiled(user_marginals_pairs, **kw)(jnp.asarray(a), jnp.asarray(b), f32(y), f32(mask), f32(m), f32(sd * 2),
                                                  0.0, z0, eps=jax.random.normal(jax.random.PRNGKey(1), (20_000, U, E + J)))[0]
    np.testing.assert_allclose(np.asarray(pairs), np.asarray(dense), atol=0.02)


@pytest.mark.parametrize("space", ["options", "comparisons"])
def test_davidson_ties_match_a_direct_laplace_computation(space):
    """With Davidson ties (outcomes 0, 1, 2): the modes are where the exact joint density's gradient
    vanishes, and the plain Laplace log marginal equals joint(mode) - log det(-Hessian) / 2 computed by
    automatic differentiation of the model's own distribution (bayespref.models.likelihood.Davidson)."""
    from bayespref.models.likelihood import Davidson

    a, b, _, mask, m, sd = _design(seed=6, U=3, E=5, J=8)
    y = np.where(mask > 0, np.random.default_rng(7).integers(0, 3, mask.shape), 0)
    U, E = m.shape
    f32 = lambda x: jnp.asarray(x, jnp.float32)   # noqa: E731
    log_tie, pos = -0.7, 0.3
    ll, zhat, _ = user_marginals_pairs(jnp.asarray(a), jnp.asarray(b), f32(y), f32(mask), f32(m), f32(sd), pos,
                                       jnp.zeros((U, E), jnp.float32), max_newton=50, tol=1e-7, log_tie=log_tie,
                                       space=space)
    def joint(z, mu, au, bu, yu, mu_mask):
        w = mu + f32(sd) * z
        d = w[au] - w[bu] + pos
        return jnp.sum(mu_mask * Davidson(d, log_tie).log_prob(yu)) - 0.5 * jnp.sum(z * z)

    @jax.jit
    def direct(*args):   # one user's gradient at z and joint(z) - log det(-Hessian) / 2
        return (jax.grad(joint)(*args), joint(*args) - 0.5 * jnp.linalg.slogdet(-jax.hessian(joint)(*args))[1])

    for u in range(U):
        grad, value = direct(zhat[u], f32(m[u]), jnp.asarray(a[u]), jnp.asarray(b[u]), jnp.asarray(y[u]), f32(mask[u]))
        assert float(jnp.max(jnp.abs(grad))) < 1e-3
        np.testing.assert_allclose(float(ll[u]), float(value), atol=2e-4)


@pytest.mark.parametrize("space", ["options", "comparisons"])
def test_draws_have_the_inverse_precision_as_covariance(space):
    """The draws are z + T e with T T^T = H^{-1} = (I + A^T W A)^{-1} (T read off column by column, exact up
    to float32 rounding): Matheron's rule in comparison space, the Cholesky factor of H in option space."""
    a, b, y, mask, m, sd = _design(seed=2, U=2, E=4, J=5)
    U, E, J = m.shape[0], m.shape[1], a.shape[1]
    f32 = lambda x: jnp.asarray(x, jnp.float32)   # noqa: E731
    z = jnp.asarray(np.random.default_rng(3).normal(0, 0.5, (U, E)), jnp.float32)
    e = jnp.broadcast_to(jnp.eye(E + J)[:, None, :], (E + J, U, E + J))   # one unit vector per draw
    T = np.asarray(conditional_draws(jnp.asarray(a), jnp.asarray(b), f32(y), f32(mask), f32(m), f32(sd), 0.0, z, e,
                                     space=space))
    T = (T - np.asarray(z)[None]).transpose(1, 2, 0)                      # (U, E, E + J)
    dense = _dense(a, b, mask, E) * sd[None, :, None]                     # (U, E, J): A^T
    p = 1 / (1 + np.exp(-np.einsum("uej,ue->uj", _dense(a, b, mask, E), m + sd * np.asarray(z))))
    w = mask * p * (1 - p)
    for u in range(U):
        H = np.eye(E) + (dense[u] * w[u]) @ dense[u].T
        np.testing.assert_allclose(T[u] @ T[u].T, np.linalg.inv(H), atol=1e-6)


def test_the_smaller_space_is_chosen():
    """Option space where a user's comparison slots are at least the options, comparison space below."""
    a, b, y, mask, m, sd = _design(E=7, J=9)
    design = PairDesign(jnp.asarray(a), jnp.asarray(b), jnp.asarray(sd, jnp.float32))
    w = jnp.full(mask.shape, 0.2, jnp.float32)
    assert Precision(design, jnp.asarray(mask, jnp.float32), w).options
    a, b, y, mask, m, sd = _design(E=7, J=5)
    design = PairDesign(jnp.asarray(a), jnp.asarray(b), jnp.asarray(sd, jnp.float32))
    assert not Precision(design, jnp.asarray(mask, jnp.float32), jnp.full(mask.shape, 0.2, jnp.float32)).options


def test_gram_and_transpose_are_the_design_s():
    """A A^T and A^T r from the indices equal the dense design's products."""
    a, b, _, mask, _, sd = _design(seed=4)
    E = sd.size
    d = PairDesign(jnp.asarray(a), jnp.asarray(b), jnp.asarray(sd, jnp.float32))
    A = np.where(mask[..., None] > 0, _dense(a, b, np.ones_like(mask), E).transpose(0, 2, 1) * sd, 0)   # (U, J, E)
    # padding slots point at options 0 and 0: mask them as the kernels do (through W)
    G = np.asarray(d.gram()) * mask[:, :, None] * mask[:, None, :]
    np.testing.assert_allclose(G, A @ A.transpose(0, 2, 1), atol=1e-5)
    r = np.random.default_rng(5).normal(size=mask.shape) * mask
    np.testing.assert_allclose(np.asarray(d.transpose(jnp.asarray(r, jnp.float32))), np.einsum("uje,uj->ue", A, r),
                               atol=1e-5)


def _arena_worths():
    import bayespref as bp

    sim = bp.simulate.arena(n_judges=40, battles_per_judge=12, user_sd=0.5, log_tie=-np.inf, seed=2)
    return bp.Comparisons.from_arena(sim.battles, user_covariates=sim.judges), bp.Hierarchical(varying="worths",
                                                                                               correlated=False)


@pytest.mark.slow  # 11-14 s end-to-end fit; the paired design's exactness tests stay in the default suite
def test_fit_leaves_the_users_draws_out_above_the_budget(monkeypatch, capsys):
    """A worths-only fit with independent SDs runs on the paired design; with a draws budget below users
    x effects x draws it holds the population's draws only, without the log likelihood, and says so."""
    import importlib

    import bayespref as bp
    from bayespref.inference import laplace

    fit_module = importlib.import_module("bayespref.inference.fit")   # the package exports the function
    data, spec = _arena_worths()
    monkeypatch.setattr(laplace, "USER_DRAWS_MAX", 1000)
    monkeypatch.setattr(fit_module, "USER_DRAWS_MAX", 1000)
    capsys.readouterr()
    fit = bp.fit(spec, data, method="laplace", num_samples=100, seed=0)
    assert fit.info["laplace_design"] == "pairs" and fit.info["laplace_importance"] == 0
    assert not fit.info["user_draws"] and fit.info["user_draws_max_samples"] == 1000 // (40 * 6)
    assert "users' draws and the log likelihood are left out" in capsys.readouterr().err
    post = fit.idata.posterior
    assert "user_worth" not in post and "z" not in post and "log_likelihood" not in fit.idata.children
    assert post["worth"].shape == (1, 100, 6) and post["sd_worth"].shape == (1, 100, 6)


@pytest.mark.slow  # two fits (~25 s); the kernels' agreement is in the default suite above
def test_fit_on_the_paired_design_matches_the_dense_design(monkeypatch):
    """End to end: the paired design's posterior of the globals is the dense design's (plain Laplace:
    the same objective, so the same mode and curvature, and the same key for the draws)."""
    import bayespref as bp
    from bayespref.inference import laplace

    data, spec = _arena_worths()
    kw = {"method": "laplace", "importance": 0, "num_samples": 400, "seed": 0, "progress": False,
          "log_likelihood": False}
    pairs = bp.fit(spec, data, **kw)
    monkeypatch.setattr(laplace, "paired_design", lambda spec, sizes: False)
    dense = bp.fit(spec, data, **kw)
    assert (pairs.info["laplace_design"], dense.info["laplace_design"]) == ("pairs", "dense")
    for name in ("worth", "group_worth", "sd_worth"):
        a, b = pairs.idata.posterior[name], dense.idata.posterior[name]
        sd = b.std(("chain", "draw"))
        assert float(np.abs((a.mean(("chain", "draw")) - b.mean(("chain", "draw"))) / sd).max()) < 0.05, name
        assert float(np.abs(a.std(("chain", "draw")) / sd - 1).max()) < 0.1, name
