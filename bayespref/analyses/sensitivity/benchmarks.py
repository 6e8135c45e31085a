"""Observed user covariates as yardsticks for the sensitivity parameters."""

from __future__ import annotations

import numpy as np
import pandas as pd

from bayespref.analyses.sensitivity.problem import _Problem
from bayespref.models import sites


def _empty_benchmarks() -> pd.DataFrame:
    return pd.DataFrame({"gamma": pd.Series(dtype=float), "delta": pd.Series(dtype=float)},
                        index=pd.Index([], name="covariate"))


def _logistic_slope(x: np.ndarray, e: np.ndarray) -> float:
    """Slope of a logistic regression of the binary x on e (Newton's method, a tiny ridge)."""
    A = np.column_stack([np.ones_like(e), e])
    beta = np.zeros(2)
    for _ in range(50):
        p = 1 / (1 + np.exp(-A @ beta))
        H = A.T @ (A * (p * (1 - p))[:, None]) + 1e-3 * np.eye(2)
        step = np.linalg.solve(H, A.T @ (x - p) - 1e-3 * beta)
        beta = beta + step
        if np.max(np.abs(step)) < 1e-8:
            break
    return float(beta[1])


def _benchmarks(prob: _Problem) -> pd.DataFrame:
    r"""(γ, δ) of confounders as strong as each observed user covariate.

    For covariate column :math:`x_k` (binary; a numeric one is split at its median):
    :math:`\delta_k` is the slope of a logistic regression of :math:`x_k` on the centred exposure
    (the same scale as δ) and :math:`\gamma_k` the posterior mean of its effect on the estimand's
    direction (its group coefficient; for a numeric covariate, per interquartile range).
    Covariates that define the exposure itself are skipped.
    """
    e = prob.est
    if not prob.covariates or not prob.spec.covariate_effects:
        return _empty_benchmarks()
    skip = set()
    if e.kind == "group_contrast":
        skip.add(e.covariate.split("[")[0])
    if e.kind == "preference" and e.group:
        skip |= set(e.group)
    rows = {}
    ex = prob.exposure[prob.active]
    for j, name in enumerate(prob.covariates):
        if name.split("[")[0] in skip:
            continue
        x = prob.cov[prob.active, j]
        binary = np.all(np.isin(x, (0.0, 1.0)))
        scale = 1.0
        if not binary:
            q1, q3 = np.quantile(x, [0.25, 0.75])
            scale = float(q3 - q1) or float(np.std(x))
            x = (x > np.median(x)).astype(float)
        if x.min() == x.max():
            continue
        delta_k = _logistic_slope(x, ex)
        gamma_k = scale * _covariate_effect(prob, j)
        rows[name] = (gamma_k, delta_k)
    if not rows:
        return _empty_benchmarks()
    out = pd.DataFrame.from_dict(rows, orient="index", columns=["gamma", "delta"])
    out.index.name = "covariate"
    return out


def _covariate_effect(prob: _Problem, j: int) -> float:
    """Posterior mean effect of covariate column j on the estimand's direction (logit scale)."""
    post = prob.fit.idata.posterior
    v = prob._option_direction()
    phi = prob._feature_direction()
    if prob.types:
        cbar = prob.cbar
        c1, c0 = cbar.copy(), cbar.copy()
        c1[j], c0[j] = 1.0, 0.0
        samples = {n: post[n].values.reshape((-1,) + post[n].shape[2:]) for n in prob.sites()}
        if sites.TYPE_INTERCEPT not in samples:
            return 0.0

        def pi(c):
            z = samples[sites.TYPE_INTERCEPT] + np.einsum("p,spk->sk", c, samples[sites.TYPE_COEF])
            z = np.exp(z - z.max(-1, keepdims=True))
            return z / z.sum(-1, keepdims=True)
        eff_k = np.zeros(pi(c1).shape)
        if v is not None and sites.WORTH in samples:
            eff_k = eff_k + samples[sites.WORTH] @ v
        if phi is not None and sites.WEIGHT in samples:
            eff_k = eff_k + samples[sites.WEIGHT] @ phi
        return float(np.mean(np.sum((pi(c1) - pi(c0)) * eff_k, -1)))
    total = 0.0
    if v is not None and sites.GROUP_WORTH in post:
        total += float((post[sites.GROUP_WORTH].mean(("chain", "draw")).values[j] * v).sum())
    if phi is not None and sites.GROUP_WEIGHT in post:
        total += float((post[sites.GROUP_WEIGHT].mean(("chain", "draw")).values[j] * phi).sum())
    return total
