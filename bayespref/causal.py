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
``chain`` and ``draw`` dims; :func:`summarise` turns it into a table with posterior intervals.
These estimands are causal under the assumptions of ``docs/paper-notes.md`` section 1
(consistency, unconfoundedness given C, overlap); :mod:`bayespref.overlap` checks the last one.
"""

from __future__ import annotations

import dataclasses
import itertools
import math

import numpy as np
import pandas as pd
import xarray as xr

from .data import Comparisons
from .errors import DataError, ModelError

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
    "summarise",
    "transported_preference",
]


# -- linear concept erasure ---------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Eraser:
    r"""An affine map :math:`x \mapsto x - P(x - \bar x)` that removes linear information about C.

    ``P`` (feature x feature) is the LEACE projection (Belrose et al. 2023): with
    :math:`W = \Sigma_{xx}^{-1/2}` and :math:`U` an orthonormal basis of the column space of
    :math:`W \Sigma_{xc}`, :math:`P = W^{+} U U^\top W`. After erasure the cross-covariance of the
    features with C is zero, so no linear predictor of C from the features beats the constant, and
    among the maps that achieve this it changes the features least (in the Mahalanobis norm).
    """

    mean: np.ndarray
    projection: np.ndarray
    features: tuple
    condition: str

    def transform(self, x: np.ndarray) -> np.ndarray:
        """Erase C from feature rows ``x`` (..., feature)."""
        x = np.asarray(x, float)
        return x - (x - self.mean) @ self.projection.T

    @property
    def erased_rank(self) -> int:
        """Number of feature directions removed (at most the number of C's design columns)."""
        return round(float(np.trace(self.projection)))


def erase(data: Comparisons, condition: str, features=None, alpha: float | None = 0.01,
          tol: float = 1e-8) -> Eraser:
    r"""Fit the linear concept erasure of the user covariate ``condition`` from the features.

    Each response (option a and option b of every comparison) is one row x with the covariate
    design row c of the judging user; the map of :class:`Eraser` is estimated from these rows.

    What it can remove: every direction of the features whose **mean** differs by C (more
    generally, the whole cross-covariance :math:`\Sigma_{xc}`), e.g. a prompt-type proxy whose
    level tells which group asked. What it cannot remove: information about C in the features'
    spread or in non-linear functions (one group seeing more varied responses, a feature that
    matters only in interaction with another); and it cannot tell a spurious C-predictive
    direction from a causal one: if a feature that truly drives preferences also differs in mean
    between groups (because of confounded prompt assignment), erasure removes it too and the reward
    can no longer use it. Erasure acts on the features of each response, so it changes feature
    differences :math:`x_a - x_b` only along the erased directions.

    Parameters
    ----------
    data : Comparisons
        Training data with the user covariate ``condition``.
    condition : str
        User covariate column (a categorical covariate brings all its dummy columns).
    features : list of str, optional
        Features to erase from (default: all of the data's features, in order).
    alpha : float or None
        Erase only linear information that the data show: when the features do not predict C
        better than chance (the test :math:`n R^2 \sim \chi^2_{p q}` of no linear association,
        level ``alpha``; p features, q design columns of C) nothing is erased. Otherwise an
        erasure of sampling noise would remove a random feature direction, causal ones included.
        None: always erase.

    Examples
    --------
    >>> import bayespref as bp
    >>> sim = bp.simulate.confounded_objective(rho=0.9, n_users=20, comparisons_per_user=30, n_test=10)
    >>> train = sim.split()["train"]
    >>> er = erase(train, "objective")
    >>> er.erased_rank
    1
    """
    names = list(data.feature_names)
    feats = tuple(names if features is None else features)
    unknown = [f for f in feats if f not in names]
    if unknown:
        raise DataError(f"erase: features {unknown} are not in the data (features: {names}).")
    cols = [i for i, c in enumerate(data.covariate_names) if c == condition or c.startswith(f"{condition}[")]
    if not cols:
        raise DataError(f"erase: the data have no user covariate {condition!r} (covariates: "
                        f"{list(data.covariate_names) or 'none'}); pass it to Comparisons.from_frame("
                        "user_covariates=[...]).")
    fidx = [names.index(f) for f in feats]
    X = np.vstack([np.asarray(data.xa, float)[:, fidx], np.asarray(data.xb, float)[:, fidx]])
    Z = np.asarray(data.comparison_covariates, float)[:, cols]
    Z = np.vstack([Z, Z])
    if X.shape[0] < 3:
        raise DataError("erase needs several comparisons to estimate covariances.")
    mean = X.mean(0)
    Xc, Zc = X - mean, Z - Z.mean(0)
    n = X.shape[0]
    sxx = Xc.T @ Xc / n
    sxz = Xc.T @ Zc / n
    lam, V = np.linalg.eigh(sxx)
    ok = lam > tol * max(lam.max(), 1e-300)
    W = (V[:, ok] / np.sqrt(lam[ok])) @ V[:, ok].T
    W_pinv = (V[:, ok] * np.sqrt(lam[ok])) @ V[:, ok].T
    u, s, _ = np.linalg.svd(W @ sxz, full_matrices=False)
    U = u[:, s > tol * max(s.max(initial=0.0), 1e-300)] if s.size else u[:, :0]
    if alpha is not None:
        from scipy.stats import chi2

        # n R^2 of C on the features, summed over C's design columns (whitened cross-covariance)
        szz = np.diag(Zc.T @ Zc / n)
        stat = n * float(np.sum((W @ sxz) ** 2 / np.where(szz > 0, szz, np.inf)))
        if stat < chi2.ppf(1 - alpha, df=max(1, int(ok.sum()) * Z.shape[1])):
            U = U[:, :0]
    P = W_pinv @ U @ U.T @ W
    return Eraser(mean=mean, projection=P, features=feats, condition=condition)


# -- propensity (balancing) weights ---------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class BalanceWeights:
    r"""Stabilised propensity weights of the comparisons, fitted by :func:`balance_weights`.

    Attributes
    ----------
    weights : ndarray (comparison,)
        :math:`w_i`, mean 1 within each level of C.
    propensity : ndarray (comparison,)
        :math:`\hat e_i = \hat P(C = c_i \mid f_i)`, the fitted probability of the comparison's own
        level.
    level : ndarray (comparison,)
        Index into ``levels`` of each comparison's level of C.
    levels : ndarray
        The levels of C (sorted).
    marginal : ndarray (level,)
        :math:`\hat P(C = k)`: share of the comparisons with level k.
    cap : float
        Truncation point of the raw weights (``inf``: none).
    n_truncated : int
        Comparisons whose raw weight exceeded ``cap``.
    design : ndarray (comparison, column)
        The propensity model's inputs, standardised (``design_names``).
    coef : ndarray (column + 1, level - 1)
        Multinomial logit coefficients (first row: intercepts; level 0 is the reference).
    """

    weights: np.ndarray
    propensity: np.ndarray
    level: np.ndarray
    levels: np.ndarray
    marginal: np.ndarray
    cap: float
    n_truncated: int
    design: np.ndarray
    design_names: tuple
    coef: np.ndarray
    features: tuple
    condition: str

    def summary(self) -> pd.DataFrame:
        r"""One row per level of C: ``n`` comparisons, ``ess`` (Kish's effective sample size
        :math:`(\sum w)^2 / \sum w^2`), ``ess_share`` (ess / n), ``max_weight``, ``n_truncated``
        and ``min_propensity`` (smallest fitted :math:`\hat P(C = c_i \mid f_i)` of the level)."""
        rows = []
        for k, lv in enumerate(self.levels):
            m = self.level == k
            w = self.weights[m]
            ess = float(w.sum() ** 2 / np.sum(w ** 2))
            rows.append({"level": lv, "n": int(m.sum()), "ess": ess, "ess_share": ess / m.sum(),
                         "max_weight": float(w.max()),
                         "n_truncated": int(np.sum(m & (self._raw > self.cap))),
                         "min_propensity": float(self.propensity[m].min())})
        return pd.DataFrame(rows).set_index("level")

    @property
    def _raw(self):
        return self.marginal[self.level] / self.propensity

    def balance_table(self) -> pd.DataFrame:
        r"""Imbalance of each propensity input across the levels of C, before and after weighting:
        the largest difference between two levels' means, in units of the input's SD (the
        standardised mean difference; columns ``smd_unweighted``, ``smd_weighted``)."""
        rows = {}
        for j, name in enumerate(self.design_names):
            x = self.design[:, j]
            un = [x[self.level == k].mean() for k in range(len(self.levels))]
            wt = [np.average(x[self.level == k], weights=self.weights[self.level == k])
                  for k in range(len(self.levels))]
            sd = x.std() or 1.0
            rows[name] = {"smd_unweighted": (max(un) - min(un)) / sd, "smd_weighted": (max(wt) - min(wt)) / sd}
        return pd.DataFrame(rows).T


def _multinomial_logistic(X, k, n_levels, ridge):
    """L2-penalised multinomial logistic regression (level 0 the reference; intercepts unpenalised);
    returns the (column + 1, level - 1) coefficients and the (comparison, level) probabilities."""
    from scipy.optimize import minimize

    X1 = np.column_stack([np.ones(len(X)), X])
    Y = np.eye(n_levels)[k]
    shape = (X1.shape[1], n_levels - 1)
    pen = np.ones(shape)
    pen[0] = 0.0

    def probs(b):
        eta = np.column_stack([np.zeros(len(X1)), X1 @ b.reshape(shape)])
        eta -= eta.max(1, keepdims=True)
        p = np.exp(eta)
        return p / p.sum(1, keepdims=True), eta

    def obj(b):
        p, eta = probs(b)
        B = b.reshape(shape)
        nll = -np.sum(Y * (eta - np.log(np.exp(eta).sum(1, keepdims=True)))) + 0.5 * ridge * np.sum(pen * B ** 2)
        grad = X1.T @ (p - Y)[:, 1:] + ridge * pen * B
        return nll, grad.ravel()

    res = minimize(obj, np.zeros(np.prod(shape)), jac=True, method="L-BFGS-B",
                   options={"maxiter": 1000, "gtol": 1e-8})
    return res.x.reshape(shape), probs(res.x)[0]


def balance_weights(data: Comparisons, condition: str, features=None, trim: float | None = 0.99,
                    ridge: float = 1.0) -> BalanceWeights:
    r"""Stabilised propensity (balancing) weights of the comparisons for the user covariate C.

    The propensity model is an L2-penalised multinomial logistic regression of each comparison's
    level of C (the judging user's) on the comparison's features :math:`f_i`: for every feature,
    the **level** :math:`(x_{a} + x_{b})/2` and the **spread** :math:`|x_{a} - x_{b}|`
    (standardised; columns without variation dropped). The spread is what linear erasure
    (:func:`erase`) cannot reach: which features vary in a comparison. With
    :math:`\hat e_i = \hat P(C = c_i \mid f_i)` and :math:`\hat P(C = k)` the share of comparisons
    of level k, the raw stabilised weights are

    .. math::

        \tilde w_i = \frac{\hat P(C = c_i)}{\hat e_i},

    truncated at their ``trim`` quantile (over all comparisons) so that no single comparison
    dominates, and then normalised to mean 1 within each level of C,
    :math:`w_i = \min(\tilde w_i, q) / \overline{\min(\tilde w, q)}_{c_i}`. Weighting level c's
    comparisons by :math:`w` makes their feature distribution approximate the pooled one,
    :math:`P(f)`, which does not depend on C: the weighted data look as if prompts had been
    assigned to users at random (the paper's rho = 0.5), so a comparison that is rare for its
    level of C (an inconsistent t != c judgement) is upweighted. With no such comparisons
    (rho = 1: C is a function of the features) there is nothing to upweight: the propensities are
    all near 1, the weights near 1, and what the data do not contain cannot be created.

    Parameters
    ----------
    data : Comparisons
        Training data with the user covariate ``condition`` (every level with comparisons).
    condition : str
        User covariate column holding C (categorical; any number of levels).
    features : list of str, optional
        Features whose level and spread enter the propensity model (default: all).
    trim : float or None
        Quantile of the raw weights at which they are truncated (default 0.99); None: no truncation.
    ridge : float
        L2 penalty of the standardised slopes (intercepts unpenalised).

    Returns
    -------
    BalanceWeights
        The weights, propensities and diagnostics (``.summary()``: effective sample size and largest
        weight per level; ``.balance_table()``: standardised mean differences before and after).

    Examples
    --------
    >>> import bayespref as bp
    >>> sim = bp.simulate.confounded_shared(rho=0.8, n_users=20, comparisons_per_user=20, n_test=10)
    >>> bw = balance_weights(sim.split()["train"], "objective")
    >>> bw.weights.shape
    (400,)
    """
    names = list(data.feature_names)
    feats = tuple(names if features is None else features)
    unknown = [f for f in feats if f not in names]
    if unknown:
        raise DataError(f"balance_weights: features {unknown} are not in the data (features: {names}).")
    if not feats:
        raise DataError("balance_weights needs features (the propensity model's inputs); the data have none.")
    if trim is not None and not (0 < trim <= 1):
        raise DataError(f"balance_weights: trim={trim!r} must be a quantile in (0, 1] or None.")
    if not ridge >= 0:
        raise DataError(f"balance_weights: ridge={ridge!r} must be non-negative.")
    table = data.user_table
    if table is None or condition not in table.columns:
        raise DataError(f"balance_weights: the data have no user covariate {condition!r} (user covariates: "
                        f"{[] if table is None else list(table.columns)}); pass it to Comparisons.from_frame("
                        "user_covariates=[...]).")
    if table[condition].isna().any():
        raise DataError(f"balance_weights: some users have no value of {condition!r}.")
    levels = np.asarray(sorted(table[condition].unique()), dtype=object)
    code = {lv: i for i, lv in enumerate(levels)}
    k = np.array([code[v] for v in table[condition].to_numpy()[np.asarray(data.user)]], dtype=int)
    counts = np.bincount(k, minlength=len(levels))
    if len(levels) < 2:
        raise DataError(f"balance_weights: {condition!r} has a single level; there is nothing to balance.")
    if np.any(counts == 0):
        empty = [str(lv) for lv, n in zip(levels, counts) if n == 0]
        raise DataError(f"balance_weights: no comparisons of users with {condition} in {empty}; every level "
                        "of C needs comparisons to estimate its propensity (drop the level from the users).")
    fidx = [names.index(f) for f in feats]
    xa, xb = np.asarray(data.xa, float)[:, fidx], np.asarray(data.xb, float)[:, fidx]
    F = np.column_stack([(xa + xb) / 2, np.abs(xa - xb)])
    fnames = [f"level:{f}" for f in feats] + [f"spread:{f}" for f in feats]
    sd = F.std(0)
    keep = sd > 1e-12
    F = (F[:, keep] - F[:, keep].mean(0)) / sd[keep]
    fnames = tuple(n for n, kp in zip(fnames, keep) if kp)
    coef, P = _multinomial_logistic(F, k, len(levels), ridge)
    e = np.clip(P[np.arange(len(k)), k], 1e-12, 1.0)
    marginal = counts / counts.sum()
    raw = marginal[k] / e
    cap = float(np.quantile(raw, trim)) if trim is not None else float("inf")
    w = np.minimum(raw, cap)
    w = w / (np.bincount(k, weights=w, minlength=len(levels)) / counts)[k]
    return BalanceWeights(weights=w, propensity=e, level=k, levels=levels, marginal=marginal, cap=cap,
                          n_truncated=int(np.sum(raw > cap)), design=F, design_names=fnames, coef=coef,
                          features=feats, condition=condition)


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

def summarise(estimand: xr.DataArray, ci_prob: float = 0.9) -> pd.DataFrame:
    """Posterior mean, SD and equal-tailed ``ci_prob`` interval of an estimand, one row per
    combination of its non-sample dims (columns ``mean``, ``sd``, ``lower``, ``upper``)."""
    if not {"chain", "draw"} <= set(estimand.dims):
        raise DataError(f"summarise needs posterior draws with dims chain and draw; got {estimand.dims}.")
    lo, hi = (1 - ci_prob) / 2, 1 - (1 - ci_prob) / 2
    flat = estimand.stack(sample=("chain", "draw"))
    q = flat.quantile([lo, hi], dim="sample")
    ds = xr.Dataset({"mean": flat.mean("sample"), "sd": flat.std("sample", ddof=1),
                     "lower": q.sel(quantile=lo, drop=True), "upper": q.sel(quantile=hi, drop=True)})
    rest = [d for d in estimand.dims if d not in ("chain", "draw")]
    if not rest:
        return pd.DataFrame({k: [float(v)] for k, v in ds.items()}, index=pd.Index([estimand.name or "estimand"]))
    return ds.to_dataframe()[["mean", "sd", "lower", "upper"]]


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
