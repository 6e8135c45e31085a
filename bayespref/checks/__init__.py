"""Model checking and comparison made for paired comparisons.

* posterior predictive checks (:mod:`~bayespref.checks.ppc`): win rates, calibration, per-user
  agreement, position-flip rate, intransitivity; for rankings (:mod:`~bayespref.checks.ranking_ppc`):
  first-choice rates, item positions, per-user agreement;
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
from bayespref.checks.ranking_ppc import check_rankings, first_choice, item_positions, ranking_agreement
from bayespref.checks.sbc import SBCResult, sbc
from bayespref.inference.convergence import ConvergenceReport, convergence

__all__ = [
    "Comparison", "ConvergenceReport", "PPCheck", "SBCResult", "calibration", "check_all", "check_rankings",
    "compare", "convergence", "first_choice", "heldout_log_likelihood", "intransitivity", "item_positions", "kfold",
    "loo", "position_flip", "ppp", "ranking_agreement", "sbc", "summary", "user_agreement", "win_rates",
]
