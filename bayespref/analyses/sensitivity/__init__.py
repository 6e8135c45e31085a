r"""Sensitivity analysis for an unobserved binary user-level confounder.

A conclusion drawn from preference data ("group B weighs conciseness more than group A", "feature f
raises preference") assumes that nothing unmeasured drives both what a user is exposed to (their
group, the prompts and features they see) and how they judge. This package asks how strong such a
confounder would have to be to overturn the conclusion, in the model's own terms.

The confounder
--------------
Each user u has a hidden binary :math:`U_u`. It is tied to the user's exposure :math:`e_u` (a group
indicator, or how much of a feature the user's comparisons show) by the sensitivity parameter
:math:`\delta`, and shifts the user's preference along the estimand's direction by :math:`\gamma`:

.. math::

    \operatorname{logit} P(U_u = 1 \mid e_u) = \operatorname{logit}(p) + \delta\, \tilde e_u, \qquad
    \operatorname{logit} P(a_n \succ b_n \mid U) = d_n(\theta) + \gamma\, U_{u_n} s_n,

where :math:`d_n(\theta)` is the fitted model's reward difference, :math:`s_n` the comparison's
coordinate along the target effect (the difference of the target feature, or of the target option's
indicator) and :math:`\tilde e_u` the exposure, centred (left in 0/1 units when binary, so
:math:`\delta` is the log odds ratio of U between the two exposure groups; standardised otherwise).
Both :math:`\gamma` and :math:`\delta` are log odds ratios: :math:`\gamma` of the preference, for
U = 1 against U = 0, and :math:`\delta` of U, per unit of exposure. ``prevalence`` is p. U is summed
out exactly, user by user,

.. math::

    \log p(y_u \mid \theta, \gamma, \delta) = \log \sum_{k \in \{0, 1\}} P(U_u = k \mid e_u)
        \prod_{n \in u} p(y_n \mid d_n(\theta) + \gamma k s_n),

(for :class:`~bayespref.LatentTypes` jointly with the user's type), so the augmented model is an
ordinary NumPyro model with continuous parameters; :math:`\gamma = 0` gives back the fitted model.
With (γ, δ) fixed the estimand is identified; the data say nothing about (γ, δ) themselves
(McCandless, Gustafson & Levy 2007).

Two modes
---------
* :func:`grid`: the estimand over a grid of (γ, δ). The augmented model is fitted at every grid
  point at once: stochastic variational inference (NumPyro ``AutoNormal``) vectorised over the grid
  (``jax.vmap`` over chunks of points, one compilation), each point warm-started from the fit at
  γ = 0 and run with the same random numbers (common random numbers, so differences between points
  are not noise). The variational fits give each point's shift and spread of the estimand relative to
  γ = 0; these are applied to the posterior draws of the reference fit (location-scale transport,
  see :func:`grid`). ``method="nuts"`` refits NUTS at every point instead (exact, slow: use it on a
  few points to check the fast mode).
* :func:`prior`: priors on (γ, δ) (McCandless-Gustafson), one NUTS fit of the augmented model; the
  posterior of the estimand integrates over plausible confounding.

Estimands (:func:`group_contrast`, :func:`feature_effect`, :func:`preference`) and summaries
(:meth:`GridSensitivity.tipping_point`, :meth:`GridSensitivity.robustness_value`,
:meth:`GridSensitivity.benchmarks`, :meth:`GridSensitivity.evalue`) are described where defined.

Modules
-------
:mod:`~bayespref.sensitivity.estimands` (what is estimated), :mod:`~bayespref.sensitivity.likelihood`
(the U-augmented likelihood), :mod:`~bayespref.sensitivity.problem` (the fit's arrays, the shift
direction, the exposure and the estimand per posterior draw), :mod:`~bayespref.sensitivity.grid_mode`
and :mod:`~bayespref.sensitivity.prior_mode` (the two modes), :mod:`~bayespref.sensitivity.results`
(:class:`GridSensitivity`), :mod:`~bayespref.sensitivity.benchmarks` (observed covariates as
yardsticks), :mod:`~bayespref.sensitivity.plots` and :mod:`~bayespref.sensitivity.simulator`
(:func:`simulate_confounded`).

Examples
--------
>>> import bayespref as bp
>>> from bayespref import sensitivity as sa
>>> sim = sa.simulate_confounded(n_users=100, seed=1)
>>> fit = bp.fit(bp.Hierarchical(covariates=["group"]), sim.comparisons(), progress=False)  # doctest: +SKIP
>>> res = sa.grid(fit, sa.group_contrast("group[B]", "x0"))                                 # doctest: +SKIP
>>> res.tipping_point(); res.plot_contour()                                                 # doctest: +SKIP
"""

from bayespref.analyses.sensitivity.estimands import (
    ESTIMANDS,
    Estimand,
    _estimand_from,  # noqa: F401  (used by the CLI's spec reader)
    feature_effect,
    group_contrast,
    preference,
)
from bayespref.analyses.sensitivity.grid_mode import grid
from bayespref.analyses.sensitivity.prior_mode import PriorSensitivity, prior
from bayespref.analyses.sensitivity.problem import _Problem  # noqa: F401  (the tests build problems directly)
from bayespref.analyses.sensitivity.results import GridSensitivity, _evalue_from_or  # noqa: F401
from bayespref.analyses.sensitivity.simulator import simulate_confounded

__all__ = [
    "ESTIMANDS", "Estimand", "GridSensitivity", "PriorSensitivity", "feature_effect", "grid", "group_contrast",
    "preference", "prior", "simulate_confounded",
]
