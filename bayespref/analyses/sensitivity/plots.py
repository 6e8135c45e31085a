"""Plots of a grid-mode result: contours over (gamma, delta) and intervals against each parameter."""

from __future__ import annotations

import numpy as np

from bayespref.plots import new_axes


def plot_contour(res, ax=None, benchmarks: bool = True, levels: int = 12, title: str | None = None):
    """Filled contours of the estimand's posterior mean over (δ, γ), with the tipping curve (the
    interval's bound at the null, dashed), the sign-flip curve (mean at the null, solid), the
    fitted estimate (star) and the observed covariates' benchmarks; returns the Figure."""

    fig, ax = new_axes(ax, (6.4, 4.8))
    s = res.summary
    null = res.estimand.null
    cf = ax.contourf(res.delta, res.gamma, s["mean"].values, levels=levels, cmap="RdBu_r" if null == 0 else "PuOr")
    fig.colorbar(cf, ax=ax, label=f"posterior mean of {res.estimand.label}")
    bound = res._near_bound().values
    for field, style, lab in ((bound, "--", f"{round(100 * res.ci_prob)}% interval reaches {null:g}"),
                              (s["mean"].values, "-", f"mean = {null:g}")):
        if np.nanmin(field) <= null <= np.nanmax(field):
            ax.contour(res.delta, res.gamma, field, levels=[null], colors="k", linestyles=style, linewidths=2)
            ax.plot([], [], "k" + style, label=lab)
    ax.plot([0], [0], "*", color="gold", ms=14, mec="k", label="fitted model (no confounding)", clip_on=False)
    if benchmarks:
        b = res.benchmarks()
        for name, r in b.iterrows():
            ax.plot(r["delta"], r["gamma"], "s", color="k", ms=6, clip_on=False)
            ax.annotate(f"{name} (1x)", (r["delta"], r["gamma"]), textcoords="offset points", xytext=(5, 4),
                        fontsize=8)
    ax.set_xlabel(f"δ: log odds ratio of U with exposure ({res.exposure})")
    ax.set_ylabel("γ: log odds ratio of preference, U = 1 vs 0")
    ax.set_title(title or f"Sensitivity of {res.estimand.label}")
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    return fig

def plot_intervals(res, at_gamma=None, at_delta=None, title: str | None = None):
    """Posterior mean and interval of the estimand against γ (δ fixed at ``at_delta``) and
    against δ (γ fixed at ``at_gamma``); defaults: the middle grid values. Returns the Figure."""
    import matplotlib.pyplot as plt

    s = res.summary
    at_delta = res.delta[len(res.delta) // 2] if at_delta is None else at_delta
    at_gamma = res.gamma[np.argsort(np.abs(res.gamma))[len(res.gamma) // 2]] if at_gamma is None else at_gamma
    sd_ = s.sel(delta=at_delta, method="nearest")
    sg_ = s.sel(gamma=at_gamma, method="nearest")
    nv = res.naive()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
    for ax, part, x, lab in ((axes[0], sd_, res.gamma, f"γ (δ = {float(sd_['delta']):.2g})"),
                             (axes[1], sg_, res.delta, f"δ (γ = {float(sg_['gamma']):.2g})")):
        ax.fill_between(x, part["lower"], part["upper"], color="C0", alpha=0.3,
                        label=f"{round(100 * res.ci_prob)}% interval")
        ax.plot(x, part["mean"], "C0-", lw=2, label="posterior mean")
        ax.axhspan(nv["lower"], nv["upper"], color="0.5", alpha=0.15, label="fitted model")
        ax.axhline(res.estimand.null, color="k", lw=1, ls=":")
        ax.set_xlabel(lab)
    axes[0].set_ylabel(res.estimand.label)
    axes[0].legend(fontsize=8)
    fig.suptitle(title or f"Sensitivity of {res.estimand.label}")
    fig.tight_layout()
    return fig
