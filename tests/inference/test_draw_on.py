"""Drawing on when the automatic check fails (``NutsSettings.extend``): more draws of the same chains,
continued from where they stopped, with the warm-up's step size and mass matrix and the same compiled
sampler."""

from __future__ import annotations

import numpy as np
import pytest

import bayespref as bp
from bayespref import config
from bayespref.errors import ConvergenceWarning
from bayespref.inference import convergence, nuts
from bayespref.inference.settings import DEFAULT_EXTEND, NutsSettings, resolve_extend

SETTINGS = dict(seed=3, chains=2, warmup=100, progress=False)


@pytest.fixture(scope="module")
def data():
    return bp.simulate.bradley_terry(n_options=5, n_comparisons=80, seed=2).comparisons()


@pytest.fixture
def strict(monkeypatch):
    """Thresholds no finite run meets (R-hat above 1, an ESS of 1 per chain), so the check always
    finds something, and any R-hat counts as close enough to draw on."""
    monkeypatch.setattr(config, "RHAT_MAX", 1.0)
    monkeypatch.setattr(config, "ESS_PER_CHAIN", 1)
    monkeypatch.setattr(convergence, "DRAW_ON_RHAT_MAX", np.inf)


@pytest.mark.slow  # three runs compared bit for bit (~17 s; default-suite budget); the default run keeps
# test_default_draws_are_extended_once_and_say_so below
def test_drawing_on_equals_one_longer_run(data, strict):
    builds = nuts.BUILDS["count"]
    with pytest.warns(ConvergenceWarning, match="R-hat"):
        drawn_on = bp.fit(bp.BradleyTerry(), data, draws=40, extend=2, **SETTINGS)
    assert nuts.BUILDS["count"] - builds <= 1          # the extensions reuse the first run's program
    assert drawn_on.info["extensions"] == 2 and len(drawn_on.info["extension_reasons"]) == 2
    assert drawn_on.info["draws"] == 120 and drawn_on.idata.posterior.sizes["draw"] == 120
    assert "after 40 draws per chain" in drawn_on.info["extension_reasons"][0]
    assert "after 80 draws per chain" in drawn_on.info["extension_reasons"][1]
    with pytest.warns(ConvergenceWarning):
        longer = bp.fit(bp.BradleyTerry(), data, draws=120, **SETTINGS)
    assert longer.info["extend"] == 0 and longer.info["extensions"] == 0
    # the same Markov chains: each continues from its last state with its own random key, so the
    # draws, the sampler's statistics and the pointwise log-likelihood are those of the longer run
    for group, name in (("posterior", "worth"), ("sample_stats", "lp"), ("sample_stats", "step_size"),
                        ("log_likelihood", "y")):
        np.testing.assert_array_equal(drawn_on.idata[group].dataset[name].values,
                                      longer.idata[group].dataset[name].values)
    # the remedy of the warning counts the draws made
    assert drawn_on.info["convergence_check"]["remedy"]["draws"] >= 1000


def test_given_draws_are_kept_and_extend_resolves_from_them(data, strict):
    with pytest.warns(ConvergenceWarning):
        given = bp.fit(bp.BradleyTerry(), data, draws=40, **SETTINGS)
    assert given.info["extensions"] == 0 and given.idata.posterior.sizes["draw"] == 40
    assert resolve_extend(NutsSettings(), "given").extend == 0
    assert resolve_extend(NutsSettings(), "default").extend == DEFAULT_EXTEND
    assert resolve_extend(NutsSettings(extend=3), "given").extend == 3
    with pytest.raises(bp.ModelError, match="extend"):
        NutsSettings(extend=-1)


def test_default_draws_are_extended_once_and_say_so(data, strict, capsys):
    with pytest.warns(ConvergenceWarning):
        fit = bp.fit(bp.BradleyTerry(), data, seed=3, chains=2, warmup=100)
    assert fit.info["extend"] == DEFAULT_EXTEND == fit.info["extensions"]
    assert fit.info["draws"] == fit.idata.posterior.sizes["draw"] == 2000
    assert "drawing 1,000 more per chain from where the chains stopped" in capsys.readouterr().err


@pytest.mark.parametrize("check, expected", [
    (dict(max_rhat=1.02, min_ess_bulk=500.0, divergences=0), "max R-hat 1.020 > 1.01"),
    (dict(max_rhat=1.005, min_ess_bulk=250.0, divergences=0), "min bulk ESS 250 < 400"),
    (dict(max_rhat=1.02, min_ess_bulk=250.0, divergences=0), "max R-hat 1.020 > 1.01 and min bulk ESS 250 < 400"),
    (dict(max_rhat=1.005, min_ess_bulk=500.0, divergences=0), ""),    # nothing to mend
    (dict(max_rhat=1.02, min_ess_bulk=500.0, divergences=3), ""),     # divergences: more draws do not help
    (dict(max_rhat=1.2, min_ess_bulk=500.0, divergences=0), ""),      # chains in different places
    (dict(max_rhat=1.005, min_ess_bulk=150.0, divergences=0), ""),    # doubling would not reach 400
    (dict(max_rhat=float("nan"), min_ess_bulk=500.0, divergences=0), ""),
])
def test_when_more_draws_are_worth_drawing(check, expected):
    assert convergence.draw_on_reason(check, chains=4, draws=1000, more=1000) == expected
