"""Partially centred NUTS coordinates of Hierarchical: same model, another parameterisation."""

import jax.numpy as jnp
import numpy as np
import numpyro
import pytest
from numpyro.infer.util import log_density

import bayespref as bp
from bayespref.errors import ModelError


def _data(seed=0, users=12):
    sim = bp.simulate.hierarchical(n_users=users, comparisons_per_user=15, n_options=30, n_features=3,
                                   weight_mean=[1.0, -0.5, 0.3], user_sd=0.6, seed=seed)
    return sim.comparisons()


def _log_joint(fn, data, values):
    lp, _ = log_density(fn, (data,), {}, values)
    return float(lp)


@pytest.mark.parametrize("correlated", [False, True])
def test_centred_density_is_the_non_centred_one_times_the_jacobian(correlated):
    """log p(x, g) = log p(z, g) - sum_u [sum_e c_ue log tau_e + log det L] for x = c m + tau^c L z."""
    data = _data()
    spec = bp.Hierarchical(correlated=correlated, centring=0.4)
    fn, arrays, sizes = spec.bind(data), spec.arrays(data), spec.sizes(data)
    c = spec.centring_weight(data)
    assert np.ndim(c) == 0 and 0 < c < 1
    centred = {**arrays, "centring": jnp.asarray(c)}
    # a point of the non-centred model, drawn from the prior
    tr = numpyro.handlers.trace(numpyro.handlers.seed(fn, 3)).get_trace(arrays)
    point = {k: s["value"] for k, s in tr.items() if s["type"] == "sample" and not s["is_observed"]}
    draws = {k: np.asarray(v)[None, None] for k, v in point.items()}
    x = spec.centred_draws(draws, centred, sizes)["z_pc"][0, 0]
    cpoint = {**{k: v for k, v in point.items() if k != "z"}, "z_pc": jnp.asarray(x)}
    # the same users' effects and the same likelihood
    tr_c = numpyro.handlers.trace(numpyro.handlers.substitute(fn, data=cpoint)).get_trace(centred)
    tr_n = numpyro.handlers.trace(numpyro.handlers.substitute(fn, data=point)).get_trace(arrays)
    np.testing.assert_allclose(tr_c["user_weight"]["value"], tr_n["user_weight"]["value"], atol=1e-5)
    np.testing.assert_allclose(tr_c["z"]["value"], point["z"], atol=1e-5)
    tau = np.asarray(point["sd_weight"])
    log_jac = data.n_users * c * np.sum(np.log(tau))
    if correlated:
        log_jac += data.n_users * np.sum(np.log(np.diag(np.asarray(point["corr_chol"]))))
    np.testing.assert_allclose(_log_joint(fn, centred, cpoint), _log_joint(fn, arrays, point) - log_jac,
                               rtol=1e-5, atol=1e-3)


def test_centring_weight():
    data = _data(users=6)
    np.testing.assert_allclose(bp.Hierarchical(centring=0.3).centring_weight(data), 0.3)
    assert np.ndim(bp.Hierarchical(centring=0.3).centring_weight(data)) == 0
    assert bp.Hierarchical(centring=0).centring_weight(data) is None
    assert bp.Hierarchical(centring=0.3, random_effects=False).centring_weight(data) is None


@pytest.mark.parametrize("bad", [-0.1, 1.5, "auto", True])
def test_bad_centring_is_a_model_error(bad):
    with pytest.raises(ModelError, match="centring"):
        bp.Hierarchical(centring=bad)


@pytest.mark.filterwarnings("ignore::bayespref.errors.ConvergenceWarning")
def test_nuts_fit_reports_z_not_the_sampler_coordinates():
    data = _data(users=8)
    fit = bp.fit(bp.Hierarchical(correlated=False, centring=0.4), data, seed=1, chains=2, warmup=150, draws=100, progress=False)
    post = fit.idata.posterior
    assert "z_pc" not in post and post["z"].dims == ("chain", "draw", "user", "effect")
    assert fit.info["centring"] == 0.4
    # z is the standardised deviation: user weights = weight + sd * z
    w = post["weight"].values[..., None, :] + post["sd_weight"].values[..., None, :] * post["z"].values
    np.testing.assert_allclose(w, post["user_weight"].values, atol=1e-4)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::bayespref.errors.ConvergenceWarning")
def test_start_from_svi_is_mapped_to_the_centred_coordinates():
    data = _data(users=8)
    svi = bp.fit(bp.Hierarchical(correlated=False, centring=0.4), data, method="svi", steps=300, num_samples=50,
                 seed=2, progress=False)
    warm = bp.fit(bp.Hierarchical(correlated=False, centring=0.4), data, init=svi, seed=1, chains=2, warmup=150,
                  draws=100, progress=False)
    assert warm.info["init_mass_matrix"] and "z_pc" not in warm.idata.posterior
    np.testing.assert_allclose(warm.idata.posterior["weight"].mean(("chain", "draw")).values, [1.0, -0.5, 0.3],
                               atol=0.6)
