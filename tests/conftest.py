"""Shared fixtures. Fits are cached per session so several tests can read one fit."""

from __future__ import annotations

import os
import re
import warnings

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")

import bayespref as bp  # noqa: E402

# JAX's devices and compilation cache as the first fit sets them, before any test runs JAX: a test
# process whose first test computes with JAX directly would otherwise see one CPU device and run
# every later fit's chains one after another (tests/test_config.py checks the lazy set-up itself,
# in fresh interpreters)
bp.config.setup_jax()

#: session fits that several test files read: with ``--dist loadfile`` the files that name one run in
#: the same test process (pytest_xdist_make_scheduler below), so each fit is compiled and sampled once
#: per session, not once in each process
SHARED_FITS = ("baseball_fit", "topmodel_fit", "conditioned_svi", "latent_types_fit")
#: files that compile the same sampler as a shared fit without using it (the demo's: topmodel_fit)
SAME_SAMPLER = {"tests/cli/test_cli.py": "topmodel_fit"}

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


def _file_groups(root) -> dict[str, str]:
    """Test file (relative path) -> its group's name (the first of its files): files that name the
    same shared fit form one group (a text search of the test files: the scheduler is made in the
    controlling process, which collects nothing)."""
    files = sorted(p.relative_to(root).as_posix() for p in (root / "tests").rglob("test_*.py"))
    parent = {f: f for f in files}

    def find(f):
        while parent[f] != f:
            f = parent[f]
        return f

    text = {f: (root / f).read_text(encoding="utf-8") for f in files}
    for fit in SHARED_FITS:
        users = [f for f in files if SAME_SAMPLER.get(f) == fit or re.search(rf"\b{fit}\b", text[f])]
        for f in users[1:]:
            parent[find(f)] = find(users[0])
    return {f: find(f) for f in files}


def pytest_xdist_make_scheduler(config, log):
    """``--dist loadfile`` (pyproject.toml's default options) with the files that share a session fit
    sent to one process as one unit; any other ``--dist`` mode is pytest-xdist's own."""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    groups = _file_groups(config.rootpath)

    class SharedFitScheduling(LoadFileScheduling):
        def _split_scope(self, nodeid):
            file = super()._split_scope(nodeid)
            return groups.get(file, file)

    return SharedFitScheduling(config, log)
