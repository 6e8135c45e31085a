"""Large-data machinery: the grouped-by-user layout, user-subsampled SVI, the structured guide, NUTS init.

Fast tests check exactness (same log density in both layouts, same ELBO scaling) and the errors;
the slow test compares the structured guide's intervals with NUTS on the same data.
"""

import warnings

import arviz as az
import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import pytest
from numpyro.infer import Predictive
from numpyro.infer.util import log_density

import bayespref as bp
from bayespref.errors import ModelError
from bayespref.inference.engine import latent_sites, mass_from_draws
from bayespref.models.base import group_by_user


@pytest.fixture(scope="module")
def ragged():
    sim = bp.simulate.hierarchical(n_users=30, comparisons_per_user=12, n_options=40, n_features=3, seed=0)
    data = sim.comparisons()
    keep = np.random.default_rng(0).random(data.n_comparisons) < 0.8  # unequal counts per user
    return sim, data.subset(keep)


@pytest.mark.parametrize("spec", [bp.Hierarchical(), bp.Hierarchical(correlated=False, position=True),
                                  bp.Hierarchical(ties="half", link="probit"),
                                  bp.Hierarchical(varying="worths", features=False, position=True),
                                  bp.Hierarchical(varying=["worths", "features"], ties=True, centring=0.4),
                                  bp.Hierarchical(worths=True, correlated=False)])
def test_grouped_layout_gives_the_same_log_density(ragged, spec):
    _, data = ragged
    fn, arrays = spec.bind(data), spec.arrays(data)
    grouped = spec.by_user_arrays(data)
    assert grouped is not None and grouped["mask"].sum() == data.n_comparisons
    prior = Predictive(fn, num_samples=3)(jax.random.PRNGKey(0), arrays)   # three points from the prior
    density = jax.jit(jax.value_and_grad(lambda p, arr: log_density(fn, (arr,), {}, p)[0]))
    for i in range(3):
        params = {k: v[i] for k, v in prior.items() if k not in ("y", "user_weight", "user_worth")}
        per_comparison, grad_flat = density(params, arrays)
        by_user, grad_grouped = density(params, {**arrays, "by_user": grouped})
        assert abs(float(per_comparison) - float(by_user)) <= 1e-5 * abs(float(per_comparison))
        # the gradients too (the per-comparison layout reads the users' effects through an
        # optimisation barrier and flat indices, the grouped one through per-user gathers)
        for k in grad_flat:
            np.testing.assert_allclose(np.asarray(grad_flat[k]), np.asarray(grad_grouped[k]), rtol=1e-4,
                                       atol=1e-4 * float(np.max(np.abs(grad_flat[k]))) + 1e-6, err_msg=k)


def test_user_varying_worths_give_the_bradley_terry_likelihood_of_each_users_worths(ragged):
    """Both layouts against the likelihood written out from the recorded user worths."""
    _, data = ragged
    spec = bp.Hierarchical(varying="worths", features=False, position=True)
    fn, arrays = spec.bind(data), spec.arrays(data)
    prior = Predictive(fn, num_samples=1)(jax.random.PRNGKey(5), arrays)
    params = {k: v[0] for k, v in prior.items() if k not in ("y", "user_worth")}
    uw = np.asarray(prior["user_worth"][0], float)
    a, b, u, y = (np.asarray(v) for v in (data.a, data.b, data.user, data.y))
    d = uw[u, a] - uw[u, b] + float(params["position"])
    expected = np.sum(np.where(y == 1, -np.logaddexp(0, -d), -np.logaddexp(0, d)))
    for arr in (arrays, {**arrays, "by_user": spec.by_user_arrays(data)}):
        tr = numpyro.handlers.trace(numpyro.handlers.substitute(fn, data=params)).get_trace(arr)
        got = float(jnp.sum(tr["y"]["fn"].log_prob(tr["y"]["value"]) * tr["y"].get("mask", 1.0)))
        np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_grouped_layout_only_where_it_applies(ragged):
    _, data = ragged
    assert bp.BradleyTerry().by_user_arrays(data) is None
    rankings = bp.simulate.rankings(n_rankings=30, n_options=5, n_shown=3, n_users=6, seed=0).rankings()
    assert bp.Hierarchical().by_user_arrays(rankings) is None
    # one user with most comparisons: padding every user to that count would cost more than it saves
    user = np.r_[np.zeros(100, int), np.arange(1, 51)]
    assert group_by_user(user, 51) is None
    slots = group_by_user(np.array([1, 0, 1, 1]), 2)
    assert slots["index"].tolist() == [[1, 0, 0], [0, 2, 3]]
    assert slots["mask"].tolist() == [[True, False, False], [True, True, True]]


