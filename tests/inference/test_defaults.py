"""Defaults chosen from the model and the data: the method (``method="auto"``), the centring of
users' effects, and NUTS starts at the best mode of a mixture."""

from __future__ import annotations

import numpy as np
import pytest
from numpyro.infer.util import potential_energy

import bayespref as bp
from bayespref.inference import auto
from bayespref.inference.engine import init_from_modes
from bayespref.inference.settings import SviSettings
from bayespref.models import centring


@pytest.fixture(scope="module")
def hier_data():
    sim = bp.simulate.hierarchical(n_users=60, comparisons_per_user=20, n_options=30, n_features=2,
                                   weight_mean=[1.0, -0.5], user_sd=0.5, seed=0)
    return sim.comparisons()


# -- method="auto" ---------------------------------------------------------------------------------
def test_auto_picks_nuts_for_small_data_and_follows_the_options(hier_data):
    spec = bp.Hierarchical()
    assert auto.choose_method(spec, hier_data)[0] == "nuts"
    assert auto.choose_method(spec, hier_data, options={"steps": 100})[0] == "svi"
    assert auto.choose_method(spec, hier_data, options={"importance": 4})[0] == "laplace"
    assert auto.choose_method(spec, hier_data, options={"chains": 2, "draws": 10})[0] == "nuts"
    assert auto.choose_method(spec, hier_data, settings=SviSettings(steps=10))[0] == "svi"
    # an option of no method: NUTS, whose settings check then names it
    assert auto.choose_method(spec, hier_data, options={"nonsense": 1})[0] == "nuts"


def test_auto_picks_laplace_or_svi_above_the_nuts_size(hier_data, monkeypatch):
    monkeypatch.setattr(auto, "NUTS_MAX_OBS", 100)
    method, reason = auto.choose_method(bp.Hierarchical(), hier_data)
    assert method == "laplace" and f"{hier_data.n_obs:,} comparisons" in reason
    assert auto.choose_method(bp.Hierarchical(varying="worths", features=False), hier_data)[0] == "laplace"
    # Davidson ties on many options' worths alone (the paired design, 30 options) are inside it; ties on
    # feature weights, or pooled effects beside the users' ones, are outside it: SVI
    assert auto.choose_method(bp.Hierarchical(varying="worths", features=False, ties=True), hier_data)[0] == "laplace"
    assert auto.choose_method(bp.Hierarchical(ties=True), hier_data)[0] == "svi"
    assert auto.choose_method(bp.Hierarchical(varying="worths"), hier_data)[0] == "svi"
    assert auto.choose_method(bp.BradleyTerry(), hier_data)[0] == "svi"


def _small_random_worths():
    """BradleyTerry(worths="random") on 300 comparisons of 30 options, one short chain: the model, data
    and settings of test_small_data_with_random_effects_get_smaller_steps's fit, so that the quiet auto
    call below and that fit share one compiled sampler."""
    data = bp.simulate.bradley_terry(n_options=30, n_comparisons=300, n_features=2, seed=1).comparisons()
    return bp.BradleyTerry(worths="random"), data, dict(seed=0, chains=1, warmup=50, draws=50, progress=False)


def test_auto_fit_says_what_it_chose(capsys):
    data = bp.simulate.bradley_terry(n_options=5, n_comparisons=60, seed=2).comparisons()
    fit = bp.fit(bp.BradleyTerry(), data, seed=0)
    err = capsys.readouterr().err
    assert "method='nuts'" in err and "60 comparisons" in err
    assert fit.info["method"] == "nuts" and "60 comparisons" in fit.info["method_reason"]
    # progress=False: the choice is made (method="auto") but not printed
    spec, small, quiet = _small_random_worths()
    assert bp.fit(spec, small, **quiet).info["method"] == "nuts"
    assert "bayespref.fit" not in capsys.readouterr().err
    with pytest.raises(bp.ModelError, match="method"):
        bp.fit(bp.BradleyTerry(), data, method="fastest")


# -- centring chosen from the data -----------------------------------------------------------------
@pytest.mark.parametrize("sd", [0.3, 0.8])
def test_moment_estimate_of_the_user_sd_recovers_the_truth(sd):
    sim = bp.simulate.hierarchical(n_users=400, comparisons_per_user=40, n_options=30, n_features=2,
                                   weight_mean=[1.0, -0.5], user_sd=sd, seed=1)
    d = sim.comparisons()
    delta = np.asarray(d.xa - d.xb)
    mu = centring.pooled_fit(delta, np.asarray(d.y))
    info, dev = centring.user_information(delta, np.asarray(d.y), np.asarray(d.user), d.n_users, mu)
    tau = centring.population_sd(info, dev)
    # the pooled (population-averaged) effects: the truth's signs, attenuated by the spread of users
    assert np.all(np.sign(mu) == [1, -1]) and np.all(np.abs(mu) <= np.array([1.0, 0.5]) + 0.15)
    # one-step estimates shrink toward the pooled value: the estimate errs low, never far high
    assert np.all(tau < sd * 1.15) and np.all(tau > sd * 0.5), tau


