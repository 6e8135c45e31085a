"""SVI on a Parquet dataset streamed in user chunks agrees with in-memory SVI (issue 24, out-of-core input)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import bayespref as bp
from bayespref.errors import DataError, ModelError

pytest.importorskip("pyarrow.parquet")  # the reader's optional dependency


SETTINGS = dict(method="svi", guide="hierarchical", user_batch_size=40, steps=3000, check_every=500, tol=0.0, lr=0.02,
                num_samples=300, progress=False)


@pytest.fixture(scope="module")
def pair(write_stream):
    return write_stream(200, 25, batch_rows=500)  # (reader, the same rows in memory)


@pytest.mark.slow  # two SVI fits of 3,000 steps (~45 s on 2 cores): over the default-suite budget
def test_streamed_svi_matches_in_memory_svi(pair):
    pc, data = pair
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        streamed = bp.fit(bp.Hierarchical(), pc, chunk_users=100, seed=1, **SETTINGS)
        memory = bp.fit(bp.Hierarchical(), data, seed=1, log_likelihood=False, **SETTINGS)
    assert streamed.info["streamed"] and streamed.info["chunk_users"] == 100
    post_s, post_m = streamed.idata.posterior, memory.idata.posterior
    # population sites: two independent stochastic optimisations of the same ELBO (different minibatch
    # orders, each run to about 3000 steps and Polyak-averaged over its last 500); measured over seeds 1-3
    # they differ by at most 0.006 (weight) and 0.016 (sd_weight, about 0.7 posterior SD), so: within
    # 0.25 posterior SD + 0.02
    for site in ("weight", "sd_weight"):
        ms, mm = post_s[site].mean(("chain", "draw")).values, post_m[site].mean(("chain", "draw")).values
        sd = post_m[site].std(("chain", "draw")).values
        assert np.all(np.abs(ms - mm) <= 0.25 * sd + 0.02), (site, ms, mm, sd)
    # the users' effects, by global user id (labels in file order = the in-memory users, sorted)
    assert list(post_s["user"].values) == [str(u) for u in data.users]
    us = post_s["user_weight"].mean(("chain", "draw")).values
    um = post_m["user_weight"].mean(("chain", "draw")).values
    assert np.corrcoef(us.ravel(), um.ravel())[0, 1] > 0.97
    assert streamed.summary().shape[0] == 4
    # what needs the rows in memory says so
    with pytest.raises(DataError, match="stay on disk"):
        streamed.add_posterior_predictive()


def test_streamed_input_is_svi_or_laplace_only(pair):
    pc, _ = pair
    with pytest.raises(ModelError, match="method='svi' only"):
        bp.fit(bp.Hierarchical(), pc, method="nuts")
    with pytest.raises(ModelError, match="user_batch_size"):
        bp.fit(bp.Hierarchical(), pc, method="svi")
    with pytest.raises(ModelError, match="grouped layout, by users"):
        bp.fit(bp.BradleyTerry(), pc, method="svi", user_batch_size=10)
    with pytest.raises(ModelError, match="features the reader was given"):
        bp.fit(bp.Hierarchical(features=["f0"]), pc, method="svi", user_batch_size=10)
    with pytest.raises(ModelError, match="chunk_users"):
        bp.fit(bp.Hierarchical(), pc, method="svi", user_batch_size=50, chunk_users=20)


def test_guide_draws_leave_out_the_guide_parameters(monkeypatch):
    # NumPyro's Predictive(fn, guide=, params=) returns every param site of the guide's trace as a draw,
    # broadcast to num_samples copies: with per-user guide parameters, 4 x users x effects x draws floats
    # (2.6 GB of the 3.95 GB peak of the 20M streamed fit, whose draws need one user). guide_predictive
    # hides the parameters from the draws, and draws the same values.
    import jax
    import jax.numpy as jnp
    import numpyro
    import numpyro.distributions as dist
    from numpyro.infer import Predictive
    from numpyro.infer import util as infer_util

    from bayespref.inference.engine import guide_predictive

    def model():
        x = numpyro.sample("x", dist.Normal(0.0, 1.0).expand([50]).to_event(1))
        numpyro.deterministic("s", x.sum())

    def guide():
        loc = numpyro.param("loc", jnp.zeros(50))
        numpyro.sample("x", dist.Normal(loc, 1.0).to_event(1))

    params = {"loc": jnp.arange(50.0)}
    seen, vmap = [], infer_util.soft_vmap

    def spy(fn, xs, *args, **kwargs):  # records what each stage of Predictive draws
        out = vmap(fn, xs, *args, **kwargs)
        seen.append(set(out))
        return out

    monkeypatch.setattr(infer_util, "soft_vmap", spy)
    new = guide_predictive(model, guide, params, 7, ["x", "s"])(jax.random.PRNGKey(0))
    assert seen == [{"x"}, {"x", "s"}]  # the guide's stage: its sample sites only
    old = Predictive(model, guide=guide, params=params, num_samples=7, return_sites=["x", "s"])(jax.random.PRNGKey(0))
    for k in ("x", "s"):
        np.testing.assert_array_equal(new[k], old[k])
    assert new["x"].shape == (7, 50)


def test_a_start_without_a_finite_loss_is_refused(pair, monkeypatch):
    """The compiled start (engine.compiled_init) cannot raise NumPyro's invalid-start error; a start whose
    loss is not finite is refused with what to do."""
    from numpyro.infer import SVI

    from bayespref.errors import FitError

    pc, _ = pair
    monkeypatch.setattr(SVI, "evaluate", lambda self, state, *args, **kwargs: np.float32(np.nan))
    with pytest.raises(FitError, match="no starting point with a finite loss"):
        bp.fit(bp.Hierarchical(), pc, method="svi", user_batch_size=40, steps=10, progress=False)
