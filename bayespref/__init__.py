"""bayespref: hierarchical Bayesian Bradley-Terry models for pairwise preferences.

The public names are imported lazily, so ``import bayespref`` stays fast and does not
initialise JAX until a model is fitted.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_LAZY = {
    "Comparisons": "bayespref.data",
    "BradleyTerry": "bayespref.models",
    "Hierarchical": "bayespref.models",
    "LatentTypes": "bayespref.models",
    "Conditioned": "bayespref.models",
    "fit": "bayespref.fitting",
    "Fit": "bayespref.fitting",
    "load_fit": "bayespref.fitting",
    "load_dataset": "bayespref.datasets",
    "list_datasets": "bayespref.datasets",
    "simulate": "bayespref.simulate",
    "heterogeneity": "bayespref.heterogeneity",
    "selection": "bayespref.selection",
    "checks": "bayespref.checks",
    "compare": "bayespref.checks",
    "sensitivity": "bayespref.sensitivity",
    "causal": "bayespref.causal",
    "overlap": "bayespref.overlap",
    "BayesprefError": "bayespref.errors",
    "DataError": "bayespref.errors",
    "ModelError": "bayespref.errors",
    "FitError": "bayespref.errors",
    "DataWarning": "bayespref.errors",
    "ConvergenceWarning": "bayespref.errors",
    "SeparationWarning": "bayespref.errors",
}

_MODULES = {"simulate", "heterogeneity", "selection", "sensitivity", "causal", "overlap", "checks"}

__all__ = sorted(_LAZY) + ["__version__"]


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'bayespref' has no attribute {name!r}")
    module = importlib.import_module(_LAZY[name])
    value = module if name in _MODULES else getattr(module, name)
    globals()[name] = value
    return value


def __dir__():
    return __all__