def test_centring_grows_with_the_information_per_user():
    def chosen(per, sd):
        sim = bp.simulate.hierarchical(n_users=150, comparisons_per_user=per, n_options=30, n_features=2,
                                       weight_mean=[1.0, -0.5], user_sd=sd, seed=3)
        return bp.Hierarchical().centring_choice(sim.comparisons())

    few, many = chosen(5, 0.2), chosen(120, 0.8)
    assert few["centring"] == 0.0 and few["chosen"] == "from the data"
    assert 0.3 < many["centring"] <= centring.MAX_CENTRING
    assert many["median_information"] > few["median_information"]
    assert bp.Hierarchical(centring=0.25).centring_choice(None) == {"centring": 0.25, "chosen": "given"}
    assert bp.Hierarchical(random_effects=False, covariates=["x"]).centring_choice(None) is None


def test_worths_varying_by_user_get_a_centring_too():
    sim = bp.simulate.arena(n_judges=90, battles_per_judge=60, user_sd=0.8, seed=1)
    data = bp.Comparisons.from_arena(sim.battles, user_covariates=sim.judges)
    choice = bp.Hierarchical(varying="worths").centring_choice(data)
    assert choice["chosen"] == "from the data" and len(choice["tau_hat"]) == data.n_options
    assert 0.0 <= choice["centring"] <= centring.MAX_CENTRING


@pytest.mark.slow  # a Hierarchical NUTS compilation (~12 s); keeps the default suite within 10 min
def test_fit_records_the_chosen_centring(hier_data):
    fit = bp.fit(bp.Hierarchical(), hier_data, seed=0, chains=2, warmup=150, draws=100, progress=False)
    choice = fit.info["centring_choice"]
    assert choice["chosen"] == "from the data" and fit.info["centring"] == choice["centring"]
    assert fit.info["init_modes"] is None          # one mode: NumPyro's initialisation


# -- mixtures: chains start at the best mode ----------------------------------------------------------
@pytest.mark.slow  # 14 s; the mixtures' fits, which start from the mode search, stay in the default suite
def test_mode_search_finds_a_mode_at_least_as_good_as_the_truth():
    sim = bp.simulate.latent_types(n_users=80, comparisons_per_user=15, n_options=5, n_types=3, worth_sd=1.5, seed=4)
    data = sim.comparisons()
    spec = bp.LatentTypes(n_types=3)
    fn, arrays = spec.bind(data), spec.arrays(data)
    import jax

    found = init_from_modes(fn, arrays, jax.random.PRNGKey(0), chains=3, starts=8)
    assert found["info"]["starts"] == 8 and found["info"]["modes"] >= 1
    assert found["inverse_mass_matrix"].shape == (3 * 4 + 2,) and np.all(found["inverse_mass_matrix"] > 0)
    first = {k: v[0] for k, v in found["init"].items()}
    assert np.isfinite(float(potential_energy(fn, (arrays,), {}, first)))
    # the truth, on the unconstrained scale (worths of the zero-sum type vectors, shares by stick breaking)
    from numpyro.infer.util import unconstrain_fn

    truth = {"worth": np.asarray(sim.truth["worth"], np.float32),
             "type_share": np.bincount(sim.truth["type"], minlength=3).astype(np.float32) / data.n_users}
    u_truth = unconstrain_fn(fn, (arrays,), {}, truth)
    assert found["info"]["best_potential"] <= float(potential_energy(fn, (arrays,), {}, u_truth)) + 1e-3


def test_latent_types_fit_starts_at_the_mode(latent_types_fit):
    # a mixture's NUTS fit searches the modes first (8 starts by default) and starts its chains and mass
    # matrix there: the session's two-type fit (tests/conftest.py) shows it without another compilation
    _, fit = latent_types_fit
    assert fit.info["init_modes"]["starts"] == 8 and fit.info["init_mass_matrix"]
    sim = bp.simulate.latent_types(n_users=80, comparisons_per_user=15, n_options=5, n_types=3, worth_sd=1.5, seed=4)
    with pytest.raises(bp.ModelError, match="init_modes"):
        bp.fit(bp.LatentTypes(n_types=3), sim.comparisons(), init_modes=-1)


