"""Drawing primitives shared by every room: each takes a labelled table or array and returns a
matplotlib Figure (never shows it). The plots of an analysis or check live with it (e.g.
:mod:`bayespref.analyses.heterogeneity.plots`, :mod:`bayespref.checks.plots`).

``matplotlib.pyplot`` is imported inside the functions that make a new figure: importing it costs
about half a second, which a user who never plots should not pay.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def forest(table: pd.DataFrame, ax=None, xlabel: str = "", title: str | None = None):
    """Horizontal interval plot of a table with ``mean``, ``lower``, ``upper`` columns.

    Rows are sorted by the mean (best at the top). Returns the Figure.
    """
    if ax is None:
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 0.35 * len(table) + 1.2))
    else:
        fig = ax.figure
    t = table.sort_values("mean")
    y = range(len(t))
    ax.hlines(list(y), t["lower"], t["upper"], color="C0", lw=2)
    ax.plot(t["mean"], list(y), "o", color="C0")
    ax.set_yticks(list(y))
    ax.set_yticklabels([str(i) for i in t.index])
    ax.axvline(0, color="0.7", lw=1, ls="--")
    ax.set_xlabel(xlabel)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def new_axes(ax, size):
    """``(figure, ax)``: the given axes' figure, or a new figure of ``size`` inches."""
    if ax is not None:
        return ax.figure, ax
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=size)


def heatmap(ax, values, rows, cols, labels, vmin=0.0, vmax=1.0, cmap="viridis", cbar_label=""):
    im = ax.imshow(values, vmin=vmin, vmax=vmax, cmap=cmap, aspect="auto")
    ax.set_xticks(np.arange(len(cols)))
    ax.set_xticklabels(cols)
    ax.set_yticks(np.arange(len(rows)))
    ax.set_yticklabels(rows)
    for (i, j), text in np.ndenumerate(labels):
        v = values[i, j]
        high = bool(np.isfinite(v) and (v - vmin) / (vmax - vmin) > 0.6)
        ax.text(j, i, text, ha="center", va="center", fontsize="small",
                color="black" if high == (cmap == "viridis") else "white")
    ax.figure.colorbar(im, ax=ax, label=cbar_label)
    return im
