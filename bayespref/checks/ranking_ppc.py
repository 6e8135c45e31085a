r"""Posterior predictive checks made for rankings (fits of :class:`~bayespref.Rankings`).

Each replicate re-ranks the same shown items of every ranking, by the same user, as many items as
the observed ranking ranked (:mod:`bayespref.models.plackett_luce`; replicates have no ties). The
p-values are the mid-p values of :func:`bayespref.checks.ppcheck.ppp`.

:func:`first_choice`        per option: the share of the rankings showing it that chose it first (a
                            tie for first counts 1/c for each of the c tied items)
:func:`item_positions`      per option: the mean share of the other shown items ranked above it
                            (items shown but not ranked sit below every ranked item, tied)
:func:`ranking_agreement`   whether users depart from the model consistently (the score statistic
                            of user-level deviations; flags missing heterogeneity), and per user how
                            often their rankings order item pairs as the model's rewards do
:func:`check_rankings`      all of them (``check_all`` calls it for a rankings fit)
"""

from __future__ import annotations

import numpy as np

from bayespref.checks._draws import _require_fit, replicate, segment_mean
from bayespref.checks.ppcheck import PPCheck
from bayespref.checks.ppcheck import make_check as _check
from bayespref.errors import DataError
from bayespref.models import sites
from bayespref.models.plackett_luce import ranking_data


def _ranking_draws(fit, seed, max_draws):
    """Observed levels (R, K), replicated levels (S, R, K), log P(first) per draw (S, R, K), shown."""
    fit = _require_fit(fit)
    if not ranking_data(fit.data):
        raise DataError("These checks are for fits of rankings; for comparisons use bayespref.checks.check_all.")
    out = replicate(fit, [sites.OBS, sites.P_FIRST], seed, max_draws)
    level = np.asarray(fit.data.level)
    shown = np.asarray(fit.data.items) >= 0
    with np.errstate(divide="ignore"):
        log_first = np.log(np.asarray(out[sites.P_FIRST], dtype=float))
    return level, np.asarray(out[sites.OBS]), log_first, shown


def _first_credit(level, shown):
    """Share of first place of each slot: 1/c for each of the c items at level 0 (..., R, K)."""
    first = (level == 0) & shown
    return first / np.maximum(first.sum(-1, keepdims=True), 1)


def _above(level, shown):
    """Share of the other shown items ranked strictly above each slot (..., R, K)."""
    lev = level  # UNRANKED (2**20) sits below every ranked level; padding is masked by `shown`
    above = ((lev[..., None, :] < lev[..., :, None]) & shown[..., None, :]).sum(-1)
    return above / np.maximum(shown.sum(-1, keepdims=True) - 1, 1)


def _per_option(values, items, shown, n_options):
    """Mean of ``values`` (..., R, K) per option over the slots that show it: (..., O) and counts."""
    codes = np.where(shown, items, n_options).ravel()
    flat = values.reshape(values.shape[:-2] + (-1,))
    mean, count = segment_mean(flat, codes, n_options + 1)
    return mean[..., :n_options], count[:n_options]


def first_choice(fit, seed: int = 0, max_draws: int | None = 1000) -> PPCheck:
    """Observed vs replicated first-choice rate of each option (two-sided p-values)."""
    level, rep, _, shown = _ranking_draws(fit, seed, max_draws)
    data = fit.data
    items = np.asarray(data.items)
    obs, count = _per_option(_first_credit(level, shown), items, shown, data.n_options)
    pred, _ = _per_option(_first_credit(rep, shown), items, shown, data.n_options)
    return _check("first_choice", "share of the rankings showing each option that chose it first", obs, pred,
                  "two-sided", {"option": np.asarray(data.options).astype(str)}, count)


def item_positions(fit, seed: int = 0, max_draws: int | None = 1000) -> PPCheck:
    """Observed vs replicated mean position of each option: the share of the other shown items ranked
    above it (0 = always first, 1 = always last; two-sided p-values)."""
    level, rep, _, shown = _ranking_draws(fit, seed, max_draws)
    data = fit.data
    items = np.asarray(data.items)
    obs, count = _per_option(_above(level, shown), items, shown, data.n_options)
    pred, _ = _per_option(_above(rep, shown), items, shown, data.n_options)
    return _check("item_positions", "mean share of the other shown items ranked above each option", obs, pred,
                  "two-sided", {"option": np.asarray(data.options).astype(str)}, count)


def _concordance(level, reward, shown):
    r"""Concordant and ordered pairs per ranking: pairs (i, j) with level_i < level_j (at least one
    ranked), concordant when the model's reward orders them the same way. level (..., R, K)."""
    lev = level  # UNRANKED sits below every ranked level; two unranked items are not ordered
    both = shown[..., :, None] & shown[..., None, :]
    ordered = (lev[..., :, None] < lev[..., None, :]) & both
    agree = ordered & (reward[..., :, None] > reward[..., None, :])
    return agree.sum((-1, -2)), ordered.sum((-1, -2))


