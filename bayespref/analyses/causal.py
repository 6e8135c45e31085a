r"""Causal estimands on a fitted preference model, and linear concept erasure.

Notation: L = 1 when the first option ``a`` is preferred; C is an observed user covariate (group,
objective); X are the comparisons shown (prompt and the two responses with their features).

* :func:`group_preference` -- :math:`E[L \mid C = c]` for chosen option pairs, per group.
* :func:`interventional` -- predictions under an intervention on the comparisons,
  :math:`E[L(do(X = x')) \mid C = c]`: set feature values, or ask one group about the prompts that
  another group was shown (:func:`transported_preference`).
* :func:`standardise` -- group-specific estimands averaged over a chosen target population
  :math:`P^*(C)`.
* :func:`amce` -- the average marginal component effect of a feature with a chosen reference
  distribution of the other features (paper eq. 6).
* :func:`erase` -- linear concept erasure of C from the features (``balance="erase"`` of
  :class:`~bayespref.Conditioned`).
* :func:`balance_weights` -- stabilised propensity weights that balance the comparisons' features
  (levels and spreads) across C (``balance="weights"`` of :class:`~bayespref.Conditioned`).

Every estimand is computed per posterior draw and returned as an ``xarray.DataArray`` with the
``chain`` and ``draw`` dims; :func:`summary` turns it into a table with posterior intervals.
These estimands are causal under the assumptions of ``docs/paper-notes.md`` section 1
(consistency, unconfoundedness given C, overlap); :mod:`bayespref.overlap` checks the last one.
"""

from __future__ import annotations

import itertools
import math
import warnings

import numpy as np
import pandas as pd
import xarray as xr

from bayespref.data.comparisons import Comparisons
from bayespref.errors import DataError, ModelError
from bayespref.intervals import summary
from bayespref.models.balance import BalanceWeights, Eraser, balance_weights, erase  # noqa: F401  (public here)

__all__ = [
    "BalanceWeights",
    "Eraser",
    "accuracy",
    "amce",
    "balance_weights",
    "erase",
    "group_preference",
    "interventional",
    "predict_draws",
    "standardise",
    "summary",
    "summarise",
    "transported_preference",
]


# -- predictions under interventions -------------------------------------------------------------------

def _roles(fit):
    return fit.data._spec.roles


def _condition_column(fit, condition):
    table = fit.data.user_table
    if condition is None:
        cond = getattr(fit.model, "condition", None)
        if cond is None:
            raise ModelError("Name the user covariate that defines the groups: condition=<column>.")
        condition = cond
    if table is None or condition not in table.columns:
        raise DataError(f"The fit's data have no user covariate {condition!r} (covariates: "
                        f"{[] if table is None else list(table.columns)}).")
    return condition


def _group_users(fit, condition, level, n, at=None):
    """User ids and a covariate table for hypothetical new users of group ``level``."""
    table = fit.data.user_table
    others = [c for c in table.columns if c != condition]
    at = dict(at or {})
    missing = [c for c in others if c not in at]
    if missing:
        raise DataError(f"The users have other covariates {missing}; fix them with at={{column: value}} "
                        "(the estimand is conditional on them).")
    uid = f"__{condition}={level}"
    row = {condition: level, **{c: at[c] for c in others}}
    cov = pd.DataFrame([row], index=pd.Index([uid], name=table.index.name))[list(table.columns)]
    cov = cov.astype({c: table[c].dtype for c in table.columns})
    return np.full(n, uid, dtype=object), cov


def predict_draws(fit, frame: pd.DataFrame, *, condition: str | None = None, group=None, at=None,
                  features: pd.DataFrame | None = None) -> xr.DataArray:
    r"""Posterior draws of P(a preferred) for the comparisons of ``frame``: (chain, draw, comparison).

    ``frame`` uses the training frame's columns (``a``, ``b``, feature columns ``<f>_a``/``<f>_b``,
    ``user``, ``prompt``; outcome not needed). With ``group`` the comparisons are judged by a new
    user of that level of the covariate ``condition`` (population level of the group:
    :math:`E[L \mid X, C = c]`), whatever users the frame names. ``features``: an option table for
    options unknown to the training data when the model reads features from a table.
    """
    roles = _roles(fit)
    frame = frame.copy()
    cov = None
    if group is not None:
        condition = _condition_column(fit, condition)
        if roles["user"] is None:
            raise DataError("The fit has no users, so it cannot condition on a group; fit a model with "
                            "users and user covariates.")
        ids, cov = _group_users(fit, condition, group, len(frame), at)
        frame[roles["user"]] = ids
    elif roles["user"] is not None and roles["user"] not in frame:
        frame[roles["user"]] = "__population"
    if roles["prompt"] is not None and roles["prompt"] not in frame:
        frame[roles["prompt"]] = "__new"
    if roles["outcome"] in frame:
        frame = frame.drop(columns=roles["outcome"])
    data = fit.data.encode(frame, features=features, user_covariates=cov)
    return fit.predict(data, return_draws=True)


