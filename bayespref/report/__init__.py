"""Reports: analyses and checks of a fit collected into one document.

:func:`group_report` (``bp.report.group_report(fit, "region")``): how the groups of a user
covariate differ (per-group rankings, contrasts, rank reversals, pooled vs groups, variance shares)
with the fit's convergence and posterior predictive checks; it renders as HTML in Jupyter and
writes Markdown or HTML plus PNGs (and the tables as CSV) to a folder. ``bayespref report SPEC
--by COV`` writes the same report from the command line.

This layer sits above ``analyses/`` and ``checks/`` and below ``cli/``.
"""

from bayespref.report.group_report import FORMATS, GroupReport, Section, group_report

__all__ = ["FORMATS", "GroupReport", "Section", "group_report"]
