"""bayespref: hierarchical Bayesian Bradley-Terry models for pairwise preferences.

The package is layered; each folder is one layer and imports only the layers below it (checked in
CI by the import-linter contracts in ``pyproject.toml``):

======================  =====================================================================
``cli/``                the command line and the TOML run specs
``analyses/``           heterogeneity, causal estimands and overlap, sensitivity analysis
``checks/``             posterior predictive checks, cross-validation, comparison, SBC, K selection
``inference/``          :func:`fit` (one engine and settings object per method), :class:`Fit`
``simulate``            simulators of the families (known truths for tests and notebooks)
``models/``             the families: specs, NumPyro functions, likelihood pieces
``data/``               :class:`Comparisons` (validation, readers) and the bundled datasets
base                    ``errors``, ``config`` (defaults, JAX set-up), ``intervals``, ``plots``
======================  =====================================================================

The public names are imported lazily, so ``import bayespref`` stays fast and does not import JAX
until a model is fitted. Modules that moved in the layered layout are still importable under their
old names (``bayespref.fitting``, ``bayespref.heterogeneity``, ...) with a ``DeprecationWarning``.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import warnings

__version__ = "0.1.0"

_LAZY = {
    "Comparisons": "bayespref.data",
    "Rankings": "bayespref.data",
    "TextFeatures": "bayespref.data",
    "load_dataset": "bayespref.data",
    "list_datasets": "bayespref.data",
    "BradleyTerry": "bayespref.models",
    "Hierarchical": "bayespref.models",
    "LatentTypes": "bayespref.models",
    "Conditioned": "bayespref.models",
    "fit": "bayespref.inference",
    "Fit": "bayespref.inference",
    "load_fit": "bayespref.inference",
    "compare": "bayespref.checks",
    "reward_labels": "bayespref.analyses.labels",
    "write_labels": "bayespref.analyses.labels",
    "group_report": "bayespref.report",
    "BayesprefError": "bayespref.errors",
    "DataError": "bayespref.errors",
    "ModelError": "bayespref.errors",
    "FitError": "bayespref.errors",
    "DataWarning": "bayespref.errors",
    "ConvergenceWarning": "bayespref.errors",
    "SeparationWarning": "bayespref.errors",
}

#: short public names of modules (``bp.heterogeneity``, ``from bayespref import causal``)
_MODULES = {
    "simulate": "bayespref.simulate",
    "heterogeneity": "bayespref.analyses.heterogeneity",
    "causal": "bayespref.analyses.causal",
    "overlap": "bayespref.analyses.overlap",
    "sensitivity": "bayespref.analyses.sensitivity",
    "design": "bayespref.analyses.design",
    "labels": "bayespref.analyses.labels",
    "report": "bayespref.report",
    "selection": "bayespref.checks.selection",
    "checks": "bayespref.checks",
    "config": "bayespref.config",
    "inference": "bayespref.inference",
    "plots": "bayespref.plots",
}

#: modules of the flat layout before the layered one -> where they live now (deprecated aliases)
_MOVED = {
    "bayespref.fitting": "bayespref.inference",
    "bayespref.datasets": "bayespref.data.datasets",
    "bayespref.infer": "bayespref.inference.engine",
    "bayespref.laplace": "bayespref.inference.laplace",
    "bayespref.guides": "bayespref.inference.guides",
    "bayespref.mixture": "bayespref.models.mixture",
    "bayespref.heterogeneity": "bayespref.analyses.heterogeneity",
    "bayespref.causal": "bayespref.analyses.causal",
    "bayespref.overlap": "bayespref.analyses.overlap",
    "bayespref.sensitivity": "bayespref.analyses.sensitivity",
    "bayespref.selection": "bayespref.checks.selection",
    "bayespref.runspec": "bayespref.cli.runspec",
}

__all__ = sorted([*_LAZY, *_MODULES]) + ["__version__"]


class _MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """``import bayespref.fitting`` (an old path) gives the module at its new path, with a warning."""

    def find_spec(self, name, path=None, target=None):
        if _MOVED.get(name) is None:
            return None
        return importlib.util.spec_from_loader(name, self)

    def create_module(self, spec):
        new = _MOVED[spec.name]
        warnings.warn(f"{spec.name} moved to {new}; import it from there (or use the bayespref.* public names).",
                      DeprecationWarning, stacklevel=2)
        module = importlib.import_module(new)
        sys.modules[spec.name] = module
        return module

    def exec_module(self, module):
        pass


if not any(isinstance(f, _MovedModules) for f in sys.meta_path):
    sys.meta_path.append(_MovedModules())


def __getattr__(name: str):
    if name in _MODULES:
        value = importlib.import_module(_MODULES[name])
    elif name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
    else:
        raise AttributeError(f"module 'bayespref' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__():
    return __all__
