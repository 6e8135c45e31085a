"""Model checking and comparison made for paired comparisons.

* posterior predictive checks (:mod:`~bayespref.checks.ppc`): win rates, calibration, per-user
  agreement, position-flip rate, intransitivity;
* cross-validation (:mod:`~bayespref.checks.crossval`): PSIS-LOO per judgement or per user with
  exact refits for bad Pareto k, leave-users-out and leave-prompts-out K-fold;
* model comparison (:func:`compare`);
* simulation-based calibration (:mod:`~bayespref.checks.sbc`);
* convergence report (:func:`convergence`).
"""

from .compare import Comparison, compare
from .convergence import ConvergenceReport, convergence
from .crossval import heldout_log_likelihood, kfold, loo
from .ppc import (
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
from .sbc import SBCResult, sbc

__all__ = [
    "Comparison", "ConvergenceReport", "PPCheck", "SBCResult", "calibration", "check_all", "compare",
    "convergence", "heldout_log_likelihood", "intransitivity", "kfold", "loo", "position_flip", "ppp", "sbc",
    "summary", "user_agreement", "win_rates",
]