def _frame_of(data: Comparisons) -> pd.DataFrame:
    """The long frame (labels and feature columns) of encoded comparisons."""
    return data.frame.reset_index(drop=True)


def group_preference(fit, pairs, condition: str | None = None, groups=None, at=None) -> xr.DataArray:
    r"""Group-specific preferences :math:`E[L \mid X = x, C = c]` for chosen comparisons.

    .. math::

        E[L \mid x, C = c] = \int \sigma\big(r_c(a) - r_c(b)\big)\, p(\text{user} \mid C = c)

    per posterior draw: the population-level prediction for a new user of group c (for
    hierarchical models, marginal over that group's users).

    Parameters
    ----------
    fit : Fit
    pairs : DataFrame or Comparisons
        The comparisons to ask about, in the training frame's columns.
    condition : str, optional
        User covariate defining the groups (default: the model's ``condition``).
    groups : list, optional
        Levels to report (default: every level in the training users).
    at : dict, optional
        Values of the users' other covariates.

    Returns
    -------
    xarray.DataArray
        (chain, draw, group, comparison).
    """
    condition = _condition_column(fit, condition)
    frame = _frame_of(pairs) if isinstance(pairs, Comparisons) else pd.DataFrame(pairs).reset_index(drop=True)
    if groups is None:
        groups = sorted(fit.data.user_table[condition].unique())
    out = [predict_draws(fit, frame, condition=condition, group=g, at=at) for g in groups]
    return xr.concat(out, dim=pd.Index([str(g) for g in groups], name="group")).transpose(
        "chain", "draw", "group", "comparison")


def interventional(fit, comparisons, set: dict | None = None, *, condition: str | None = None,
                   group=None, at=None, average: bool = True) -> xr.DataArray:
    r"""Predictions under an intervention on the comparisons, :math:`E[L(do(X = x')) \mid C = c]`.

    .. math::

        \frac{1}{N} \sum_n \sigma\big(r_c(a_n') - r_c(b_n')\big),

    where the comparisons x' are ``comparisons`` with the columns in ``set`` replaced (``do``):
    ``set={"len_a": 0.0}`` sets the feature ``len`` of every first option to 0;
    ``set={"len_a": lambda f: f["len_a"] + 1}`` lengthens it by one. Only the compared features
    change; what the model learned stays.

    Parameters
    ----------
    comparisons : Comparisons or DataFrame
        The comparisons to intervene on (e.g. a test split, or one group's prompts).
    set : dict, optional
        Column -> value, array or callable(frame) -> values.
    condition, group, at :
        Judge as a new user of this group (see :func:`predict_draws`); default: as the frame's
        users (population level for users unknown to the fit).
    average : bool
        Average over the comparisons (dims (chain, draw)); else keep ``comparison``.
    """
    frame = _frame_of(comparisons) if isinstance(comparisons, Comparisons) else pd.DataFrame(
        comparisons).reset_index(drop=True)
    for col, value in (set or {}).items():
        if col not in frame:
            raise DataError(f"interventional: set names column {col!r}, which the comparisons do not "
                            f"have (columns: {list(frame.columns)}).")
        frame[col] = value(frame) if callable(value) else value
    p = predict_draws(fit, frame, condition=condition, group=group, at=at)
    return p.mean("comparison") if average else p


def transported_preference(fit, data: Comparisons, group, prompts_of, condition: str | None = None,
                           at=None) -> xr.DataArray:
    r"""What group ``group`` would prefer on the prompts that group ``prompts_of`` was shown.

    .. math::

        E_{X \sim P(X \mid C = c')}\big[E[L \mid X, C = c]\big]
        = \frac{1}{|\{n: C_n = c'\}|} \sum_{n: C_{u_n} = c'} \sigma\big(r_c(a_n) - r_c(b_n)\big)

    with c = ``group`` and c' = ``prompts_of``: the paper's interventional question (Fig. 4b),
    e.g. what helpfulness-minded users would prefer on the prompts harmlessness-minded users write.
    Under confounding it differs from the observed win rate of group c. Returns (chain, draw).
    """
    condition = _condition_column(fit, condition)
    if data.user_table is None or condition not in data.user_table:
        raise DataError(f"transported_preference: `data` has no user covariate {condition!r}.")
    level = data.user_table[condition].to_numpy()[np.asarray(data.user)]
    rows = np.flatnonzero(level == prompts_of)
    if not rows.size:
        raise DataError(f"transported_preference: no comparisons of users with {condition} = {prompts_of!r}.")
    return interventional(fit, data.subset(rows), condition=condition, group=group, at=at)


