"""Plots of the checks; each takes a result object and returns a matplotlib Figure (never shows it)."""

from __future__ import annotations

import numpy as np

from bayespref import config
from bayespref.intervals import interval_levels


def _axes(ax, figsize):
    import matplotlib.pyplot as plt

    if ax is None:
        fig, ax = plt.subplots(figsize=figsize)
        return fig, ax
    return ax.figure, ax


def statistic_histogram(check, ax=None):
    """Histogram of a scalar statistic over the replicates with the observed value."""
    fig, ax = _axes(ax, (5, 3.2))
    rep = np.asarray(check.predicted.values, float)
    rep = rep[np.isfinite(rep)]
    ax.hist(rep, bins=30, color="0.75", edgecolor="white", label="replicated")
    obs = check.observed
    if "sample" in obs.dims:  # realised discrepancy: one value per draw
        ax.hist(np.asarray(obs.values, float), bins=30, histtype="step", color="C3", label="observed (per draw)")
    else:
        ax.axvline(float(obs), color="C3", lw=2, label="observed")
    ax.set_xlabel(check.statistic)
    ax.set_ylabel("draws")
    ax.set_title(f"{check.name}: p = {float(check.p_value):.3f} ({check.tail})")
    ax.legend(frameon=False, fontsize=8)
    fig.tight_layout()
    return fig


def intervals(check, ax=None, top: int = 30, ci_prob: float | None = None):
    """Predictive intervals per entry with the observed values; the ``top`` smallest p-values."""
    ci_prob = config.ci_prob(ci_prob)
    t = check.to_frame(ci_prob=ci_prob).dropna(subset=["p_value"])
    t = t.nsmallest(min(top, len(t)), "p_value").iloc[::-1]
    fig, ax = _axes(ax, (6, 0.25 * len(t) + 1.2))
    y = np.arange(len(t))
    ax.hlines(y, t["lower"], t["upper"], color="0.6", lw=3, label=f"replicated {ci_prob:.0%}")
    ax.plot(t["predicted"], y, "|", color="0.3", ms=8)
    bad = t["p_value"].to_numpy() < 0.05
    ax.plot(t["observed"][~bad], y[~bad], "o", color="C0", ms=4, label="observed")
    ax.plot(t["observed"][bad], y[bad], "o", color="C3", ms=5, label="observed, p < 0.05")
    labels = [" / ".join(map(str, k)) if isinstance(k, tuple) else str(k) for k in t.index]
    ax.set_yticks(y, labels, fontsize=7)
    ax.set_xlabel(check.statistic)
    ax.set_title(f"{check.name} ({check.tail} p-values)")
    ax.legend(frameon=False, fontsize=7, loc="best")
    fig.tight_layout()
    return fig


def reliability(check, ax=None, ci_prob: float | None = None):
    """Reliability diagram: observed rate per bin of predicted P(a) with the replicates' band."""
    ci_prob = config.ci_prob(ci_prob)
    rel = check.extra["reliability"]
    groups = list(rel["group"].values)
    fig, ax = _axes(ax, (4.5, 4.2))
    lo, hi = interval_levels(ci_prob)
    ax.plot([0, 1], [0, 1], color="0.6", lw=1, ls="--")
    for k, g in enumerate(groups):
        r = rel.sel(group=g)
        ok = np.asarray(r["count"].values) > 0
        x = np.asarray(r["predicted"].values)[ok]
        band = r["replicated"].isel(bin=np.where(ok)[0]).quantile([lo, hi], "sample").values
        ax.fill_between(x, band[0], band[1], color=f"C{k}", alpha=0.2, lw=0)
        ece = np.atleast_1d(check.observed.values)[k] if len(groups) > 1 else float(check.observed)
        ax.plot(x, np.asarray(r["observed"].values)[ok], "o-", color=f"C{k}", ms=4,
                label=f"{g}: ECE {ece:.3f}" if len(groups) > 1 else f"ECE {ece:.3f}")
    ax.set_xlabel("predicted P(a preferred)")
    ax.set_ylabel("observed share won by a")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_title("calibration (band: replicated data)")
    ax.legend(frameon=False, fontsize=8)
    fig.tight_layout()
    return fig


def comparison(cmp, ax=None):
    """elpd difference to the best model with paired SE bars."""
    t = cmp.table.iloc[::-1]
    fig, ax = _axes(ax, (5.5, 0.45 * len(t) + 1.3))
    y = np.arange(len(t))
    ax.errorbar(-t["elpd_diff"], y, xerr=t["dse"], fmt="o", color="C0", capsize=3)
    ax.axvline(0, color="0.6", lw=1)
    ax.set_yticks(y, list(t.index))
    ax.set_xlabel(f"elpd difference to the best (by {cmp.by}, per {cmp.unit}; bars: paired SE)")
    fig.tight_layout()
    return fig


def rank_histograms(result, ncols: int = 4):
    """SBC rank histograms with the 99% band of the counts under uniformity."""
    import matplotlib.pyplot as plt
    from scipy import stats

    ranks = result.ranks
    P = ranks.sizes["parameter"]
    n = ranks.sizes["simulation"]
    ncols = min(ncols, P)
    nrows = -(-P // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(2.6 * ncols, 2.0 * nrows), squeeze=False)
    edges = np.linspace(0, result.n_draws + 1, result.bins + 1)
    lo, hi = stats.binom.ppf([0.005, 0.995], n, 1 / result.bins)
    for j, ax in enumerate(axes.flat):
        if j >= P:
            ax.axis("off")
            continue
        name = str(ranks["parameter"].values[j])
        ax.axhspan(lo, hi, color="0.85")
        ax.hist(ranks.values[:, j], bins=edges, color="C0" if result.table["passes"].iloc[j] else "C3",
                edgecolor="white")
        ax.set_title(f"{name}\np = {result.table['p_value'].iloc[j]:.3f}", fontsize=8)
        ax.set_yticks([])
        ax.set_xticks([])
    fig.suptitle(f"SBC rank histograms ({n} simulations, L = {result.n_draws})", fontsize=10)
    fig.tight_layout()
    return fig
