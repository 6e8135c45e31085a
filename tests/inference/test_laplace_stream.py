"""method="laplace" on a Parquet dataset streamed in user chunks agrees with the in-memory Laplace fit
(issue 24, out-of-core input)."""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import bayespref as bp
from bayespref.errors import DataError, ModelError

pytest.importorskip("pyarrow.parquet")  # the reader's optional dependency


USERS, CHUNK = 90, 40  # 40 does not divide 90: the last chunk holds 10 users and 30 padding rows
KW = dict(method="laplace", num_samples=200, progress=False, seed=1)


@pytest.fixture(scope="module")
def pair(write_stream):
    return write_stream(USERS, 12, batch_rows=200)  # (reader, the same rows in memory)


def _fits(pc, data, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        streamed = bp.fit(bp.Hierarchical(), pc, chunk_users=CHUNK, **KW, **kw)
        memory = bp.fit(bp.Hierarchical(), data, log_likelihood=False, **KW, **kw)
    return streamed, memory


def _assert_same_globals(streamed, memory, rtol):
    post_s, post_m = streamed.idata.posterior, memory.idata.posterior
    for site in ("weight", "sd_weight"):
        for stat in ("mean", "std"):
            a = getattr(post_s[site], stat)(("chain", "draw")).values
            b = getattr(post_m[site], stat)(("chain", "draw")).values
            np.testing.assert_allclose(a, b, rtol=rtol, err_msg=f"{site} {stat}")


@pytest.mark.slow  # 28 s: a streamed and an in-memory Laplace fit with the outer-product search; the chunked objective itself is checked in the default suite (test_chunk_sums_equal_the_in_memory_objective)
def test_streamed_laplace_matches_in_memory_laplace(pair):
    # Same objective (same importance draws, held whole at this size), summed in another order in
    # float32 per chunk: the globals' modes agree to about 1e-6 relative and the draws (same keys) with
    # them (measured: means within 4e-6, SDs within 2e-6 relative), so 1e-3 is a wide margin that a
    # wrong chunk sum, a padding user's non-zero term or a user paired with another's modes would break.
    pc, data = pair
    streamed, memory = _fits(pc, data, covariance="opg")
    info = streamed.info
    assert info["streamed"] and info["chunk_users"] == CHUNK and info["method"] == "laplace"
    assert info["laplace_converged"] and info["laplace_covariance"] == "opg"
    assert info["laplace_importance_draws"] == "held" and info["user_draws"]
    # one pass per evaluation, one per curvature of the rescaled search (none here: the first 15 plain
    # iterations converge on these 4 weights and 4 SDs), one at the mode
    assert info["laplace_passes"] == info["laplace_evaluations"] + info["laplace_curvature_passes"] + 1
    assert info["method_reason"] == "method=... was given"
    _assert_same_globals(streamed, memory, 1e-3)
    # the users, by global user id (labels in file order = the in-memory users, sorted)
    post_s, post_m = streamed.idata.posterior, memory.idata.posterior
    assert list(post_s["user"].values) == [str(u) for u in data.users]
    for site in ("z", "user_weight"):
        np.testing.assert_allclose(post_s[site].values, post_m[site].values, atol=1e-3)
    assert streamed.summary().shape[0] == 4
    assert bp.checks.convergence(streamed).ok
    with pytest.raises(DataError, match="stay on disk"):
        streamed.add_posterior_predictive()


def test_auto_method_on_a_stream(pair, monkeypatch, capsys):
    import sys

    from bayespref.inference.auto import choose_stream_method
    from bayespref.inference.settings import SviSettings

    assert choose_stream_method()[0] == "laplace"
    assert choose_stream_method(options={"user_batch_size": 20}) == (
        "svi", "the options given (user_batch_size) are svi settings")
    assert choose_stream_method(options={"importance": 4})[0] == "laplace"
    assert choose_stream_method(settings=SviSettings(user_batch_size=20))[0] == "svi"
    # fit(method="auto") on a stream: says what it chose and passes it on
    seen = {}

    class Stub:
        info = {}

    def fake(spec, source, method, *args):
        seen["method"] = method
        return Stub()

    monkeypatch.setattr(sys.modules["bayespref.inference.fit"], "_fit_stream", fake)
    out = bp.fit(bp.Hierarchical(), pair[0])
    assert seen["method"] == "laplace" and out.info["method_reason"].startswith("a Parquet dataset")
    assert "method='laplace'" in capsys.readouterr().err


def test_chunk_sums_equal_the_in_memory_objective(pair):
    """Prior + the chunks' data terms (value and gradient) = the in-memory objective; padding users add 0."""
    from bayespref.inference import laplace as lp

    pc, data = pair
    # in float64 (the method's per-user arrays are float32, whose rounding depends on the batch shape:
    # chunks of 40 and all 90 users at once then differ by about 2e-5 relative in the gradient);
    # Newton searches run to max_newton steps for every user (newton_tol=1e-12), where with the default
    # tol a chunk stops once its own users have converged; what is left is the order of the sums
    spec, settings = bp.Hierarchical(), lp.LaplaceSettings(newton_tol=1e-12, importance=8)
    sizes, arrays, grouped = spec.sizes(data), spec.arrays(data), spec.by_user_arrays(data)
    with lp._x64():
        pop = {"covariates": jnp.asarray(arrays["covariates"], jnp.float32)}
        G = lp._Globals(spec, sizes, pop, settings)
        eps = jax.random.normal(jax.random.PRNGKey(5), (settings.importance, USERS, 2), jnp.float32)
        v = jnp.asarray(np.random.default_rng(0).normal(scale=0.3, size=G.v0.size), G.v0.dtype)
        z0 = jnp.zeros((USERS, 2), jnp.float32)
        f64 = jnp.float64
        D = {"dx": jnp.asarray(lp.user_design(spec, data, grouped, sizes), f64), "y": jnp.asarray(grouped["y"], f64),
             "mask": jnp.asarray(grouped["mask"], f64), "cov": pop["covariates"], "eps": eps, "pop": pop}
        (val, (z, _)), g = jax.jit(jax.value_and_grad(G.objective, has_aux=True))(v, z0, D)
        chunk_vg = jax.jit(jax.value_and_grad(G.data_term, has_aux=True))
        total, grad, zs, n = *jax.jit(jax.value_and_grad(G.prior_potential))(v, pop), np.zeros((USERS, 2)), 0
        for raw in pc.chunks(users=CHUNK):
            valid = raw["users"] >= 0
            idx = np.where(valid, raw["users"], 0)
            Dc = {"dx": jnp.asarray(raw["dx"], f64), "y": jnp.asarray(raw["y"], f64),
                  "mask": jnp.asarray(raw["mask"], f64), "cov": jnp.zeros((CHUNK, 0), jnp.float32),
                  "eps": eps[:, idx], "pop": pop, "valid": jnp.asarray(valid)}
            (cv, (cz, _)), cg = chunk_vg(v, z0[idx], Dc)
            total, grad = total + cv, grad + cg
            zs[idx[valid]] = np.asarray(cz)[valid]
            n += 1
            if not valid.all():  # unmasked, the padding users' importance-weighted estimates are not 0
                (uv, _), _ = chunk_vg(v, z0[idx], {**Dc, "valid": jnp.ones_like(Dc["valid"])})
                assert abs(float(uv) - float(cv)) > 1e-6
    assert n == 3
    assert abs(float(total) - float(val)) <= 1e-9 * abs(float(val))
    np.testing.assert_allclose(np.asarray(grad), np.asarray(g), rtol=1e-9)
    np.testing.assert_allclose(zs, np.asarray(z), rtol=1e-9, atol=1e-12)


def test_streamed_laplace_errors(pair):
    pc, data = pair
    with pytest.raises(ModelError, match="one device: leave devices unset"):
        bp.fit(bp.Hierarchical(), pc, method="laplace", devices=2)
    with pytest.raises(ModelError, match="user_batch_size is a setting of method='svi'"):
        bp.fit(bp.Hierarchical(), pc, method="laplace", user_batch_size=10)
    with pytest.raises(ModelError, match="logit link"):
        bp.fit(bp.Hierarchical(link="probit"), pc, method="laplace")
    with pytest.raises(ModelError, match="every effect the model uses must vary by user"):
        bp.fit(bp.Hierarchical(varying="worths", worths=True), pc, method="laplace")
    with pytest.raises(ModelError, match="covariance"):
        bp.fit(bp.Hierarchical(), pc, method="laplace", covariance="exact")
    with pytest.raises(ModelError, match="chunk_users"):
        bp.fit(bp.Hierarchical(), pc, method="laplace", chunk_users=0)
    with pytest.raises(ModelError, match="method='laplace' or method='svi'"):
        bp.fit(bp.Hierarchical(), pc, method="nuts")
    with pytest.raises(ModelError, match="in memory: leave it unset"):  # chunk_users on in-memory data
        bp.fit(bp.Hierarchical(), data, method="laplace", chunk_users=CHUNK, progress=False)


@pytest.mark.slow  # two Hessian-form fits, the streamed one compiling each chunk's Hessian (~20 s on 2 cores)
def test_streamed_hessian_covariance_matches_in_memory(pair):
    pc, data = pair
    streamed, memory = _fits(pc, data, covariance="hessian")
    assert streamed.info["laplace_covariance"] == "hessian"
    _assert_same_globals(streamed, memory, 1e-3)


@pytest.mark.slow  # two fits (~10 s)
def test_per_chunk_importance_draws_and_population_only(pair, monkeypatch):
    """Above engine.STREAM_USER_DRAWS the importance draws are drawn per chunk (another set of fixed
    draws: the globals move by a fraction of their posterior SD) and only the population is drawn."""
    from bayespref.inference import engine

    pc, data = pair
    monkeypatch.setattr(engine, "STREAM_USER_DRAWS", 1)
    streamed, memory = _fits(pc, data, covariance="opg")
    assert streamed.info["laplace_importance_draws"] == "per chunk" and not streamed.info["user_draws"]
    assert "z" not in streamed.idata.posterior and "user_weight" not in streamed.idata.posterior
    post_s, post_m = streamed.idata.posterior, memory.idata.posterior
    for site in ("weight", "sd_weight"):
        diff = np.abs(post_s[site].mean(("chain", "draw")).values - post_m[site].mean(("chain", "draw")).values)
        assert np.all(diff < 0.3 * post_m[site].std(("chain", "draw")).values), site