def test_user_subsampled_elbo_is_unbiased(ragged):
    """Averaged over user batches, the subsampled log density equals the full one (U/B scaling)."""
    _, data = ragged
    spec = bp.Hierarchical(correlated=False)
    fn, arrays = spec.bind(data), {**spec.arrays(data), "by_user": spec.by_user_arrays(data)}
    prior = Predictive(fn, num_samples=1)(jax.random.PRNGKey(1), arrays)
    params = {k: v[0] for k, v in prior.items() if k not in ("y", "user_weight")}
    full, _ = log_density(fn, (arrays,), {}, params)
    # every user exactly once over a partition of the users into batches of 10 (z sliced to match)
    total = 0.0
    for batch in np.arange(30).reshape(3, 10):
        p = dict(params, z=params["z"][batch])
        lb, _ = log_density(fn, (arrays,), {"user_batch": jax.numpy.asarray(batch)}, p)
        total += float(lb) / 3
    # the global prior terms are counted once per batch (so 3/3 = once); user terms scaled by 30/10
    assert total == pytest.approx(float(full), rel=1e-5)


@pytest.mark.filterwarnings("ignore::bayespref.errors.ConvergenceWarning")
@pytest.mark.slow  # 19-22 s end to end (user-batch SVI, then NUTS from it); the layout and ELBO scaling stay in the default suite
def test_user_batches_structured_guide_and_nuts_init(ragged):
    """SVI on batches of users with the structured guide, then NUTS started from its draws."""
    _, data = ragged
    spec = bp.Hierarchical(correlated=False)
    svi = bp.fit(spec, data, method="svi", guide="hierarchical", user_batch_size=10, steps=1000, num_samples=40,
                 progress=False, log_likelihood=False)
    assert svi.info["user_batch_size"] == 10
    assert svi.idata.posterior["user_weight"].shape[-2:] == (30, 3)
    assert np.all(np.isfinite(svi.idata.posterior["weight"].values))
    fit = bp.fit(spec, data, chains=2, warmup=50, draws=50, init=svi, progress=False, log_likelihood=False)
    assert fit.idata.posterior["weight"].shape[:2] == (2, 50)
    assert fit.info["init_mass_matrix"]
    # diagnostics on a subset of users (what the automatic check does for large fits)
    full, sub = fit.diagnostics(), fit.diagnostics(max_users=4)
    users = np.linspace(0, 29, 4).round().astype(int)
    post = fit.idata.posterior.dataset
    expect = max(float(az.rhat(post[["weight", "sd_weight"]]).to_array().max()),
                 float(az.rhat(post[["user_weight"]].isel(user=users)).to_array().max()))
    assert sub["max_rhat"] == pytest.approx(expect, rel=1e-6)
    assert sub["max_rhat"] <= full["max_rhat"] and sub["min_ess_bulk"] >= full["min_ess_bulk"]
    # the starting mass matrix is the variance of the SVI draws, in NumPyro's sorted site order
    fn, arrays = spec.bind(data), spec.arrays(data)
    imm = np.asarray(mass_from_draws(fn, arrays, svi.idata.posterior))
    sites = sorted(latent_sites(fn, arrays))
    sizes = [int(np.prod(svi.idata.posterior[s].shape[2:])) for s in sites]
    start = int(np.sum(sizes[: sites.index("weight")]))
    w = svi.idata.posterior["weight"].values.reshape(-1, 3)
    np.testing.assert_allclose(imm[start:start + 3], w.var(0), rtol=1e-3)
    assert imm.size == sum(sizes)
    # a new start (another SVI fit's draws and variances) reuses the compiled sampler
    svi2 = bp.fit(spec, data, method="svi", guide="hierarchical", user_batch_size=10, steps=300, num_samples=40,
                  progress=False, log_likelihood=False, seed=3)
    again = bp.fit(spec, data, chains=2, warmup=50, draws=50, init=svi2, progress=False, log_likelihood=False)
    assert again.info["sampler_reused"]
    with pytest.raises(ModelError, match="another model"):
        bp.fit(bp.Hierarchical(), data, chains=2, warmup=10, draws=10, init=svi, progress=False)


