"""Shared fixtures. Fits are cached per session so several tests can read one fit."""

from __future__ import annotations

import os
import warnings

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")

import bayespref as bp  # noqa: E402

QUICK = dict(chains=2, warmup=300, draws=300, progress=False)


@pytest.fixture(scope="session")
def baseball_fit():
    data = bp.load_dataset("baseball").comparisons()
    return bp.fit(bp.BradleyTerry(position=True), data, seed=11, chains=4, warmup=500, draws=500, progress=False)


@pytest.fixture(scope="session")
def topmodel_fit():
    data = bp.load_dataset("topmodel2007").comparisons(user_covariates=["gender", "q2"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bp.ConvergenceWarning)
        return bp.fit(bp.Hierarchical(varying=["worths"], correlated=False), data, seed=5, **QUICK)
