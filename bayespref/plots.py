"""Plots: each takes a labelled table or DataTree and returns a matplotlib Figure (never shows it)."""

from __future__ import annotations

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