def test_scale_options_errors(ragged):
    _, data = ragged
    with pytest.raises(ModelError, match="user_batch_size"):
        bp.fit(bp.BradleyTerry(), data, method="svi", user_batch_size=10, progress=False)
    with pytest.raises(ModelError, match="user_batch_size"):
        bp.fit(bp.Hierarchical(), data, method="svi", user_batch_size=10, batch_size=50, progress=False)
    with pytest.raises(ModelError, match="Hierarchical"):
        bp.fit(bp.BradleyTerry(), data, method="svi", guide="hierarchical", progress=False)
    with pytest.raises(ModelError, match="init"):
        bp.fit(bp.Hierarchical(), data, method="svi", init=object(), progress=False)
    with pytest.raises(ModelError, match="Fit"):
        bp.fit(bp.Hierarchical(), data, init=object(), progress=False)


@pytest.mark.slow
def test_structured_guide_is_closer_to_nuts_than_mean_field():
    """Population-weight SDs: the structured guide within 25% of NUTS, mean-field below it."""
    sim = bp.simulate.hierarchical(n_users=200, comparisons_per_user=30, n_options=100, n_features=3, seed=2)
    data = sim.comparisons()
    nuts = bp.fit(bp.Hierarchical(), data, chains=4, warmup=500, draws=500, progress=False, log_likelihood=False)
    sd = {}
    for guide in ("normal", "hierarchical"):
        f = bp.fit(bp.Hierarchical(), data, method="svi", guide=guide, num_samples=1000, progress=False,
                   log_likelihood=False)
        sd[guide] = f.idata.posterior["weight"].std(("chain", "draw")).values
        # posterior means agree with NUTS within half a NUTS SD
        diff = f.idata.posterior["weight"].mean(("chain", "draw")) - nuts.idata.posterior["weight"].mean(("chain", "draw"))
        assert np.all(np.abs(diff.values) < 0.5 * nuts.idata.posterior["weight"].std(("chain", "draw")).values)
    ref = nuts.idata.posterior["weight"].std(("chain", "draw")).values
    ratio = sd["hierarchical"] / ref
    print("weight SD / NUTS SD: structured", ratio.round(2), "mean-field", (sd["normal"] / ref).round(2))
    assert np.all((ratio > 0.75) & (ratio < 1.25))
    assert np.all(sd["normal"] < sd["hierarchical"])


@pytest.mark.slow
def test_svi_starts_with_many_features():
    """With 32 features NumPyro's default start (uniform(-2, 2) unconstrained) has no finite gradient;
    fit falls back to the prior median instead of failing, and says so in fit.info. Slow (about 30 s:
    NumPyro spends 15 s on its 100 failed random starts before the fallback)."""
    sim = bp.simulate.hierarchical(n_users=30, comparisons_per_user=10, n_options=40, n_features=32,
                                   weight_mean=np.linspace(1.0, -0.5, 32), user_sd=0.5, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bp.ConvergenceWarning)
        fit = bp.fit(bp.Hierarchical(), sim.comparisons(), method="svi", steps=100, num_samples=10,
                     log_likelihood=False, progress=False)
    assert fit.info["svi_init"] == "prior median"
    assert np.all(np.isfinite(fit.idata.svi["loss"].values))
