"""fit(), Fit and load_fit: DataTree layout, prediction, persistence and the errors users meet."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import bayespref as bp
from bayespref.errors import BayesprefError, FitError, ModelError

QUICK = dict(chains=2, warmup=300, draws=300, progress=False)


def test_datatree_groups_dims_and_labels(baseball_fit):
    dt = baseball_fit.idata
    for group in ("posterior", "sample_stats", "log_likelihood", "observed_data"):
        assert group in dt.children
    worth = dt.posterior["worth"]
    assert worth.dims == ("chain", "draw", "option")
    assert set(worth["option"].values) == {"Baltimore", "Boston", "Cleveland", "Detroit", "Milwaukee",
                                           "New York", "Toronto"}
    assert dt.log_likelihood["y"].dims == ("chain", "draw", "comparison")
    assert dt.log_likelihood["y"].sizes["comparison"] == baseball_fit.data.n_comparisons
    # the gauge: worths sum to zero in every draw
    np.testing.assert_allclose(worth.sum("option").values, 0.0, atol=1e-4)


def test_summary_has_rhat_and_ess(baseball_fit):
    s = baseball_fit.summary()
    assert {"mean", "sd", "ess_bulk", "r_hat"} <= set(s.columns)
    assert "position" in s.index and "worth[Boston]" in s.index


def test_hierarchical_user_dims(topmodel_fit):
    post = topmodel_fit.idata.posterior
    assert post["user_worth"].dims == ("chain", "draw", "user", "option")
    assert post["user_worth"].sizes["user"] == 192
    assert post["group_worth"].dims == ("chain", "draw", "covariate", "option")
    assert list(post["covariate"].values) == ["gender[male]", "q2[yes]"]
    # each user's worths are centred over options
    np.testing.assert_allclose(post["user_worth"].mean("option").values, 0.0, atol=1e-4)


def test_predict_probabilities_and_intervals(baseball_fit):
    new = pd.DataFrame({"a": ["Milwaukee", "Baltimore"], "b": ["Baltimore", "Milwaukee"]})
    p = baseball_fit.predict(new)
    assert list(p.columns[:3]) == ["a", "b", "outcome"]
    assert (p["p_a_lower"] <= p["p_a"]).all() and (p["p_a"] <= p["p_a_upper"]).all()
    # the home side (a) gains the position effect: P(Mil at home) > 1 - P(Bal at home beats Mil)
    assert p.loc[0, "p_a"] > 1 - p.loc[1, "p_a"]
    draws = baseball_fit.predict(new, return_draws=True)
    assert draws.dims == ("chain", "draw", "comparison")
    # the same mean, over float32 draws here and in float64 in the table: 4,000 terms in float32
    # round to a few 1e-7 relative
    np.testing.assert_allclose(draws.mean(("chain", "draw")).values, p["p_a"].values, rtol=1e-5)


def test_predict_new_user_needs_covariates_then_uses_population(topmodel_fit):
    new = pd.DataFrame({"a": ["Anni", "Anni"], "b": ["Barbara", "Barbara"], "user": [10_001, 1]})
    with pytest.raises(bp.DataError, match="covariates"):
        topmodel_fit.predict(new)
    covs = pd.DataFrame({"gender": ["female"], "q2": ["no"]}, index=pd.Index([10_001], name="user"))
    p = topmodel_fit.predict(new, user_covariates=covs)
    # a new viewer is uncertain: wider interval than for a known viewer with 15 judgements
    width = p["p_a_upper"] - p["p_a_lower"]
    assert np.isfinite(p["p_a"]).all() and width[0] > 0.3


def test_predict_unknown_option_with_worths_is_an_error(baseball_fit):
    new = pd.DataFrame({"a": ["Boston"], "b": ["Chicago"]})
    with pytest.raises(bp.DataError, match="Chicago|never saw|unknown"):
        baseball_fit.predict(new)


def test_save_load_round_trip_is_exact(baseball_fit, tmp_path):
    path = baseball_fit.save(tmp_path / "fit.nc")
    assert [p.name for p in tmp_path.iterdir()] == ["fit.nc"]  # no temporary files left
    loaded = bp.load_fit(path)
    for group in ("posterior", "sample_stats", "log_likelihood", "observed_data"):
        xr_a, xr_b = baseball_fit.idata[group].dataset, loaded.idata[group].dataset
        assert xr_a.identical(xr_b) or xr_a.equals(xr_b), group
    assert loaded.model == baseball_fit.model
    assert loaded.data.frame.equals(baseball_fit.data.frame)
    assert list(loaded.data.options) == list(baseball_fit.data.options)
    new = pd.DataFrame({"a": ["Boston", "Toronto"], "b": ["Detroit", "Boston"]})
    pd.testing.assert_frame_equal(baseball_fit.predict(new), loaded.predict(new))
    pd.testing.assert_frame_equal(baseball_fit.predict(), loaded.predict())


def test_save_load_hierarchical_with_covariates(topmodel_fit, tmp_path):
    loaded = bp.load_fit(topmodel_fit.save(tmp_path / "h.nc"))
    assert loaded.data.user_table.equals(topmodel_fit.data.user_table)
    np.testing.assert_array_equal(loaded.data.covariates, topmodel_fit.data.covariates)
    pd.testing.assert_frame_equal(topmodel_fit.predict(), loaded.predict())


@pytest.mark.parametrize("content, match", [
    (b"", "not a readable bayespref fit"),
    (b"CDF\x01 truncated garbage", "not a readable bayespref fit"),
])
def test_load_corrupt_file(tmp_path, content, match):
    p = tmp_path / "bad.nc"
    p.write_bytes(content)
    with pytest.raises(FitError, match=match):
        bp.load_fit(p)


def test_load_truncated_fit(baseball_fit, tmp_path):
    path = baseball_fit.save(tmp_path / "fit.nc")
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(FitError):
        bp.load_fit(path)


def test_load_netcdf_that_is_not_a_fit(baseball_fit, tmp_path):
    p = tmp_path / "plain.nc"
    baseball_fit.idata.to_netcdf(p, engine="h5netcdf")
    with pytest.raises(FitError, match="not a bayespref fit"):
        bp.load_fit(p)
    with pytest.raises(FitError, match="No saved fit"):
        bp.load_fit(tmp_path / "missing.nc")


def test_ties_given_to_model_without_ties():
    data = bp.load_dataset("pudding").comparisons()
    with pytest.raises(ModelError, match="ties=True"):
        bp.fit(bp.BradleyTerry(), data, **QUICK)


def test_position_effect_not_identified_for_winner_loser_data():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bp.DataWarning)
        data = bp.load_dataset("flatlizards").comparisons()
    with pytest.raises(ModelError, match="position"):
        bp.fit(bp.BradleyTerry(position=True, worths="random"), data, **QUICK)


@pytest.mark.parametrize("kwargs, match", [
    (dict(model=bp.BradleyTerry(features=["length"])), "features"),
    (dict(model=bp.BradleyTerry(ties=True, link="probit")), "logit"),
    (dict(model=bp.Hierarchical()), "several users"),
    (dict(model=bp.BradleyTerry(), method="laplace"), "method"),
    (dict(model=bp.BradleyTerry(worths=False)), "features"),
    (dict(model="BradleyTerry"), "model"),
])
def test_model_errors(kwargs, match):
    data = bp.load_dataset("citations").comparisons()
    model = kwargs.pop("model")
    with pytest.raises(ModelError, match=match):
        bp.fit(model, data, **QUICK, **kwargs)


def test_bad_spec_options():
    with pytest.raises(ModelError, match="worths"):
        bp.BradleyTerry(worths="maybe")
    with pytest.raises(ModelError, match="varying"):
        bp.Hierarchical(varying=["slopes"])
    with pytest.raises(ModelError, match="link='cauchit' must be one of"):  # refused when made, not at fit
        bp.BradleyTerry(link="cauchit")


def test_data_must_be_comparisons():
    df = pd.DataFrame({"a": ["x"], "b": ["y"], "outcome": [1]})
    with pytest.raises(bp.DataError, match="Comparisons.from_frame"):
        bp.fit(bp.BradleyTerry(), df)
    assert issubclass(bp.DataError, BayesprefError)


@pytest.mark.slow  # a NUTS compilation (~5 s); the messages stay in test_convergence_messages; keeps the default suite within 10 min (CI-like runs: 10:07-10:31 before)
def test_convergence_warning_on_tiny_run():
    data = bp.load_dataset("citations").comparisons()
    with pytest.warns(bp.ConvergenceWarning, match="R-hat|ESS"):
        bp.fit(bp.BradleyTerry(), data, seed=0, chains=2, warmup=10, draws=10, progress=False)


@pytest.mark.slow  # two SVI compilations (~11 s); user minibatches stay in test_scale; keeps the suite within 10 min
def test_svi_minibatch_and_loss_trace():
    sim = bp.simulate.bradley_terry(n_options=6, n_comparisons=2000, n_features=0, seed=4)
    fit = bp.fit(bp.BradleyTerry(), sim.comparisons(), method="svi", batch_size=256, steps=6000,
                 lr=0.02, seed=1, num_samples=400, progress=False)
    assert fit.info["converged"] and fit.info["steps"] < 6000
    assert "svi" in fit.idata.children and fit.idata.svi["loss"].size == fit.info["steps"]
    assert 0 < fit.info["svi_step_seconds"] < 1  # timed after the compiled first chunk
    assert fit.info["svi_init"] == "random"
    assert fit.idata.posterior.sizes["draw"] == 400
    est = fit.idata.posterior["worth"].mean(("chain", "draw")).values
    sd = fit.idata.posterior["worth"].std(("chain", "draw")).values
    assert np.all(np.abs(est - sim.truth["worth"]) < 4 * sd + 0.05)


def test_posterior_predictive_on_request():
    data = bp.load_dataset("citations").comparisons()
    fit = bp.fit(bp.BradleyTerry(), data, seed=2, posterior_predictive=True, **QUICK)
    pp = fit.idata.posterior_predictive["y"]
    assert pp.dims == ("chain", "draw", "comparison")
    # replicated win rate of the first-listed journal close to the observed one
    obs = float(fit.idata.observed_data["y"].mean())
    assert abs(float(pp.mean()) - obs) < 0.03


def test_custom_numpyro_model():
    import numpyro
    import numpyro.distributions as dist

    from bayespref.models.likelihood import observe

    def skill_model(data, *, n_options, predict=False, batch=None, **_):
        with numpyro.plate("option", n_options):
            skill = numpyro.sample("skill", dist.Normal(0.0, 3.0))
        with numpyro.plate("comparison", data["a"].shape[0]):
            observe(skill[data["a"]] - skill[data["b"]], data["y"], predict=predict)

    data = bp.load_dataset("citations").comparisons()
    with warnings.catch_warnings():  # skills are not centred: their common level mixes slowly
        warnings.simplefilter("ignore", bp.ConvergenceWarning)
        fit = bp.fit(bp.models.CustomModel(skill_model, dims={"skill": ["option"]}), data, seed=1, **QUICK)
    s = fit.idata.posterior["skill"]
    assert s.dims == ("chain", "draw", "option")
    diff = float((s.sel(option="Comm Statist") - s.sel(option="Biometrika")).mean())
    assert diff == pytest.approx(-2.9491, abs=0.1)
    assert fit.predict()["p_a"].between(0, 1).all()


def test_same_seed_same_result():
    data = bp.load_dataset("citations").comparisons()
    f1 = bp.fit(bp.BradleyTerry(), data, seed=7, **QUICK)
    f2 = bp.fit(bp.BradleyTerry(), data, seed=7, **QUICK)
    np.testing.assert_array_equal(f1.idata.posterior["worth"].values, f2.idata.posterior["worth"].values)


def test_dense_mass_option_and_bad_value():
    data = bp.simulate.bradley_terry(n_options=4, n_comparisons=100, seed=11).comparisons()
    with pytest.raises(bp.ModelError, match="dense_mass"):
        bp.fit(bp.BradleyTerry(), data, dense_mass="yes", progress=False)
    f = bp.fit(bp.BradleyTerry(), data, dense_mass=[("worth",)], chains=2, warmup=100, draws=100, progress=False)
    assert f.info["dense_mass"] == "[('worth',)]" and f.idata.posterior["worth"].shape == (2, 100, 4)


def test_init_warm_starts_a_fit_on_more_judgements_of_the_same_options():
    """A warm start needs the same parameter shapes and labels, not the same judgements (the design
    loop refits after each batch of new judgements)."""
    data = bp.load_dataset("baseball").comparisons()
    first = bp.fit(bp.BradleyTerry(), data.subset(np.arange(200)), seed=1, chains=1, warmup=100, draws=100,
                   progress=False)
    again = bp.fit(bp.BradleyTerry(), data, seed=2, chains=1, warmup=100, draws=100, init=first, progress=False)
    assert again.idata.posterior["worth"].shape == first.idata.posterior["worth"].shape
    other = bp.load_dataset("citations").comparisons()
    with pytest.raises(bp.ModelError, match="same shapes and labels"):
        bp.fit(bp.BradleyTerry(), other, init=first, chains=1, warmup=50, draws=50, progress=False)


def test_numpyro_sample_checks_are_off_while_a_family_is_fitted_and_only_then():
    """bayespref checks its data itself; NumPyro's per-sample support checks cost a pass over every
    array in every gradient, so they are off while one of bayespref's families is traced and back
    on afterwards; a user's NumPyro function keeps them. The density is the same either way."""
    import jax
    import numpyro
    import numpyro.distributions as dist
    from numpyro.infer.util import log_density

    from bayespref.inference.fit import sample_checks

    before = dist.Normal(0.0, 1.0)._validate_args
    spec = bp.Hierarchical(varying="worths", ties=True, position=True)
    with sample_checks(spec):
        assert dist.Normal(0.0, 1.0)._validate_args is False
    assert dist.Normal(0.0, 1.0)._validate_args is before
    with sample_checks(bp.models.CustomModel(lambda data, **_: None)):
        assert dist.Normal(0.0, 1.0)._validate_args is before

    sim = bp.simulate.arena(n_judges=6, battles_per_judge=8, seed=2)
    data = bp.Comparisons.from_arena(sim.battles)
    fn, arrays = spec.bind(data), spec.arrays(data)

    prior = numpyro.handlers.trace(numpyro.handlers.seed(fn, 0)).get_trace(arrays)   # a point from the prior
    point = {k: site["value"] for k, site in prior.items() if site["type"] == "sample" and not site["is_observed"]}

    def density_and_size():
        def density(p):
            return log_density(fn, (arrays,), {}, p)[0]
        return float(jax.jit(density)(point)), len(jax.make_jaxpr(density)(point).jaxpr.eqns)

    with numpyro.validation_enabled(True):
        checked, n_checked = density_and_size()
    with sample_checks(spec):
        unchecked, n_unchecked = density_and_size()
    assert unchecked == pytest.approx(checked, rel=1e-6)
    assert n_unchecked < n_checked   # the support checks are gone from the traced density
