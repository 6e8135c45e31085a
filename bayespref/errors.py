"""Errors and warnings raised by bayespref.

Every problem with user input raises a subclass of :class:`BayesprefError` whose
message names the offending column, rows or ids and says how to fix it.
"""

from __future__ import annotations


class BayesprefError(Exception):
    """Base class of every error raised by bayespref."""


class DataError(BayesprefError, ValueError):
    """Invalid input data (missing columns, NaN outcomes, unknown ids, ...)."""


class ModelError(BayesprefError, ValueError):
    """A model specification that cannot be fitted to the data it was given, or an invalid argument
    of a model or of an inference method (its settings)."""


class FitError(BayesprefError, RuntimeError):
    """Inference failed, or a saved fit cannot be read back."""


class BayesprefWarning(UserWarning):
    """Base class of bayespref warnings."""


class DataWarning(BayesprefWarning):
    """Data that can be fitted but deserves attention (e.g. a disconnected comparison graph)."""


class ConvergenceWarning(BayesprefWarning):
    """The sampler or optimiser did not clearly converge (R-hat, ESS, divergences, ELBO)."""


class SeparationWarning(BayesprefWarning):
    """Latent types that the data do not tell apart (overlapping types, uncertain memberships)."""