def standardise(estimand: xr.DataArray, target="uniform", dim: str = "group",
                data: Comparisons | None = None, condition: str | None = None) -> xr.DataArray:
    r"""Average a group-specific estimand over a target population :math:`P^*(C)`.

    .. math::

        \tau^* = \sum_c P^*(C = c)\; \tau_c

    Parameters
    ----------
    estimand : DataArray with dim ``dim`` (the groups, labels as strings)
    target : "uniform", "empirical", dict or Series
        Weights of the groups (normalised here). "empirical": the groups' shares among the users of
        ``data`` (with ``condition``).
    """
    if dim not in estimand.dims:
        raise DataError(f"standardise: the estimand has no dim {dim!r} (dims {estimand.dims}).")
    labels = [str(g) for g in estimand[dim].values]
    if isinstance(target, str) and target == "uniform":
        w = pd.Series(1.0, index=labels)
    elif isinstance(target, str) and target == "empirical":
        if data is None or condition is None:
            raise DataError("standardise(target='empirical') needs data= and condition= (the users whose "
                            "group shares are the target).")
        w = data.user_table[condition].astype(str).value_counts().astype(float)
    elif isinstance(target, (dict, pd.Series)):
        w = pd.Series(target, dtype=float)
        w.index = [str(i) for i in w.index]
    else:
        raise DataError(f"standardise: target must be 'uniform', 'empirical', a dict or a Series; got {target!r}.")
    unknown = sorted(set(w.index) - set(labels))
    if unknown:
        raise DataError(f"standardise: target names groups {unknown} that the estimand lacks ({labels}).")
    if (w < 0).any() or w.sum() <= 0:
        raise DataError("standardise: target weights must be non-negative with a positive sum.")
    w = w.reindex(labels, fill_value=0.0)
    weights = xr.DataArray((w / w.sum()).to_numpy(), dims=dim, coords={dim: estimand[dim].values})
    return (estimand * weights).sum(dim)


def amce(fit, feature: str, levels=(1.0, 0.0), reference="uniform", *, design=None,
         condition: str | None = None, group=None, at=None, both_orders: bool = True,
         max_profiles: int = 4096, seed: int = 0) -> xr.DataArray:
    r"""Average marginal component effect of a feature (paper eq. 6, after Hainmueller et al.).

    .. math::

        \text{AMCE}_k = \int E\big[L(Z^k = z_1, Z'^k = z_0, Z^{-k} = z, Z'^{-k} = z)\big]\, m(z)\,dz

    the probability that a response with feature k at ``levels[0]`` is preferred to one at
    ``levels[1]`` that agrees with it on every other feature, averaged over the profiles z of the
    other features under the reference distribution m. 0.5 means no effect.

    Parameters
    ----------
    feature : str
        A factor: a column of the profiles passed to ``design`` (default: a model feature).
    levels : (z1, z0)
    reference : "uniform", "empirical" or DataFrame
        m: "uniform" weighs every combination of the observed values of the other factors equally
        (factors with few distinct values, e.g. binary); "empirical" uses the observed responses'
        profiles (both options of every training comparison); a DataFrame gives the profiles (one
        row each, equal weights).
    design : callable, optional
        Maps a DataFrame of factor profiles to the model's feature columns (e.g. adds the product of
        two factors for an interaction feature). Default: the factors are the features.
    condition, group, at :
        Judge as a new user of this group (see :func:`predict_draws`).
    both_orders : bool
        Average over showing the z1 response first and second, so that a position effect cancels.
    max_profiles : int
        Profiles beyond this are subsampled (``seed``), with equal weights.

    Returns
    -------
    xarray.DataArray (chain, draw)
    """
    feats = list(fit.model.feature_names(fit.data))
    data = fit.data
    names = list(data.feature_names)
    idx = [names.index(f) for f in feats]
    observed = pd.DataFrame(np.vstack([np.asarray(data.xa)[:, idx], np.asarray(data.xb)[:, idx]]), columns=feats)
    if design is None:
        factors = feats
    else:
        if not isinstance(reference, pd.DataFrame):
            raise DataError("amce(design=...) needs reference=<DataFrame of factor profiles>, since the "
                            "factors are not the model's features.")
        factors = list(reference.columns)
    if feature not in factors:
        raise DataError(f"amce: {feature!r} is not a factor; factors: {factors}.")
    others = [f for f in factors if f != feature]
    if isinstance(reference, pd.DataFrame):
        missing = [f for f in others if f not in reference]
        if missing:
            raise DataError(f"amce: the reference profiles lack factors {missing}.")
        profiles = reference[others].reset_index(drop=True)
    elif reference == "empirical":
        profiles = observed[others]
    elif reference == "uniform":
        values = [np.unique(observed[f]) for f in others]
        n = math.prod(len(v) for v in values)
        if n > max_profiles:
            raise DataError(f"amce(reference='uniform'): the other factors have {n} value combinations "
                            f"(more than max_profiles={max_profiles}); 'uniform' is for factors with few "
                            "levels. Use reference='empirical' or pass a DataFrame of profiles.")
        profiles = pd.DataFrame(list(itertools.product(*values)), columns=others)
    else:
        raise DataError(f"amce: reference must be 'uniform', 'empirical' or a DataFrame; got {reference!r}.")
    if len(profiles) > max_profiles:
        profiles = profiles.sample(max_profiles, random_state=seed).reset_index(drop=True)
    hi, lo = profiles.assign(**{feature: levels[0]}), profiles.assign(**{feature: levels[1]})
    fa = design(hi) if design is not None else hi[feats]
    fb = design(lo) if design is not None else lo[feats]
    missing = [f for f in feats if f not in fa]
    if missing:
        raise DataError(f"amce: design(...) must return the model's features {feats}; it lacks {missing}.")
    frame, table = _profile_frame(fit, fa[feats], fb[feats])
    p = predict_draws(fit, frame, condition=condition, group=group, at=at, features=table)
    if both_orders:
        frame2, table2 = _profile_frame(fit, fb[feats], fa[feats])
        p2 = predict_draws(fit, frame2, condition=condition, group=group, at=at, features=table2)
        p = 0.5 * (p + (1 - p2.values))
    return p.mean("comparison")


