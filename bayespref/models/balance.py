r"""Balancing the comparisons' features across a user covariate C, for :class:`~bayespref.Conditioned`.

* :func:`erase` -- linear concept erasure of C from the features (``balance="erase"``);
* :func:`balance_weights` -- stabilised propensity weights that balance the features (levels and
  spreads) across C (``balance="weights"``).

Both are also public in :mod:`bayespref.causal`, next to the estimands they serve.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from bayespref.data.comparisons import Comparisons
from bayespref.errors import DataError

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
