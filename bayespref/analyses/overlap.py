r"""Overlap (positivity) diagnostics: what the data can and cannot teach a preference model.

Three kinds of overlap matter (``docs/paper-notes.md`` sections 1 to 3):

* **Latent positivity between features.** If two features move together in the compared pairs,
  their separate effects are learned only from the pairs where they disagree. For two Gaussian
  feature differences with correlation :math:`\rho`, the share of such *informative* pairs (the
  two differences of opposite sign) is :math:`1/2 - \arcsin(\rho)/\pi` (0.50, 0.40, 0.30, 0.14
  for rho = 0, 0.3, 0.6, 0.9). :func:`feature_correlation`, :func:`informative_pairs`.
* **Overlap of groups.** A group-specific estimand :math:`E[L \mid X = x, C = c]` needs comparisons
  like x judged by group c. :func:`propensity` predicts C from what was shown (features, prompt
  covariates) with cross-fitting: propensities near 0 or 1 mean the groups saw different things.
* **Cells.** With a (group, prompt-type) classification, :func:`cells` counts the comparisons and
  the effective number of users per cell; an empty cell means the estimand for that cell rests on
  the prior (and on pooling across groups) alone.

:func:`diagnose` runs them all and warns (``DataWarning``), naming what cannot be learned.
"""

from __future__ import annotations

import dataclasses
import itertools
import warnings

import numpy as np
import pandas as pd
import xarray as xr

from bayespref.data.comparisons import Comparisons
from bayespref.errors import DataError, DataWarning

__all__ = ["OverlapReport", "cells", "diagnose", "feature_correlation", "informative_pairs",
           "informative_share", "plot_overlap", "propensity"]


def informative_share(rho):
    r"""Share of informative pairs for two Gaussian differences with correlation ``rho``:
    :math:`P(\operatorname{sign}\delta_1 \ne \operatorname{sign}\delta_2) = 1/2 - \arcsin(\rho)/\pi`.

    >>> [round(float(informative_share(r)), 2) for r in (0, 0.3, 0.6, 0.9)]
    [0.5, 0.4, 0.3, 0.14]
    """
    return 0.5 - np.arcsin(np.clip(rho, -1, 1)) / np.pi


def _features(data: Comparisons, features):
    names = list(data.feature_names)
    if not names:
        raise DataError("The data have no option features; pass Comparisons.from_frame(features=[...]).")
    feats = names if features is None else list(features)
    unknown = [f for f in feats if f not in names]
    if unknown:
        raise DataError(f"Features {unknown} are not in the data (features: {names}).")
    idx = [names.index(f) for f in feats]
    return feats, np.asarray(data.xa, float)[:, idx], np.asarray(data.xb, float)[:, idx]


