"""Plots of heterogeneity results: per-group intervals, membership by group, rank reversals."""

from __future__ import annotations

import numpy as np
import pandas as pd

from bayespref import config
from bayespref.analyses.heterogeneity.effects import pooled as pooled_effects
from bayespref.analyses.heterogeneity.effects import reversal_matrix, summary
from bayespref.errors import DataError
from bayespref.plots import heatmap, new_axes


def plot_group_effects(effects, var: str | None = None, ci_prob: float | None = None, pooled: bool = True,
                       options=None, ax=None, title: str | None = None):
    """Per-group forest plot: for each option (or feature), the groups' intervals side by side.

    Parameters
    ----------
    effects : xarray.Dataset
        From :func:`bayespref.heterogeneity.group_effects`.
    var : {"utility", "worth", "weight"}, optional
        Variable to plot (default ``utility``, else ``worth``, else ``weight``).
    ci_prob : float, optional
        Interval mass (default the one given to ``group_effects``).
    pooled : bool
        Also show the pooled (user-weighted population average) preference, in black.
    options : list, optional
        Rows to show (option or feature labels).

    Returns
    -------
    matplotlib.figure.Figure
        Rows sorted by the pooled mean (best at the top); points are posterior means, bars
        equal-tailed intervals.

    Examples
    --------
    >>> from bayespref import heterogeneity as het
    >>> fig = plot_group_effects(het.group_effects(fit, "gender"))   # doctest: +SKIP
    """

    if var is None:
        var = next((v for v in ("utility", "worth", "weight") if v in effects), None)
    if var not in effects:
        raise DataError(f"var={var!r} is not in the effects; variables: {list(effects.data_vars)}.")
    da = effects[var]
    term = "option" if "option" in da.dims else "feature"
    ci = ci_prob if ci_prob is not None else effects.attrs.get("ci_prob", config.CI_PROB)
    groups = [str(g) for g in da["group"].values]
    tables = {g: summary(da.sel(group=g).drop_vars(["group", "n_users"], errors="ignore"), ci) for g in groups}
    if pooled:
        tables["pooled"] = summary(pooled_effects(effects)[var], ci)
    order = (tables["pooled"] if pooled else tables[groups[0]])["mean"].sort_values().index
    if options is not None:
        order = [o for o in order if str(o) in {str(x) for x in options}]
    n, k = len(order), len(tables)
    fig, ax = new_axes(ax, (6.5, 0.3 * n * max(k, 2) / 2 + 1.5))
    width = 0.8
    offsets = np.linspace(-width / 2, width / 2, k) if k > 1 else np.zeros(1)
    for j, (name, t) in enumerate(tables.items()):
        t = t.loc[order]
        y = np.arange(n) + offsets[::-1][j]
        style = dict(color="black", marker="D") if name == "pooled" else dict(color=f"C{j}", marker="o")
        ax.hlines(y, t["lower"], t["upper"], color=style["color"], lw=1.8)
        ax.plot(t["mean"], y, ls="none", ms=4.5, label=name, **style)
    ax.set_yticks(np.arange(n))
    ax.set_yticklabels([str(o) for o in order])
    ax.axvline(0, color="0.7", lw=1, ls="--")
    scale = {"utility": "utility", "worth": "log-worth", "weight": "feature weight"}.get(var, var)
    ax.set_xlabel(f"{scale} ({effects.attrs.get('gauge', '')}; {ci:.0%} intervals)" if var != "weight"
                  else f"{scale} ({ci:.0%} intervals)")
    ax.set_ylabel(term)
    ax.legend(title=effects.attrs.get("by"), fontsize="small", loc="best")
    ax.set_title(title if title is not None else f"{var} by {effects.attrs.get('by', 'group')}")
    fig.tight_layout()
    return fig


def plot_membership_by_group(membership, ci_prob: float | None = None, ax=None, title: str | None = None):
    """Heatmap of the mean type-membership probability per group (rows) and type (columns).

    Cells show the posterior mean and the equal-tailed interval.

    Parameters
    ----------
    membership : xarray.DataArray
        From :func:`bayespref.heterogeneity.membership_by_group` (chain, draw, group, type).
    ci_prob : float, optional
        Interval mass (default the one given to ``membership_by_group``).

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> from bayespref import heterogeneity as het
    >>> fig = plot_membership_by_group(het.membership_by_group(fit, "gender"))   # doctest: +SKIP
    """

    ci = ci_prob if ci_prob is not None else membership.attrs.get("ci_prob", config.CI_PROB)
    t = summary(membership, ci)
    groups = [str(g) for g in membership["group"].values]
    types = list(membership["type"].values)
    shape = (len(groups), len(types))
    mean, lo, hi = (t[c].to_numpy().reshape(shape) for c in ("mean", "lower", "upper"))
    labels = np.array([f"{m:.2f}\n[{a:.2f}, {b:.2f}]" for m, a, b in zip(mean.ravel(), lo.ravel(), hi.ravel())],
                      dtype=object).reshape(shape)
    fig, ax = new_axes(ax, (1.6 * len(types) + 2.5, 0.7 * len(groups) + 1.5))
    n = membership["n_users"].values if "n_users" in membership.coords else None
    rows = [f"{g} (n={k})" for g, k in zip(groups, n)] if n is not None else groups
    heatmap(ax, mean, rows, [f"type {k}" for k in types], labels, cbar_label="mean membership probability")
    ax.set_ylabel(membership.attrs.get("by", "group"))
    ax.set_title(title if title is not None else f"Type membership by {membership.attrs.get('by', 'group')} "
                 f"({ci:.0%} intervals)")
    fig.tight_layout()
    return fig


def plot_rank_reversal(reversal, ax=None, title: str | None = None):
    """Matrix of rank-reversal probabilities between groups (max over option pairs).

    Each cell is the largest posterior probability, over pairs of options, that the two groups
    order the pair oppositely, annotated with that pair.

    Parameters
    ----------
    reversal : xarray.DataArray or pandas.DataFrame
        From :func:`bayespref.heterogeneity.rank_reversal`, or a group x group table such as
        :func:`bayespref.heterogeneity.reversal_matrix`.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> from bayespref import heterogeneity as het
    >>> fig = plot_rank_reversal(het.rank_reversal(fit, "q2"))   # doctest: +SKIP
    """

    if isinstance(reversal, pd.DataFrame):
        m = reversal
        labels = np.vectorize(lambda v: f"{v:.2f}")(m.to_numpy())
        by = m.index.name or "group"
    else:
        m = reversal_matrix(reversal)
        flat = reversal.stack(pair=("option_a", "option_b"))
        best = flat.argmax("pair").values
        pa, pb = flat["option_a"].values, flat["option_b"].values
        G = m.shape[0]
        labels = np.empty((G, G), dtype=object)
        for i in range(G):  # a handful of groups
            for j in range(G):
                v = m.iat[i, j]
                labels[i, j] = "" if i == j else f"{v:.2f}\n{pa[best[i, j]]} vs {pb[best[i, j]]}"
        by = reversal.attrs.get("by", "group")
    values = m.to_numpy(dtype=float).copy()
    np.fill_diagonal(values, np.nan)
    fig, ax = new_axes(ax, (1.3 * m.shape[1] + 2.5, 1.0 * m.shape[0] + 1.5))
    heatmap(ax, values, [str(x) for x in m.index], [str(x) for x in m.columns], labels, cmap="Reds",
             cbar_label="P(opposite order), max over option pairs")
    ax.set_xlabel(by)
    ax.set_ylabel(by)
    ax.set_title(title if title is not None else f"Rank reversal between groups of {by}")
    fig.tight_layout()
    return fig
