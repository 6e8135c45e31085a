"""Posterior draws shared by the checks: predicted probabilities, replicated outcomes, groups."""

from __future__ import annotations

import jax
import numpy as np
import pandas as pd
from numpyro.infer import Predictive

from bayespref.errors import DataError, FitError
from bayespref.inference.engine import as_key
from bayespref.inference.result import Fit
from bayespref.models import sites


def _require_fit(fit):
    if not isinstance(fit, Fit):
        raise FitError(f"Expected a bayespref Fit (from bayespref.fit), got {type(fit).__name__}.")
    return fit


def score(y) -> np.ndarray:
    """Outcome codes (1 a, 0 b, 2 tie) as the score of option a: 1, 0, 0.5."""
    y = np.asarray(y)
    return np.where(y == 2, 0.5, y).astype(float)


def predictive_draws(fit, seed=0, max_draws: int | None = None):
    """Expected score of ``a`` per draw and replicated outcome codes, for the training comparisons.

    Returns ``(p, y_rep)``, both (S, N) numpy arrays over the flattened (chain, draw) sample:
    ``p = P(a) + P(tie) / 2`` and ``y_rep`` outcome codes drawn from the same parameter draws.
    At most ``max_draws`` draws (evenly thinned) are used.
    """
    out = replicate(fit, [sites.OBS, sites.P_A, sites.P_TIE], seed, max_draws)
    p = np.asarray(out[sites.P_A], dtype=float)
    if sites.P_TIE in out:
        p = p + 0.5 * np.asarray(out[sites.P_TIE], dtype=float)
    y_rep = np.asarray(out[sites.OBS])
    if y_rep.dtype.kind == "f":  # ties="half": win fractions (never ties when replicated)
        y_rep = np.where(y_rep == 0.5, 2, y_rep).astype(int)
    return p, y_rep.astype(int)


def replicate(fit, return_sites, seed=0, max_draws: int | None = None) -> dict:
    """The prediction sites ``return_sites`` of the training data, one replicate per posterior draw:
    arrays (S, ...) over the flattened (chain, draw) sample, at most ``max_draws`` (evenly thinned).

    With latent types, one type per user and draw (the model's own prediction draws a type per
    judgement, which would break the coherence of a user's replicated judgements).
    """
    fit = _require_fit(fit)
    fn, samples = fit._latent_samples()
    arrays = fit.model.predict_arrays(fit.data, fit.data)
    S = int(np.prod(next(iter(samples.values())).shape[:2])) if samples else 1
    keep = np.arange(S)
    if max_draws is not None and S > max_draws:
        keep = np.linspace(0, S - 1, max_draws).round().astype(int)
    flat = {k: np.asarray(v).reshape((-1,) + np.asarray(v).shape[2:])[keep] for k, v in samples.items()}
    key = as_key(seed)
    if fit.model.has_types:
        key, sub = jax.random.split(key)
        flat[sites.TYPE_DRAW] = _user_types(fit, keep, sub)
    return Predictive(fn, posterior_samples=flat, batch_ndims=1, return_sites=list(return_sites))(
        key, arrays, predict=True)


def _user_types(fit, keep, key):
    """Type of each comparison's user, drawn once per user and posterior draw: (S, N)."""
    m = fit.membership(draws=True).transpose("chain", "draw", "user", "type").values
    m = m.reshape((-1,) + m.shape[2:])[keep]  # (S, U, K)
    z = np.asarray(jax.random.categorical(key, jax.numpy.log(jax.numpy.asarray(m) + 1e-30), axis=-1))  # (S, U)
    u = np.maximum(np.asarray(fit.data.user), 0)
    return z[:, u]


def comparison_groups(fit, by):
    """Group code per comparison and the group labels, for ``by`` a user covariate, "user" or a Series.

    ``by`` may be the name of a column of the user table given to ``Comparisons.from_frame``
    (``user_covariates``), ``"user"`` (one group per user), or a pandas Series mapping user labels to
    groups. Comparisons of users without a group raise :class:`DataError`.
    """
    data = fit.data
    if by is None:
        return np.zeros(data.n_comparisons, dtype=int), np.array(["all"])
    u = np.asarray(data.user)
    if isinstance(by, str) and by == "user":
        if "user" not in data.frame:
            raise DataError("by='user' needs a user column (Comparisons.from_frame(..., user=...)).")
        return u, np.asarray(data.users).astype(str)
    if isinstance(by, str):
        table = data.user_table
        if table is None or by not in table.columns:
            avail = [] if table is None else list(table.columns)
            raise DataError(f"by={by!r} is not a user covariate of the data; available: {avail or 'none'} "
                            "(or 'user', or a Series mapping user ids to groups).")
        mapping = table[by]
    elif isinstance(by, pd.Series):
        mapping = by
    else:
        raise DataError(f"by must be None, 'user', a user-covariate name or a pandas Series, got {type(by).__name__}.")
    values = mapping.reindex(pd.Index(data.users)).to_numpy()
    per = values[np.maximum(u, 0)]
    missing = pd.isna(per)
    if missing.any():
        users = pd.unique(np.asarray(data.users)[u[missing]])
        raise DataError(f"by: no group for users {list(users[:5])}{' and more' if len(users) > 5 else ''}; "
                        "give every user with judgements a group.")
    codes, labels = pd.factorize(per, sort=True)
    return codes.astype(int), np.asarray(labels).astype(str)


def segment_mean(values: np.ndarray, codes: np.ndarray, n: int, weights=None):
    """Mean of ``values`` (..., N) within each code 0..n-1 (last axis), and the counts (n,).

    Vectorised with a one-hot matrix product; entries with no members are NaN.
    """
    from scipy import sparse

    N = values.shape[-1]
    w = np.ones(N) if weights is None else np.asarray(weights, float)
    onehot = sparse.csr_matrix((w, (np.arange(N), np.asarray(codes))), shape=(N, n))
    counts = np.asarray(onehot.sum(0)).ravel()
    flat = values.reshape(-1, N)
    sums = np.asarray((onehot.T @ flat.T).T).reshape(values.shape[:-1] + (n,))
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums / counts, counts