def test_mixtures_on_small_data_get_more_draws():
    from bayespref.inference.settings import NutsSettings, resolve_draws

    sim = bp.simulate.latent_types(n_users=80, comparisons_per_user=15, n_options=5, n_types=3, worth_sd=1.5, seed=4)
    small = sim.comparisons()
    big = bp.simulate.latent_types(n_users=400, comparisons_per_user=15, n_options=5, n_types=2, seed=4).comparisons()
    got = resolve_draws(NutsSettings(), bp.LatentTypes(n_types=3), small)
    assert got[0].draws == 2000 and "a mixture on 1,200 comparisons" in got[1]
    assert resolve_draws(NutsSettings(), bp.LatentTypes(n_types=3), big)[0].draws == 1000   # 6,000 > 5,000
    assert resolve_draws(NutsSettings(), bp.LatentTypes(n_types=1), small)[0].draws == 1000  # one type: no mixture
    assert resolve_draws(NutsSettings(), bp.BradleyTerry(), small) == (NutsSettings(draws=1000), "default")
    assert resolve_draws(NutsSettings(draws=300), bp.LatentTypes(n_types=3), small) == (NutsSettings(draws=300), "given")
    with pytest.raises(bp.ModelError, match="draws"):
        NutsSettings(draws=0)


# -- target acceptance for small data with random effects -----------------------------------------------
def test_small_data_with_random_effects_get_smaller_steps():
    from bayespref.inference.settings import NutsSettings, resolve_target_accept

    small = bp.simulate.bradley_terry(n_options=30, n_comparisons=300, n_features=2, seed=1).comparisons()
    big = bp.simulate.bradley_terry(n_options=30, n_comparisons=6000, n_features=2, seed=1).comparisons()
    random_worths, fixed = bp.BradleyTerry(worths="random"), bp.BradleyTerry(worths="fixed")
    got = resolve_target_accept(NutsSettings(), random_worths, small)
    assert got[0].target_accept == 0.95 and "random effects on 300 comparisons" in got[1]
    assert resolve_target_accept(NutsSettings(), random_worths, big)[0].target_accept == 0.8
    assert resolve_target_accept(NutsSettings(), fixed, small)[0].target_accept == 0.8
    assert resolve_target_accept(NutsSettings(target_accept=0.7), random_worths, small) == (
        NutsSettings(target_accept=0.7), "given")
    fit = bp.fit(random_worths, small, seed=0, chains=1, warmup=50, draws=50, progress=False)
    assert fit.info["target_accept"] == 0.95 and fit.info["target_accept_reason"].startswith("random effects")


def test_user_minibatches_of_worths_for_users_of_very_unequal_activity():
    from bayespref.inference.fit import _prepare
    from bayespref.inference.settings import NutsSettings

    sim = bp.simulate.arena(n_judges=40, battles_per_judge=10, user_sd=0.5, seed=2)
    battles = bp.simulate.arena(n_judges=1, battles_per_judge=300, seed=3).battles  # one judge with 300
    frame = __import__("pandas").concat([sim.battles, battles.assign(judge="judge000")], ignore_index=True)
    data = bp.Comparisons.from_arena(frame, user_covariates=sim.judges)
    spec = bp.Hierarchical(varying="worths", covariates=False, ties=True)
    assert spec.by_user_arrays(data) is None      # too unequal for the sampler's padded layout
    # minibatches of users take the layout whatever the padding; NUTS keeps the per-comparison one
    grouped = _prepare(spec, data, "svi", SviSettings(user_batch_size=10)).grouped
    assert grouped["mask"].sum() == data.n_comparisons and grouped["mask"].shape[0] == data.n_users
    assert _prepare(spec, data, "nuts", NutsSettings()).grouped is None


def test_many_user_varying_effects_and_any_worths_are_independent_by_default():
    from bayespref.models.hierarchical import MAX_CORRELATED

    few = bp.simulate.arena(n_judges=12, battles_per_judge=10, seed=1)          # 6 models
    data = bp.Comparisons.from_arena(few.battles, user_covariates=few.judges)
    spec = bp.Hierarchical(varying="worths")
    worths, weights = [("worth", data.n_options)], [("weight", 3)]
    # worths: independent at any number of options (their common shift is not identified)
    assert not spec.resolved_correlated(worths) and spec.resolved_defaults(data)["correlated"] is False
    assert not spec.resolved_correlated(worths + weights)
    # feature weights: correlated from 2 to MAX_CORRELATED
    assert spec.resolved_correlated(weights) and not spec.resolved_correlated([("weight", 1)])
    assert not spec.resolved_correlated([("weight", MAX_CORRELATED + 1)])
    assert bp.Hierarchical(correlated=True).resolved_correlated([("weight", MAX_CORRELATED + 1)])
    assert bp.Hierarchical(correlated=True).resolved_correlated(worths)
    assert not bp.Hierarchical(correlated=False).resolved_correlated(weights)
    with pytest.raises(bp.ModelError, match="correlated"):
        bp.Hierarchical(correlated="yes")
