"""Heterogeneity of preferences between groups of users and latent types.

:mod:`~bayespref.analyses.heterogeneity.effects` computes group effects, contrasts, pooled-vs-group
comparisons, rank reversals, variance shares and membership by group, all as draws;
:mod:`~bayespref.analyses.heterogeneity.plots` draws them. Both are available from here
(``from bayespref import heterogeneity as het``).
"""

from bayespref.analyses.heterogeneity.effects import *  # noqa: F401,F403
from bayespref.analyses.heterogeneity.effects import __all__ as _effects_all
from bayespref.analyses.heterogeneity.plots import plot_group_effects, plot_membership_by_group, plot_rank_reversal

__all__ = [*_effects_all, "plot_group_effects", "plot_membership_by_group", "plot_rank_reversal"]
