"""Inference: one engine per method behind :func:`fit`, one settings object per method, the :class:`Fit`.

* :mod:`~bayespref.inference.fit`: the front door and the method table ``METHODS``;
* :mod:`~bayespref.inference.settings`: ``NutsSettings``, ``SviSettings``, ``LaplaceSettings``;
* :mod:`~bayespref.inference.engine` and :mod:`~bayespref.inference.nuts`: NUTS compiled once per
  model and data shape, SVI with its stopping rule; :mod:`~bayespref.inference.laplace`;
  :mod:`~bayespref.inference.guides` (the structured SVI guide);
* :mod:`~bayespref.inference.result`: :class:`Fit` and :func:`load_fit`;
* :mod:`~bayespref.inference.convergence`: the convergence rules and report.
"""

from bayespref.inference.fit import METHODS, fit
from bayespref.inference.result import Fit, load_fit
from bayespref.inference.settings import SETTINGS, LaplaceSettings, NutsSettings, SviSettings

__all__ = ["METHODS", "SETTINGS", "Fit", "LaplaceSettings", "NutsSettings", "SviSettings", "fit", "load_fit"]
