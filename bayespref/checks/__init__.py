"""Model checking and comparison made for paired comparisons.

* posterior predictive checks (:mod:`~bayespref.checks.ppc`): win rates, calibration, per-user
  agreement, position-flip rate, intransitivity;
* cross-validation (:mod:`~bayespref.checks.crossval`): PSIS-LOO per judgement or per user with
  exact refits for bad Pareto k, leave-users-out and leave-prompts-out K-fold;
* model comparison (:func:`compare`);
* simulation-based calibration (:mod:`~bayespref.checks.sbc`);
* convergence report (:func:`convergence`, from :mod:`bayespref.inference.convergence`: the
  automatic check after a fit uses the same rules and thresholds);
* choosing the number of latent types (:mod:`~bayespref.checks.selection`).
"""

from bayespref.checks.compare import Comparison, compare
from bayespref.checks.crossval import heldout_log_likelihood, kfold, loo
from bayespref.checks.ppc import (
    PPCheck,
    calibration,
    check_all,
    intransitivity,
    position_flip,
    ppp,
    summary,
    user_agreement,
    win_rates,
)
from bayespref.checks.sbc import SBCResult, sbc
from bayespref.inference.convergence import ConvergenceReport, convergence

__all__ = [
    "Comparison", "ConvergenceReport", "PPCheck", "SBCResult", "calibration", "check_all", "compare",
    "convergence", "heldout_log_likelihood", "intransitivity", "kfold", "loo", "position_flip", "ppp", "sbc",
    "summary", "user_agreement", "win_rates",
]
