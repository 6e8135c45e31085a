r"""Simulated rankings with known worths: complete, top-k or tied, pooled, per user or per latent type.

The generator draws each ranking from the Plackett-Luce model of
:mod:`bayespref.models.plackett_luce`, with ties of two items as in Turner et al. (2020) when
``log_tie`` is given: at every stage the chooser picks one remaining item j with weight
:math:`e^{r_j}` or a pair {i, j} with weight :math:`\delta_2 e^{(r_i + r_j)/2}`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from bayespref.data.rankings import Rankings
from bayespref.simulate.families import make_labels, option_labels


@dataclass(frozen=True)
class SimulatedRankings:
    """Simulated rankings: ``frame`` (long: ranking, option, rank -- NaN when shown but not ranked --
    and user), ``user_table`` (or None) and ``truth`` (the true parameters)."""

    frame: pd.DataFrame
    user_table: pd.DataFrame | None
    truth: dict

    def rankings(self, **kwargs) -> Rankings:
        """The :class:`~bayespref.Rankings` of the simulated data."""
        kw = {"ranking": "ranking", "option": "option", "rank": "rank", "user": "user", "partial": True}
        if self.user_table is not None:
            kw["user_covariates"] = self.user_table
        return Rankings.from_long(self.frame, **{**kw, **kwargs})


def _stage_choice(rng, reward, remaining, log_tie):
    """One stage for every ranking: the chosen item (or pair, with ties) as a (R, k) mask."""
    R, k = reward.shape
    neg = -np.inf
    single = np.where(remaining, reward, neg)
    cands = [single]
    if log_tie is not None:
        i, j = np.triu_indices(k, 1)
        ok = remaining[:, i] & remaining[:, j]
        cands.append(np.where(ok, log_tie + 0.5 * (reward[:, i] + reward[:, j]), neg))
    logits = np.concatenate(cands, axis=1)
    pick = np.argmax(logits + rng.gumbel(size=logits.shape), axis=1)
    chosen = np.zeros((R, k), bool)
    is_single = pick < k
    chosen[np.flatnonzero(is_single), pick[is_single]] = True
    if log_tie is not None:
        p = pick[~is_single] - k
        rows = np.flatnonzero(~is_single)
        chosen[rows, i[p]] = True
        chosen[rows, j[p]] = True
    return chosen & remaining


def rankings(n_rankings: int = 1000, n_options: int = 20, n_shown: int | None = None, top: int | None = None,
             log_tie: float | None = None, n_users: int = 1, user_sd: float = 0.0, n_types: int = 1,
             type_shares=None, worths=None, worth_sd: float = 1.0, seed: int = 0) -> SimulatedRankings:
    r"""Rankings of ``n_shown`` random options out of ``n_options`` from a known truth.

    Each ranking n belongs to user :math:`u_n` (``n_rankings`` spread evenly over ``n_users``) and
    ranks its items by the rewards

    .. math:: r_{n,j} = \theta_{z_{u_n}, i_{nj}} + \eta_{u_n, i_{nj}}, \quad
              \eta_{u,i} \sim N(0, \text{user\_sd}^2),

    with ``n_types`` latent types (:math:`z_u` drawn with ``type_shares``; one type: the pooled
    worths). ``top`` ranks only the best ``top`` stages (the rest stay unranked: a top-k ranking;
    ``top=1`` is a choice set); ``log_tie`` adds ties of two (log :math:`\delta_2`).

    Truth: ``worth`` (options,) for one type, else (types, options), centred; ``type`` per user;
    ``user_worth`` (users, options) when ``user_sd > 0``; ``log_tie``.
    """
    rng = np.random.default_rng(seed)
    k = n_options if n_shown is None else int(n_shown)
    if not 2 <= k <= n_options:
        raise ValueError(f"n_shown={n_shown} must be between 2 and n_options={n_options}")
    W = (np.asarray(worths, float).reshape(-1, n_options) if worths is not None
         else rng.normal(0.0, worth_sd, (n_types, n_options)))
    W = W - W.mean(1, keepdims=True)
    shares = np.full(W.shape[0], 1 / W.shape[0]) if type_shares is None else np.asarray(type_shares, float)
    z = rng.choice(W.shape[0], size=n_users, p=shares / shares.sum())
    user_w = W[z]
    if user_sd > 0:
        eta = rng.normal(0.0, user_sd, (n_users, n_options))
        user_w = user_w + eta - eta.mean(1, keepdims=True)
    user = np.arange(n_rankings) % n_users
    shown = np.argsort(rng.random((n_rankings, n_options)), axis=1)[:, :k]      # (R, k) distinct options
    reward = np.take_along_axis(user_w[user], shown, axis=1)
    level = np.full((n_rankings, k), -1)
    remaining = np.ones((n_rankings, k), bool)
    stages = k if top is None else int(top)
    for s in range(stages):  # stages of every ranking at once
        if not remaining.any():
            break
        chosen = _stage_choice(rng, reward, remaining, log_tie)
        level[chosen] = s
        remaining &= ~chosen
    rank = np.where(level >= 0, level + 1.0, np.nan)
    ulabels = make_labels("u", n_users)
    frame = pd.DataFrame({
        "ranking": np.repeat(np.arange(n_rankings), k),
        "option": option_labels(n_options)[shown.ravel()],
        "rank": rank.ravel(),
        "user": ulabels[np.repeat(user, k)],
    })
    truth = {"worth": W[0] if W.shape[0] == 1 else W, "type": z, "log_tie": log_tie}
    if user_sd > 0:
        truth["user_worth"] = user_w
    return SimulatedRankings(frame, None, truth)
