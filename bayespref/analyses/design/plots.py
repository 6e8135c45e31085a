"""Figures of the design: target uncertainty along the sequential loop, and the candidates' gains.

Each function takes a result of this package and returns a matplotlib Figure (not shown).
"""

from __future__ import annotations

import numpy as np

from bayespref.errors import DataError

COLOURS = {"eig": "C0", "uncertainty": "C1", "random": "C2"}


def plot_sequential(result, width: float | None = None, measure: str = "width", ax=None):
    """Target uncertainty (``measure``: "width" of the interval or "sd") against the number of
    judgements collected, per strategy: the mean over seeds (line) and the range (band). ``width``
    draws the threshold of :meth:`SequentialResult.summary`."""
    import matplotlib.pyplot as plt

    h = result.history
    if measure not in ("width", "sd"):
        raise DataError(f"measure={measure!r}: use 'width' or 'sd'.")
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(6.0, 3.8))
    for strategy, part in h.groupby("strategy", sort=False):
        g = part.groupby("n_judgements")[measure]
        x = np.asarray(g.mean().index, dtype=float)
        ax.plot(x, g.mean().to_numpy(), label=strategy, color=COLOURS.get(strategy))
        ax.fill_between(x, g.min().to_numpy(), g.max().to_numpy(), alpha=0.15, color=COLOURS.get(strategy))
    if width is not None and measure == "width":
        ax.axhline(width, color="0.4", lw=0.8, ls="--", label=f"width {width:g}")
    label = f"{round(100 * result.ci_prob)}% interval width" if measure == "width" else "posterior SD"
    ax.set_xlabel("judgements collected")
    ax.set_ylabel(label)
    ax.set_title(result.target, fontsize=10)
    ax.legend(frameon=False)
    fig.tight_layout()
    return fig


def plot_scores(table, top: int = 30, ax=None):
    """The ``top`` candidates of a :func:`~bayespref.analyses.design.score` table: EIG against the
    predicted P(a preferred) of every candidate, the chosen ones marked."""
    import matplotlib.pyplot as plt

    if "eig" not in table or "p_a" not in table:
        raise DataError("plot_scores takes the table of bayespref.design.score (columns eig and p_a).")
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(5.5, 3.6))
    ax.scatter(table["p_a"], table["eig"], s=6, color="0.6", label="candidates")
    best = table.nsmallest(top, "rank") if "rank" in table else table.head(top)
    ax.scatter(best["p_a"], best["eig"], s=14, color="C0", label=f"top {len(best)}")
    ax.set_xlabel("predicted P(a preferred)")
    ax.set_ylabel(f"expected information gain ({table.attrs.get('unit', 'nats')})")
    ax.set_title(table.attrs.get("target", ""), fontsize=10)
    ax.legend(frameon=False)
    fig.tight_layout()
    return fig
