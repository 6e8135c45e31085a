"""Shared fixtures. Fits are cached per session so several tests can read one fit."""

from __future__ import annotations

import os
import warnings

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")

import bayespref as bp  # noqa: E402

#: the chains of ``bayespref demo --quick`` (bayespref.cli.runspec.QUICK: 2 x 200 warm-up + 200 draws)
DEMO_QUICK = dict(chains=2, warmup=200, draws=200, progress=False)


@pytest.fixture(scope="session")
def baseball_fit():
    data = bp.load_dataset("baseball").comparisons()
    return bp.fit(bp.BradleyTerry(position=True), data, seed=11, chains=4, warmup=500, draws=500, progress=False)


@pytest.fixture(scope="session")
def topmodel_fit():
    """The demo's model and data (bayespref.cli.DEMO_SPEC) with the demo's --quick chains: the compiled
    sampler is then the one tests/cli/test_cli.py::test_demo_quick runs (one compilation, not two).
    Its users check layouts, identities and prediction wiring, not posterior accuracy."""
    data = bp.load_dataset("topmodel2007").comparisons(user_covariates=["gender", "q2"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bp.ConvergenceWarning)
        return bp.fit(bp.Hierarchical(varying=["worths"], correlated=False), data, seed=5, **DEMO_QUICK)


@pytest.fixture(scope="session")
def conditioned_svi():
    """``(sim, parts, fit)``: an SVI fit of ``Conditioned("objective")`` on simulated judgements whose
    objective conflicts between two groups of users (tests/analyses/test_causal.py checks it); other
    modules that need any SVI fit use this one rather than compiling another."""
    sim = bp.simulate.confounded_objective(rho=0.7, n_users=30, comparisons_per_user=40, n_test=300, seed=2)
    parts = sim.split()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = bp.fit(bp.Conditioned("objective"), parts["train"], method="svi", seed=1, progress=False, steps=2500)
    return sim, parts, fit


@pytest.fixture(scope="session")
def latent_types_fit():
    """``(sim, fit)``: two latent types whose shares differ by group (P(type 1) is 0.2 in group A, 0.8
    in group B; 120 users x 20 comparisons of 8 options), ``LatentTypes(n_types=2)`` by NUTS. Checked
    by tests/analyses/test_heterogeneity.py (membership by group) and tests/inference/test_defaults.py
    (a mixture's chains start at the searched mode), one compiled sampler for both."""
    sim = bp.simulate.latent_types(n_users=120, comparisons_per_user=20, n_options=8, covariate_shift=(0.2, 0.8),
                                   seed=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bp.ConvergenceWarning)
        fit = bp.fit(bp.LatentTypes(n_types=2), sim.comparisons(), seed=2, chains=2, warmup=300, draws=300,
                     progress=False)
    return sim, fit
