"""NUTS warm-up: the mass matrix from draws and gradients (bayespref.inference.adaptation)."""

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import numpyro.infer.hmc as numpyro_hmc
import pytest
from numpyro.infer.hmc_util import IntegratorState

from bayespref.inference import adaptation
from bayespref.inference import nuts as nuts_driver


def test_schedule_covers_the_warmup_with_doubling_windows():
    w = adaptation.schedule(1000)
    assert [(x.start, x.end) for x in w] == [(0, 14), (15, 64), (65, 164), (165, 364), (365, 849), (850, 999)]
    for n in (20, 37, 150, 500, 1999):
        w = adaptation.schedule(n)
        assert w[0].start == 0 and w[-1].end == n - 1
        assert all(b.start == a.end + 1 for a, b in zip(w, w[1:]))
        sizes = [x.end - x.start + 1 for x in w[1:-1]]
        assert sizes == sorted(sizes) or len(sizes) <= 2  # slow windows never shrink (the last takes the rest)
    assert [(x.start, x.end) for x in adaptation.schedule(10)] == [(0, 9)]


def _run_adapter(n_steps, xs, gs, dense_mass=False, imm=None):
    init, update = adaptation.warmup_adapter(n_steps, adapt_step_size=False, dense_mass=dense_mass)
    st = init(IntegratorState({"x": xs[0]}, None, 0.0, {"x": gs[0]}), jax.random.PRNGKey(0), 0.1,
              inverse_mass_matrix=imm)

    def step(st, tx):
        t, x, g = tx
        st = update(t, 0.8, IntegratorState({"x": x}, None, 0.0, {"x": g}), st)
        return st, st.inverse_mass_matrix

    st, history = jax.lax.scan(step, st, (jnp.arange(n_steps), xs, gs))
    return st, np.asarray(history)


def test_mass_matrix_is_sqrt_of_draw_over_gradient_variance_in_each_window():
    # a correlated Gaussian: gradients are Sigma^{-1} x; the estimate is computed here with numpy
    rng = np.random.default_rng(0)
    n = 400
    cov = np.array([[4.0, 1.8, 0.0], [1.8, 1.0, 0.0], [0.0, 0.0, 1e-4]])
    x = rng.multivariate_normal(np.zeros(3), cov, size=n)
    g = x @ np.linalg.inv(cov)
    st, history = _run_adapter(n, jnp.asarray(x, jnp.float32), jnp.asarray(g, jnp.float32))
    windows = adaptation.schedule(n)
    last = windows[-2]  # the last slow window sets the final mass matrix
    sl = slice(last.start, last.end + 1)
    m = last.end - last.start + 1
    expect = np.sqrt(x[sl].var(0, ddof=1) / g[sl].var(0, ddof=1))
    expect = m / (m + 5) * expect + 1e-3 * 5 / (m + 5)
    np.testing.assert_allclose(np.asarray(st.inverse_mass_matrix), expect, rtol=2e-3)
    # it changes only at the ends of slow windows
    changes = [t for t in range(1, n) if not np.array_equal(history[t], history[t - 1])]
    assert changes == [w.end for w in windows[1:-1]]
    # independent coordinate: the draws' variance; correlated pair: between conditional and marginal
    assert abs(np.asarray(st.inverse_mass_matrix)[2] / 1e-4 - 1) < 0.35
    marginal, conditional = cov[0, 0], 1 / np.linalg.inv(cov)[0, 0]
    assert conditional < float(st.inverse_mass_matrix[0]) < marginal


def test_dense_mass_matrices_keep_numpyros_adapter(monkeypatch):
    called = {}

    def spy(*args, **kwargs):
        called["dense_mass"] = kwargs["dense_mass"]
        return "numpyro"

    monkeypatch.setattr(adaptation, "NUMPYRO_ADAPTER", spy)
    assert adaptation.warmup_adapter(100, dense_mass=True) == "numpyro"
    assert adaptation.warmup_adapter(100, dense_mass=[("a",)]) == "numpyro"
    assert called["dense_mass"] == [("a",)]
    assert adaptation.warmup_adapter(100, dense_mass=[]) != "numpyro"  # [] is NumPyro's diagonal


def test_patch_is_undone_even_when_tracing_fails():
    with pytest.raises(RuntimeError):
        with adaptation.patched():
            assert numpyro_hmc.warmup_adapter is adaptation.warmup_adapter
            raise RuntimeError("boom")
    assert numpyro_hmc.warmup_adapter is adaptation.NUMPYRO_ADAPTER


def test_sampler_scales_to_coordinates_of_very_different_size():
    # SDs 1e-2 and 1e2: with a mass matrix from the warm-up both are sampled in a few steps per draw
    # and the draws have the right SDs (tolerance from the Monte Carlo error of an SD, ESS >= 200)
    sds = np.array([1e-2, 1.0, 1e2])

    def fn(data):
        numpyro.sample("x", dist.Normal(0.0, data["sd"]))

    run = nuts_driver.sample(fn, {"sd": jnp.asarray(sds, jnp.float32)}, jax.random.PRNGKey(1), chains=2,
                             warmup=400, draws=400, target_accept=0.8, max_tree_depth=10, log_likelihood=False,
                             method="sequential", progress=False)
    x = run.samples["x"].reshape(-1, 3)
    rel = x.std(0) / sds
    assert np.all(np.abs(rel - 1) < 4 / np.sqrt(2 * 200)), rel
    assert run.stats["n_steps"].mean() < 8


def test_a_window_with_constant_gradients_falls_back_to_the_draws_variance():
    # coordinate 0 drifts while its gradient stays the same constant (a linear potential): the
    # ratio of variances would be infinite; the draws' variance is used there, the ratio elsewhere
    n = 100
    rng = np.random.default_rng(1)
    x = np.stack([np.linspace(8.0, 2.0, n), rng.normal(0, 2.0, n)], 1)
    g = np.stack([np.ones(n), x[:, 1] / 4.0], 1)
    st, _ = _run_adapter(n, jnp.asarray(x, jnp.float32), jnp.asarray(g, jnp.float32))
    last = adaptation.schedule(n)[-2]
    sl = slice(last.start, last.end + 1)
    m = last.end - last.start + 1
    raw = np.array([x[sl, 0].var(ddof=1), np.sqrt(x[sl, 1].var(ddof=1) / g[sl, 1].var(ddof=1))])
    expect = m / (m + 5) * raw + 1e-3 * 5 / (m + 5)
    got = np.asarray(st.inverse_mass_matrix)
    assert np.all(np.isfinite(got))
    np.testing.assert_allclose(got, expect, rtol=1e-3)

