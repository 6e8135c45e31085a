"""Mixture bookkeeping for :class:`~bayespref.LatentTypes`: relabelling and separation diagnostics.

Relabelling
-----------
With exchangeable priors the posterior is symmetric under permutations of the type labels; chains
settle in different labellings and can, rarely, switch within a chain. :func:`relabel` makes
per-type summaries meaningful: it stacks the type-specific parameters (worths, weights, shares,
membership coefficients) of every draw into a (K, P) matrix, standardises each column, and, for
every draw, picks the permutation of the K rows (searched over all K! permutations, vectorised)
closest in squared distance to a reference; the reference starts as the first chain's mean and
is re-estimated from the relabelled draws until no permutation changes (an iterative pivot
method, in the spirit of Stephens 2000). Types are then ordered by size (type 0 the largest).

Limits: when two types are not separated (their parameters overlap in the posterior), no labelling
makes them distinct and their summaries mix; :func:`separation` reports this.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import xarray as xr

from bayespref.models import sites

TYPE_DIM = "type"


def _type_matrix(post: xr.Dataset, names) -> np.ndarray:
    """(chain, draw, K, P) matrix of the type-indexed variables ``names``, columns standardised."""
    blocks = []
    for v in names:
        da = post[v].transpose("chain", "draw", TYPE_DIM, ...)
        arr = da.values.reshape(da.shape[0], da.shape[1], da.shape[2], -1)
        blocks.append(arr)
    x = np.concatenate(blocks, axis=-1).astype(float)
    sd = x.reshape(-1, x.shape[-1]).std(0)
    return x / np.where(sd > 0, sd, 1.0)


def relabel(idata, max_iter: int = 20):
    """Permute the type labels of every draw to a common labelling (see the module docstring).

    Returns the relabelled DataTree; its posterior ``attrs`` record ``relabel_switch_rate``: the
    share of draws whose labels were changed away from their chain's dominant permutation (a
    measure of within-chain switching).
    """
    post = idata.posterior.dataset
    names = [v for v in post.data_vars if TYPE_DIM in post[v].dims and v != sites.USER_LL]
    if not names or post.sizes.get(TYPE_DIM, 1) < 2:
        return idata
    K = post.sizes[TYPE_DIM]
    x = _type_matrix(post, names)  # (C, D, K, P)
    perms = np.array(list(itertools.permutations(range(K))))  # (M, K)
    ref = x[0].mean(0)  # (K, P)
    choice = None
    for _ in range(max_iter):
        # cost[c, d, m] = sum_k || x[c, d, perms[m, k]] - ref[k] ||^2
        xp = x[:, :, perms, :]  # (C, D, M, K, P)
        cost = ((xp - ref) ** 2).sum(axis=(-1, -2))
        new_choice = cost.argmin(-1)  # (C, D)
        relabelled = np.take_along_axis(xp, new_choice[:, :, None, None, None], axis=2)[:, :, 0]
        ref = relabelled.reshape(-1, K, x.shape[-1]).mean(0)
        if choice is not None and np.array_equal(new_choice, choice):
            break
        choice = new_choice
    perm = perms[choice]  # (C, D, K): new label k takes old label perm[..., k]
    # order types by size
    size = _type_sizes(post, perm)
    order = np.argsort(-size, kind="stable")
    perm = perm[:, :, order]
    dominant = np.array([np.bincount(c, minlength=len(perms)).argmax() for c in choice])
    switch_rate = float(np.mean(choice != dominant[:, None]))
    new = post.copy()
    for v in names:
        da = post[v]
        axis = da.dims.index(TYPE_DIM)
        idx = perm.reshape(perm.shape[:2] + (1,) * (axis - 2) + (K,) + (1,) * (da.ndim - axis - 1))
        new[v] = (da.dims, np.take_along_axis(da.values, idx, axis=axis))
    new.attrs = {**post.attrs, "relabel_switch_rate": switch_rate}
    idata = idata.copy()
    idata["posterior"] = xr.DataTree(new)
    return idata


def _type_sizes(post, perm):
    K = perm.shape[-1]
    if sites.TYPE_SHARE in post:
        val = post[sites.TYPE_SHARE].transpose("chain", "draw", TYPE_DIM).values
    elif sites.TYPE_INTERCEPT in post:
        val = post[sites.TYPE_INTERCEPT].transpose("chain", "draw", TYPE_DIM).values
    else:
        return np.zeros(K)
    return np.take_along_axis(val, perm, axis=-1).mean((0, 1))


def separation(membership: xr.DataArray, idata=None, min_share: float = 0.05) -> pd.DataFrame:
    """How well the types are told apart.

    Parameters
    ----------
    membership : DataArray (user, type)
        Posterior membership probabilities (:meth:`Fit.membership`).
    idata : DataTree, optional
        The fit's DataTree, for the parameter distance between types.
    min_share : float
        Types with a smaller mean membership are left out of the nearest-type search.

    Returns
    -------
    pandas.DataFrame, one row per type: ``share`` (mean membership), ``certainty`` (mean of the
    membership probability among users assigned to the type), ``nearest_type`` and ``distance``
    (largest standardised difference |mean_k - mean_j| / sd over the type's worths/weights, to the
    nearest other type). Types with certainty below 0.8 or distance below 2 are not well separated;
    the ``separated`` column says so.
    """
    m = membership.transpose("user", TYPE_DIM).values
    K = m.shape[1]
    assigned = m.argmax(1)
    share = m.mean(0)
    certainty = np.array([m[assigned == k, k].mean() if np.any(assigned == k) else np.nan for k in range(K)])
    nearest = np.full(K, -1)
    distance = np.full(K, np.nan)
    if idata is not None and K > 1:
        post = idata.posterior.dataset
        names = [v for v in (sites.WORTH, sites.WEIGHT) if v in post and TYPE_DIM in post[v].dims]
        if names:
            cols = [post[v].transpose("chain", "draw", TYPE_DIM, ...).values.reshape(
                post.sizes["chain"] * post.sizes["draw"], K, -1) for v in names]
            x = np.concatenate(cols, -1)  # (S, K, P)
            mean, sd = x.mean(0), x.std(0)
            occupied = share >= min_share  # near-empty types (sparse mixtures) are no one's neighbour
            for k in range(K):
                best = (-1, np.inf)
                for j in range(K):
                    if j == k or not occupied[j]:
                        continue
                    dist = np.max(np.abs(mean[k] - mean[j]) / np.sqrt(sd[k] ** 2 + sd[j] ** 2 + 1e-12))
                    if dist < best[1]:
                        best = (j, dist)
                if best[0] >= 0:
                    nearest[k], distance[k] = best
    out = pd.DataFrame({"share": share, "certainty": certainty, "nearest_type": nearest, "distance": distance},
                       index=pd.Index(range(K), name=TYPE_DIM))
    out["separated"] = (out["certainty"] >= 0.8) & ((out["distance"] >= 2) | out["distance"].isna())
    return out