def _scores(level, reward, shown):
    r"""Plackett-Luce score of each item slot: :math:`\sum_s (c_{sj} / |C_s| - \pi_{sj})`, the chosen
    share minus the choice probability over the remaining items at each stage s (..., R, K)."""
    K = level.shape[-1]
    stage = np.arange(K)[:, None]
    lev = level[..., None, :]
    remaining = (lev >= stage) & shown[..., None, :]                       # (..., S, K)
    chosen = (lev == stage) & shown[..., None, :]
    r = np.where(remaining, reward[..., None, :], -np.inf)
    r = r - np.max(np.where(remaining, r, -np.inf), axis=-1, keepdims=True, initial=-1e300)
    p = np.where(remaining, np.exp(r), 0.0)
    p = p / np.maximum(p.sum(-1, keepdims=True), 1e-300)
    c = chosen / np.maximum(chosen.sum(-1, keepdims=True), 1)
    active = chosen.any(-1, keepdims=True)
    return np.where(active, c - p, 0.0).sum(-2)


def ranking_agreement(fit, seed: int = 0, max_draws: int | None = 400, min_rankings: int = 2) -> PPCheck:
    r"""Whether users depart from the model consistently: missing heterogeneity (types, user effects).

    **Consistency (the headline statistic).** With the Plackett-Luce score of ranking n,
    :math:`s_n = \sum_{\text{stages}} (\text{chosen} - \text{choice probabilities})` over its items
    (per posterior draw, scattered to the options), user u's departures add up to
    :math:`S_u = \sum_{n \in u} s_n` and

    .. math:: Q_u = \lVert S_u \rVert^2 / n_u, \qquad T = \frac{1}{U} \sum_u Q_u,

    the score statistic for user-level deviations (as :func:`bayespref.checks.user_agreement` for
    pairs). A user the model describes departs by noise; a user it does not describe departs in the
    direction of their own preferences, which raises :math:`T` above its replicates (upper tail; a
    realised discrepancy per draw).

    **Agreement.** ``extra["per_user"]``: the share of the item pairs ordered by each user's rankings
    (both shown, at least one ranked, not tied) that the draw's rewards order the same way, against
    replicates (lower tail: the user agrees less than the model expects).
    """
    level, rep, log_first, shown = _ranking_draws(fit, seed, max_draws)
    data = fit.data
    u = np.asarray(data.user)
    U, O = data.n_users, data.n_options
    n_u = np.bincount(u, minlength=U)
    keep = n_u >= max(1, min_rankings)
    if data.n_users < 2 or keep.sum() < 2:
        raise DataError(f"ranking_agreement needs at least two users with >= {min_rankings} rankings "
                        "(Rankings.from_long(..., user=...)).")
    reward = np.where(shown, log_first, -np.inf)            # reward differences within a ranking
    labels = np.asarray(data.users).astype(str)
    items = np.asarray(data.items)
    codes = np.where(shown, u[:, None] * O + np.maximum(items, 0), U * O).ravel()

    def consistency(lev):
        sc = _scores(lev, reward, shown)                     # (S, R, K)
        sums, cnt = segment_mean(sc.reshape(sc.shape[0], -1), codes, U * O + 1)
        S_u = np.nan_to_num(sums[:, :U * O] * cnt[:U * O]).reshape(-1, U, O)
        with np.errstate(invalid="ignore", divide="ignore"):
            return (S_u ** 2).sum(-1) / n_u

    q_obs, q_rep = consistency(np.broadcast_to(level, rep.shape)), consistency(rep)
    per_q = _check("ranking_consistency_per_user", "consistency of each user's departures from the model",
                   q_obs[:, keep], q_rep[:, keep], "upper", {"user": labels[keep]}, n_u[keep], realised=True)

    c_obs, n_obs = _concordance(level[None], reward, shown)  # (S, R)
    c_rep, n_rep = _concordance(rep, reward, shown)

    def per_user(c, n):
        sc, _ = segment_mean(c.astype(float), u, U)
        sn, _ = segment_mean(n.astype(float), u, U)
        with np.errstate(invalid="ignore", divide="ignore"):
            return sc / sn

    per = _check("ranking_agreement_per_user", "share of each user's ordered pairs that agree with the model",
                 per_user(c_obs, n_obs)[:, keep], per_user(c_rep, n_rep)[:, keep], "lower", {"user": labels[keep]},
                 n_u[keep], realised=True)
    return _check("ranking_agreement", "mean over users of the consistency of their departures from the model",
                  q_obs[:, keep].mean(1), q_rep[:, keep].mean(1), "upper", None, None,
                  {"per_user": per, "per_user_consistency": per_q}, realised=True)


def check_rankings(fit, seed: int = 0) -> dict:
    """All the ranking checks: a dict name -> :class:`~bayespref.checks.ppcheck.PPCheck`."""
    out = {"first_choice": first_choice(fit, seed=seed), "item_positions": item_positions(fit, seed=seed)}
    if fit.data.n_users > 1:
        out["ranking_agreement"] = ranking_agreement(fit, seed=seed)
    return out