def feature_correlation(data: Comparisons, features=None) -> xr.DataArray:
    r"""Correlation matrix of the feature differences :math:`\delta = x_a - x_b` over comparisons.

    Returns a DataArray (feature, feature_bis). A feature whose difference never varies has NaN
    correlations (nothing about it can be learned).
    """
    feats, xa, xb = _features(data, features)
    d = xa - xb
    sd = d.std(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        dc = (d - d.mean(0)) / np.where(sd > 0, sd, np.nan)
        corr = dc.T @ dc / d.shape[0]
    return xr.DataArray(corr, dims=("feature", "feature_bis"), coords={"feature": feats, "feature_bis": feats},
                        name="difference_correlation")


def informative_pairs(data: Comparisons, features=None) -> pd.DataFrame:
    r"""For each pair of features: the correlation of their differences and the share of
    informative comparisons (differences of opposite sign), observed and under the Gaussian
    formula :math:`1/2 - \arcsin(\rho)/\pi`.

    Columns: ``rho``, ``share`` (observed, among comparisons where both differences are
    non-zero), ``share_gaussian``, ``n_informative``, ``n``.
    """
    feats, xa, xb = _features(data, features)
    d = xa - xb
    corr = feature_correlation(data, feats).values
    rows = []
    for i, j in itertools.combinations(range(len(feats)), 2):
        both = (d[:, i] != 0) & (d[:, j] != 0)
        disc = both & (np.sign(d[:, i]) != np.sign(d[:, j]))
        n = int(both.sum())
        rows.append({"feature": feats[i], "feature_bis": feats[j], "rho": corr[i, j],
                     "share": disc.sum() / n if n else np.nan,
                     "share_gaussian": informative_share(corr[i, j]) if np.isfinite(corr[i, j]) else np.nan,
                     "n_informative": int(disc.sum()), "n": n})
    return pd.DataFrame(rows).set_index(["feature", "feature_bis"])


# -- propensity of the groups --------------------------------------------------------------------------

def _group_of(data: Comparisons, condition: str) -> np.ndarray:
    table = data.user_table
    if table is None or condition not in table.columns:
        raise DataError(f"The data have no user covariate {condition!r} (covariates: "
                        f"{[] if table is None else list(table.columns)}); pass it to "
                        "Comparisons.from_frame(user_covariates=[...]).")
    return table[condition].to_numpy()[np.asarray(data.user)]


def _per_comparison(data, values, what):
    """A per-comparison array from an array-like, a column name of data.frame, or a Series by prompt."""
    if isinstance(values, str):
        if values not in data.frame:
            raise DataError(f"{what}={values!r} is not a column of the comparisons' frame "
                            f"({list(data.frame.columns)}); pass an array with one value per comparison.")
        return data.frame[values].to_numpy()
    if isinstance(values, pd.Series) and data.prompts is not None and not values.index.equals(data.comparison_ids):
        prompt_col = data._spec.roles["prompt"]
        mapped = data.frame[prompt_col].map(values)
        if mapped.isna().any():
            raise DataError(f"{what}: no value for prompts {list(pd.unique(data.frame[prompt_col][mapped.isna()]))[:5]}.")
        return mapped.to_numpy()
    arr = np.asarray(values)
    if arr.shape[0] != data.n_comparisons:
        raise DataError(f"{what} has {arr.shape[0]} values for {data.n_comparisons} comparisons; give one per "
                        "comparison (or a Series indexed by prompt id).")
    return arr


def _logistic_fit(X, y, ridge, iters=50):
    """Ridge-penalised logistic regression by Newton's method (intercept unpenalised)."""
    X1 = np.column_stack([np.ones(len(X)), X])
    beta = np.zeros(X1.shape[1])
    pen = np.full(X1.shape[1], ridge)
    pen[0] = 0.0
    for _ in range(iters):
        p = 1 / (1 + np.exp(-(X1 @ beta)))
        g = X1.T @ (p - y) + pen * beta
        H = (X1 * (p * (1 - p))[:, None]).T @ X1 + np.diag(pen) + 1e-9 * np.eye(len(beta))
        step = np.linalg.solve(H, g)
        beta -= step
        if np.max(np.abs(step)) < 1e-8:
            break
    return beta


def _auc(score, y):
    """Area under the ROC curve (Mann-Whitney), ties counted half."""
    ranks = pd.Series(score).rank().to_numpy()
    n1 = y.sum()
    n0 = len(y) - n1
    if n1 == 0 or n0 == 0:
        return np.nan
    return float((ranks[y == 1].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def propensity(data: Comparisons, condition: str, features=None, prompt_covariates=None, folds: int = 5,
               ridge: float = 1.0, seed: int = 0) -> pd.DataFrame:
    r"""How well the group C of the judging user is predicted from what was shown.

    Per level c of C, a ridge logistic regression of :math:`1[C = c]` on the comparison's
    description -- the mean features :math:`(x_a + x_b)/2`, the absolute differences
    :math:`|x_a - x_b|` and ``prompt_covariates`` -- is cross-fitted over ``folds`` folds, giving a
    propensity :math:`e_c(x) = P(C = c \mid x)` for every comparison. The features are
    standardised first.

    Returns one row per level c with: ``n``, ``auc`` (1/2: what was shown says nothing about the
    group; 1: it reveals the group), ``e_mean`` (mean propensity of group c over its own
    comparisons), ``e_q05`` / ``e_q95`` (quantiles over all comparisons), ``outside`` (share of all
    comparisons with :math:`e_c < 0.05` or :math:`> 0.95`: comparisons that group c almost never
    or almost always sees, where group-specific effects are extrapolations).
    """
    g = _group_of(data, condition)
    parts = []
    if data.n_features:
        _, xa, xb = _features(data, features)
        parts += [(xa + xb) / 2, np.abs(xa - xb)]
    if prompt_covariates is not None:
        pc = prompt_covariates
        if isinstance(pc, pd.DataFrame):
            pc = pd.get_dummies(pc, drop_first=True).to_numpy(float)
        pc = np.asarray(pc, float).reshape(data.n_comparisons, -1)
        parts.append(pc)
    if not parts:
        raise DataError("propensity needs option features or prompt_covariates to predict the group from.")
    X = np.hstack(parts)
    sd = X.std(0)
    X = (X - X.mean(0)) / np.where(sd > 0, sd, 1.0)
    fold = np.random.default_rng(seed).permutation(data.n_comparisons) % max(2, folds)
    rows = []
    for level in sorted(pd.unique(g)):
        y = (g == level).astype(float)
        e = np.empty(len(y))
        for k in range(max(2, folds)):
            test = fold == k
            beta = _logistic_fit(X[~test], y[~test], ridge)
            e[test] = 1 / (1 + np.exp(-(beta[0] + X[test] @ beta[1:])))
        rows.append({"group": level, "n": int(y.sum()), "auc": _auc(e, y), "e_mean": e[y == 1].mean(),
                     "e_q05": np.quantile(e, 0.05), "e_q95": np.quantile(e, 0.95),
                     "outside": float(np.mean((e < 0.05) | (e > 0.95)))})
    return pd.DataFrame(rows).set_index("group")


def cells(data: Comparisons, condition: str, prompt_type) -> pd.DataFrame:
    r"""Comparisons and effective number of users per (group, prompt type) cell.

    ``prompt_type``: one value per comparison, a column of ``data.frame``, or a Series indexed by
    prompt id. Columns: ``n`` (comparisons), ``users``, ``ess`` (Kish's effective number of users,
    :math:`(\sum_u n_u)^2 / \sum_u n_u^2`: equals ``users`` when users contribute equally and is
    near 1 when one user carries the cell), ``share`` (of the group's comparisons). Every
    combination of the observed levels appears, empty cells with n = 0.
    """
    g = _group_of(data, condition)
    t = _per_comparison(data, prompt_type, "prompt_type")
    df = pd.DataFrame({"group": g, "prompt_type": t, "user": np.asarray(data.user)})
    per_user = df.groupby(["group", "prompt_type", "user"]).size()
    agg = per_user.groupby(level=["group", "prompt_type"]).agg(
        n="sum", users="size", ess=lambda s: s.sum() ** 2 / (s ** 2).sum())
    full = pd.MultiIndex.from_product([sorted(pd.unique(g)), sorted(pd.unique(t))], names=["group", "prompt_type"])
    out = agg.reindex(full).fillna({"n": 0, "users": 0, "ess": 0.0})
    out[["n", "users"]] = out[["n", "users"]].astype(int)
    out["share"] = out["n"] / out.groupby(level="group")["n"].transform("sum")
    return out


# -- the report ----------------------------------------------------------------------------------------

@dataclasses.dataclass
class OverlapReport:
    """Result of :func:`diagnose`: the tables and the warnings (plain sentences)."""

    correlation: xr.DataArray | None
    informative: pd.DataFrame | None
    propensity: pd.DataFrame | None
    cells: pd.DataFrame | None
    messages: list

    def __repr__(self):
        lines = ["<OverlapReport>"]
        if self.informative is not None:
            worst = self.informative.sort_values("share").head(10)
            lines.append("informative pairs (10 lowest shares):\n" + worst.round(3).to_string())
        if self.propensity is not None:
            lines.append("group propensity:\n" + self.propensity.round(3).to_string())
        if self.cells is not None:
            lines.append("cells:\n" + self.cells.round(2).to_string())
        lines.append("warnings:" + ("".join(f"\n  - {m}" for m in self.messages) if self.messages else " none"))
        return "\n".join(lines)


def diagnose(data: Comparisons, condition: str | None = None, prompt_type=None, features=None,
             prompt_covariates=None, min_share: float = 0.15, min_cell: int = 30, min_users: float = 5,
             max_auc: float = 0.9, warn: bool = True, seed: int = 0) -> OverlapReport:
    r"""Overlap diagnostics with warnings that name what the data cannot teach.

    Warnings (also in ``report.messages``):

    * a pair of features whose differences disagree in sign in less than ``min_share`` of the
      comparisons: their separate effects rest on few pairs (expect wide intervals and failure on
      pairs where they disagree);
    * a feature whose difference never varies: its weight is the prior;
    * (with ``condition``) a group predicted from the comparisons with AUC above ``max_auc``, or
      with more than 10% of comparisons at propensity outside [0.05, 0.95];
    * (with ``condition`` and ``prompt_type``) an empty (group, prompt type) cell -- that
      group-specific estimand rests on the prior alone -- or a cell with fewer than ``min_cell``
      comparisons or ``min_users`` effective users.

    Parameters
    ----------
    data : Comparisons
    condition : str, optional
        User covariate defining the groups.
    prompt_type : array-like, column name or Series by prompt, optional
        A classification of the prompts (e.g. task type) for the cell table.
    features : list of str, optional
        Features to check (default: all).
    prompt_covariates : array or DataFrame, optional
        Extra per-comparison descriptors for the propensity model.
    warn : bool
        Emit each message as a ``DataWarning``.
    """
    msgs = []
    corr = info = prop = cell = None
    if data.n_features:
        feats, xa, xb = _features(data, features)
        flat = np.flatnonzero((xa - xb).std(0) == 0)
        for i in flat:
            msgs.append(f"Feature {feats[i]!r} has the same difference in every comparison: its effect is "
                        "not identified by these data (its weight is the prior).")
        corr = feature_correlation(data, feats)
        if len(feats) > 1:
            info = informative_pairs(data, feats)
            for (f, h), row in info.iterrows():
                if np.isfinite(row["share"]) and row["share"] < min_share:
                    msgs.append(
                        f"Features {f!r} and {h!r} move together (correlation of differences "
                        f"{row['rho']:.2f}): only {row['share']:.1%} of comparisons ({row['n_informative']}) "
                        "separate them, so their separate effects are poorly learned; predictions for pairs "
                        "where they disagree rest on those few comparisons and the prior. Collect pairs that "
                        "vary one of them alone.")
    if condition is not None:
        if data.n_features or prompt_covariates is not None:
            prop = propensity(data, condition, features, prompt_covariates, seed=seed)
            for level, row in prop.iterrows():
                if np.isfinite(row["auc"]) and row["auc"] > max_auc:
                    msgs.append(f"What was shown predicts {condition} = {level!r} almost perfectly (AUC "
                                f"{row['auc']:.2f}): the groups saw different comparisons, so group-specific "
                                "effects on the other group's comparisons are extrapolations.")
                elif row["outside"] > 0.1:
                    msgs.append(f"{row['outside']:.0%} of comparisons have a propensity of {condition} = "
                                f"{level!r} outside [0.05, 0.95]: limited overlap there.")
        if prompt_type is not None:
            cell = cells(data, condition, prompt_type)
            for level, part in cell.groupby(level="group", sort=False):
                types = part.index.get_level_values("prompt_type")
                empty = list(types[part["n"].to_numpy() == 0])
                thin = part[(part["n"] > 0) & ((part["n"] < min_cell) | (part["ess"] < min_users))]
                for t in empty:
                    msgs.append(f"No comparisons of {condition} = {level!r} on prompt type {t!r}: "
                                f"E[L | {condition} = {level!r}] on type-{t!r} prompts cannot be learned from "
                                "these data; it rests on the prior (and on pooling across groups) alone.")
                if len(thin):
                    shown = ", ".join(f"{t!r} (n = {int(r['n'])}, {r['ess']:.1f} effective users)"
                                      for t, r in zip(thin.index.get_level_values("prompt_type")[:5],
                                                      thin.to_dict("records")[:5]))
                    more = f" and {len(thin) - 5} more" if len(thin) > 5 else ""
                    msgs.append(f"{condition} = {level!r} has few comparisons on {len(thin)} prompt type(s): "
                                f"{shown}{more}: estimands for those cells are weakly informed (fewer than "
                                f"{min_cell} comparisons or {min_users} effective users).")
    if warn:
        for m in msgs:
            warnings.warn(m, DataWarning, stacklevel=2)
    return OverlapReport(corr, info, prop, cell, msgs)


def plot_overlap(report: OverlapReport, figsize=None):
    """Plot a report: the difference-correlation matrix and, when present, the cell sizes.

    Returns the matplotlib Figure.
    """
    import matplotlib.pyplot as plt

    panels = [p for p in (report.correlation, report.cells) if p is not None]
    if not panels:
        raise DataError("The report has nothing to plot (no features and no cells).")
    fig, axes = plt.subplots(1, len(panels), figsize=figsize or (5.0 * len(panels), 4.0), squeeze=False)
    k = 0
    if report.correlation is not None:
        ax = axes[0, k]
        c = report.correlation
        im = ax.imshow(c.values, vmin=-1, vmax=1, cmap="RdBu_r")
        ax.set_xticks(range(c.sizes["feature"]), c["feature"].values, rotation=90)
        ax.set_yticks(range(c.sizes["feature"]), c["feature"].values)
        ax.set_title("correlation of feature differences")
        fig.colorbar(im, ax=ax, shrink=0.8)
        k += 1
    if report.cells is not None:
        ax = axes[0, k]
        n = report.cells["n"].unstack("prompt_type")
        im = ax.imshow(n.values, cmap="viridis")
        ax.set_xticks(range(n.shape[1]), [str(v) for v in n.columns])
        ax.set_yticks(range(n.shape[0]), [str(v) for v in n.index])
        ax.set_xlabel("prompt type")
        ax.set_ylabel("group")
        for (i, j), v in np.ndenumerate(n.values):
            ax.text(j, i, str(int(v)), ha="center", va="center", color="w" if v < n.values.max() / 2 else "k")
        ax.set_title("comparisons per cell")
    fig.tight_layout()
    return fig