def _profile_frame(fit, fa: pd.DataFrame, fb: pd.DataFrame):
    """Comparisons of new options with the given feature rows (per-comparison columns or a table)."""
    spec = fit.data._spec
    roles = spec.roles
    n = len(fa)
    ida = np.array([f"__profile{i}:a" for i in range(n)], dtype=object)
    idb = np.array([f"__profile{i}:b" for i in range(n)], dtype=object)
    frame = pd.DataFrame({roles["a"]: ida, roles["b"]: idb})
    if spec.feature_mode == "columns":
        sa, sb = spec.suffixes
        for name, col in zip(fit.data.feature_names, spec.feature_columns):
            if name in fa:
                frame[f"{col}{sa}"] = fa[name].to_numpy()
                frame[f"{col}{sb}"] = fb[name].to_numpy()
            else:  # a feature the model does not use: any value, equal for both options
                frame[f"{col}{sa}"] = frame[f"{col}{sb}"] = 0.0
        return frame, None
    if spec.feature_mode == "table":
        cols = list(spec.feature_columns)
        full_a = pd.DataFrame(0.0, index=ida, columns=cols)
        full_b = pd.DataFrame(0.0, index=idb, columns=cols)
        for name, col in zip(fit.data.feature_names, cols):
            if name in fa:
                full_a[col] = fa[name].to_numpy()
                full_b[col] = fb[name].to_numpy()
        return frame, pd.concat([full_a, full_b])
    raise DataError("amce needs a model of option features; the fit's data have none.")


# -- summaries ----------------------------------------------------------------------------------------

def summarise(estimand: xr.DataArray, ci_prob: float | None = None) -> pd.DataFrame:
    """Deprecated spelling of :func:`summary` (:func:`bayespref.intervals.summary`)."""
    warnings.warn("causal.summarise is deprecated; use causal.summary.", DeprecationWarning, stacklevel=2)
    return summary(estimand, ci_prob)


def accuracy(fit, data: Comparisons, truth=None) -> float:
    """Share of the decided comparisons of ``data`` whose outcome the posterior mean prediction gets
    right (P(a) > 1/2 for ``a`` preferred). With ``truth`` (true reward differences, one per
    comparison), agreement with the sign of the true difference instead."""
    p = fit.predict(data, return_draws=True).mean(("chain", "draw")).values
    if truth is not None:
        t = np.asarray(truth, float)
        if t.shape != p.shape:
            raise DataError(f"accuracy: truth has {t.size} values for {p.size} comparisons.")
        keep = t != 0
        return float(np.mean((p[keep] > 0.5) == (t[keep] > 0)))
    y = np.asarray(data.y)
    keep = (y == 0) | (y == 1)
    if not keep.any():
        raise DataError("accuracy: the comparisons have no decided outcomes.")
    return float(np.mean((p[keep] > 0.5) == (y[keep] == 1)))
