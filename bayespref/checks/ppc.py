r"""Posterior predictive checks made for paired comparisons.

Each check computes a statistic :math:`T` of the judgements, its observed value, its
distribution over replicated data sets :math:`y^{rep} \sim p(y^{rep} \mid y)` (one replicate per
posterior draw, for the same comparisons, users and positions), and a posterior predictive
p-value (mid-p, ties between :math:`T^{rep}` and :math:`T` count half)

.. math::

    p_{upper} = P(T(y^{rep}) > T(y) \mid y) + \tfrac12 P(T(y^{rep}) = T(y) \mid y),

its lower-tail twin, or the two-sided :math:`\min(1, 2\min(p_{upper}, p_{lower}))`, as stated
for each check. Outcomes are scored as the share won by the first-shown option ``a``: 1, 0 and
1/2 for a tie; model probabilities as the expected score :math:`P(a) + P(\text{tie})/2`.

Checks
------
:func:`win_rates`        observed vs predicted win rates per option pair, or per group and option
:func:`calibration`      reliability curve and expected calibration error (ECE), overall or per group
:func:`user_agreement`   how consistently each user follows the model; the spread over users flags
                         missing heterogeneity
:func:`position_flip`    share of decided comparisons won by the first-shown option
:func:`intransitivity`   rate of cyclic triads among option triples in the majority tournament
:func:`check_all`        all of them at once (a dict)

Each returns a :class:`PPCheck` (``.observed``, ``.predicted``, ``.p_value`` as labelled
xarray objects, ``.to_frame()``, ``.plot()``).
"""

from __future__ import annotations

import contextvars

import numpy as np
import pandas as pd
import xarray as xr

from bayespref.checks._draws import _require_fit, comparison_groups, predictive_draws, score, segment_mean
from bayespref.checks.ppcheck import TAILS, PPCheck, ppp
from bayespref.checks.ppcheck import make_check as _check
from bayespref.checks.ranking_ppc import check_rankings
from bayespref.errors import DataError
from bayespref.models.plackett_luce import ranking_data

__all__ = ["TAILS", "PPCheck", "calibration", "check_all", "intransitivity", "position_flip", "ppp", "summary",
           "user_agreement", "win_rates"]


# ---------------------------------------------------------------------------------------------
# shared pieces
# ---------------------------------------------------------------------------------------------
#: replicates shared by the checks of one :func:`check_all` call, keyed by (fit, seed, max_draws);
#: None outside it (a check called alone computes its own; nothing is kept on the fit, as the
#: replicates of a large data set take draws x comparisons of memory)
_SHARED = contextvars.ContextVar("bayespref_shared_replicates", default=None)


def _draws(fit, seed, max_draws):
    if ranking_data(_require_fit(fit).data):
        raise DataError("This check is made for paired comparisons; for rankings use bayespref.checks.check_all "
                        "(first_choice, item_positions, ranking_agreement).")
    shared, key = _SHARED.get(), (id(fit), seed, max_draws)
    if shared is not None and key in shared:
        p, y_rep = shared[key]
    else:
        p, y_rep = predictive_draws(fit, seed=seed, max_draws=max_draws)
        if shared is not None:
            p.setflags(write=False)  # shared by several checks: none may change them
            y_rep.setflags(write=False)
            shared[key] = (p, y_rep)
    y = np.asarray(fit.data.y)
    if np.any(y < 0):
        raise DataError("The fit's data have comparisons without an outcome; checks need observed outcomes.")
    return p, y_rep, y


def _pairs(a, b, n_options):
    """Unordered pair code per comparison (first option = lower index), and whether a is that option."""
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    key = lo * n_options + hi
    codes, uniq = pd.factorize(key, sort=True)
    return codes, (a == lo), uniq // n_options, uniq % n_options


# ---------------------------------------------------------------------------------------------
# win rates
# ---------------------------------------------------------------------------------------------
def win_rates(fit, by="pair", seed: int = 0, max_draws: int | None = 1000, min_count: int = 1) -> PPCheck:
    r"""Observed vs predicted win rates per option pair, or per group and option.

    ``by="pair"``: for each pair {i, j} compared at least ``min_count`` times, the share of their
    comparisons won by the option with the lower index (ties half). Otherwise ``by`` names a user
    covariate (or ``"user"``, or a Series of groups by user) and the statistic is, for each group g
    and option o, the share of the comparisons involving o, judged by users of g, that o won.
    Two-sided p-values (small: the model misses that pair's or group's preferences).
    """
    fit = _require_fit(fit)
    _, y_rep, y = _draws(fit, seed, max_draws)
    data = fit.data
    a, b = np.asarray(data.a), np.asarray(data.b)
    s_obs, s_rep = score(y), score(y_rep)
    labels = np.asarray(data.options).astype(str)
    if isinstance(by, str) and by == "pair":
        codes, a_first, i, j = _pairs(a, b, data.n_options)
        obs, count = segment_mean(np.where(a_first, s_obs, 1 - s_obs), codes, len(i))
        rep, _ = segment_mean(np.where(a_first, s_rep, 1 - s_rep), codes, len(i))
        keep = count >= min_count
        index = {"pair": np.array([f"{labels[x]} vs {labels[z]}" for x, z in zip(i[keep], j[keep])])}
        return _check("win_rates", "share of pair comparisons won by the first-named option (by pair)",
                      obs[keep], rep[:, keep], "two-sided", index, count[keep],
                      extra={"option_1": labels[i[keep]], "option_2": labels[j[keep]]})
    g, glabels = comparison_groups(fit, by)
    G, O = len(glabels), data.n_options
    codes = np.concatenate([g * O + a, g * O + b])
    obs, count = segment_mean(np.concatenate([s_obs, 1 - s_obs]), codes, G * O)
    rep, _ = segment_mean(np.concatenate([s_rep, 1 - s_rep], axis=-1), codes, G * O)
    obs, count, rep = obs.reshape(G, O), count.reshape(G, O), rep.reshape(-1, G, O)
    chk = _check("win_rates", f"share of comparisons won by each option, per {by}", obs, rep, "two-sided",
                 {"group": glabels, "option": labels}, count)
    keep = chk.count >= min_count
    chk.observed, chk.predicted, chk.p_value = (chk.observed.where(keep), chk.predicted.where(keep),
                                                chk.p_value.where(keep))
    return chk


# ---------------------------------------------------------------------------------------------
# calibration
# ---------------------------------------------------------------------------------------------
def calibration(fit, bins: int = 10, by=None, seed: int = 0, max_draws: int | None = 1000) -> PPCheck:
    r"""Calibration of P(a preferred): reliability curve and expected calibration error (ECE).

    Comparisons are binned by their posterior mean expected score :math:`\bar p_n` (``bins``
    equal-width bins on [0, 1]). In bin b with :math:`n_b` comparisons, the observed rate is
    :math:`\bar s_b` (mean score of a) and the predicted rate :math:`\bar p_b`;

    .. math:: \mathrm{ECE} = \sum_b \frac{n_b}{N} \, |\bar s_b - \bar p_b|.

    The ECE of the replicates (same bins, replicated outcomes) is its distribution under the
    model: a well-calibrated model gives an observed ECE inside it (upper-tail p-value; small: worse
    calibrated than the model's own noise). ``extra["excess"]`` is the observed ECE minus the mean
    replicated ECE and ``extra["excess_se"]`` the replicates' SD (the Monte Carlo scale of an ECE
    that is zero in expectation). ``extra["reliability"]`` holds the curve (group, bin).
    With ``by`` (as in :func:`win_rates`), per group.
    """
    fit = _require_fit(fit)
    if not isinstance(bins, (int, np.integer)) or bins < 2:
        raise DataError(f"bins={bins!r}: use an integer >= 2.")
    p, y_rep, y = _draws(fit, seed, max_draws)
    pbar = p.mean(0)
    b = np.minimum((pbar * bins).astype(int), bins - 1)
    g, glabels = comparison_groups(fit, by)
    G = len(glabels)
    codes = g * bins + b
    s_obs, s_rep = score(y), score(y_rep)
    obs_rate, n = segment_mean(s_obs, codes, G * bins)
    rep_rate, _ = segment_mean(s_rep, codes, G * bins)
    pred_rate, _ = segment_mean(pbar, codes, G * bins)
    n_g = n.reshape(G, bins).sum(1, keepdims=True)
    w = (n.reshape(G, bins) / n_g)
    gap_obs = np.nan_to_num(np.abs(obs_rate - pred_rate).reshape(G, bins))
    gap_rep = np.nan_to_num(np.abs(rep_rate - pred_rate).reshape(-1, G, bins))
    ece_obs = (w * gap_obs).sum(-1)
    ece_rep = (w * gap_rep).sum(-1)
    edges = np.linspace(0, 1, bins + 1)
    centres = np.round((edges[:-1] + edges[1:]) / 2, 6)
    rel = xr.Dataset({
        "predicted": (("group", "bin"), pred_rate.reshape(G, bins)),
        "observed": (("group", "bin"), obs_rate.reshape(G, bins)),
        "replicated": (("sample", "group", "bin"), rep_rate.reshape(-1, G, bins)),
        "count": (("group", "bin"), n.reshape(G, bins)),
    }, coords={"group": glabels, "bin": centres})
    index = None if by is None else {"group": glabels}
    obs = ece_obs[0] if by is None else ece_obs
    rep = ece_rep[:, 0] if by is None else ece_rep
    excess = obs - rep.mean(0)
    extra = {"reliability": rel, "excess": excess, "excess_se": rep.std(0, ddof=1), "by": by}
    return _check("calibration", "expected calibration error of P(a preferred)", obs, rep, "upper", index,
                  None if by is None else n_g[:, 0], extra)


# ---------------------------------------------------------------------------------------------
# per-user agreement
# ---------------------------------------------------------------------------------------------
def user_agreement(fit, by=None, seed: int = 0, max_draws: int | None = 1000, min_judgements: int = 2) -> PPCheck:
    r"""How consistently each user follows the model; flags users (and groups) it does not describe.

    **Agreement.** A judgement agrees with the model when the option the model favours (posterior
    mean :math:`\bar p_n \ge 1/2`) won: :math:`A_n = s_n` if :math:`\bar p_n \ge 1/2` else
    :math:`1 - s_n` (ties 1/2). User u's agreement :math:`\bar A_u` is its mean over their
    judgements; ``extra["per_user"]`` compares it with the replicates (lower-tail p-value: the user
    agrees less than the model expects) and, with ``by``, ``extra["per_group"]`` the groups' mean
    agreement (two-sided).

    **Consistency (the headline statistic).** A user the model describes departs from it by noise;
    a user it does not describe departs *consistently*, in the direction of their own preferences.
    With residuals :math:`r_n = s_n - p_n` (per posterior draw) and the contrast
    :math:`x_n = e_{a_n} - e_{b_n}` (plus the feature difference :math:`x_{a_n} - x_{b_n}`),

    .. math::

        Q_u = \frac{1}{n_u} \Big\lVert \sum_{n \in u} r_n x_n \Big\rVert^2, \qquad
        T = \frac{1}{U} \sum_u Q_u

    (the score statistic for user-level random effects). Residuals of the same user that point the
    same way add up, so missing heterogeneity (user types, random effects) raises :math:`T` above
    its replicated values :math:`T(y^{rep})` (upper-tail p-value, a realised discrepancy computed per
    draw). With ``by``, T per group. ``extra["per_user_consistency"]`` is the per-user :math:`Q_u`
    check (upper tail).
    """
    fit = _require_fit(fit)
    data = fit.data
    if "user" not in data.frame:
        raise DataError("user_agreement needs a user column (Comparisons.from_frame(..., user=...)).")
    p, y_rep, y = _draws(fit, seed, max_draws)
    u = np.asarray(data.user)
    U = data.n_users
    n_u = np.bincount(u, minlength=U)
    keep = n_u >= max(1, min_judgements)
    if keep.sum() < 2:
        raise DataError(f"user_agreement needs at least two users with >= {min_judgements} judgements.")
    ulabels = np.asarray(data.users).astype(str)
    s_obs, s_rep = score(y), score(y_rep)

    favour_a = p.mean(0) >= 0.5
    obs_u, _ = segment_mean(np.where(favour_a, s_obs, 1 - s_obs), u, U)
    rep_u, _ = segment_mean(np.where(favour_a, s_rep, 1 - s_rep), u, U)
    per_user = _check("user_agreement_per_user", "share of each user's judgements agreeing with the model",
                      obs_u[keep], rep_u[:, keep], "lower", {"user": ulabels[keep]}, n_u[keep])

    q_obs = _consistency(s_obs[None] - p, data, u, U, n_u)  # (S, U)
    q_rep = _consistency(s_rep - p, data, u, U, n_u)
    per_user_q = _check("user_consistency_per_user", "consistency of each user's departures from the model",
                        q_obs[:, keep], q_rep[:, keep], "upper", {"user": ulabels[keep]}, n_u[keep], realised=True)

    g_c, glabels = comparison_groups(fit, by)
    g_u = np.zeros(U, dtype=int)
    g_u[u] = g_c
    G = len(glabels)
    T_obs, n_g = segment_mean(q_obs[:, keep], g_u[keep], G)
    T_rep, _ = segment_mean(q_rep[:, keep], g_u[keep], G)
    extra = {"per_user": per_user, "per_user_consistency": per_user_q}
    statistic = "mean over users of the consistency of their departures from the model"
    if by is not None:
        m_obs, _ = segment_mean(obs_u[keep], g_u[keep], G)
        m_rep, _ = segment_mean(rep_u[:, keep], g_u[keep], G)
        extra["per_group"] = _check("user_agreement_per_group", f"mean agreement with the model per {by}",
                                    m_obs, m_rep, "two-sided", {"group": glabels}, n_g)
        return _check("user_agreement", statistic + f", per {by}", T_obs, T_rep, "upper", {"group": glabels},
                      n_g, extra, realised=True)
    return _check("user_agreement", statistic, T_obs[:, 0], T_rep[:, 0], "upper", None, None, extra, realised=True)


def _consistency(r, data, u, U, n_u):
    r"""Q_u = |sum_{n in u} r_n x_n|^2 / n_u per draw: r (S, N) -> (S, U)."""
    O = data.n_options
    codes = np.concatenate([u * O + np.asarray(data.a), u * O + np.asarray(data.b)])
    sums, cnt = segment_mean(np.concatenate([r, -r], -1), codes, U * O)
    R = np.nan_to_num(sums) * cnt  # segment sums
    q = (R.reshape(-1, U, O) ** 2).sum(-1)
    D = data.n_features
    if D:
        dx = np.asarray(data.xa) - np.asarray(data.xb)  # (N, D)
        for k in range(D):  # a handful of features
            sums, cnt = segment_mean(r * dx[:, k], u, U)
            q = q + (np.nan_to_num(sums) * cnt) ** 2
    with np.errstate(invalid="ignore", divide="ignore"):
        return q / n_u


# ---------------------------------------------------------------------------------------------
# position
# ---------------------------------------------------------------------------------------------
def position_flip(fit, by=None, seed: int = 0, max_draws: int | None = 1000) -> PPCheck:
    r"""Share of decided comparisons won by the first-shown option, observed vs predicted.

    .. math:: T = \frac{\#\{n: y_n = a\}}{\#\{n: y_n \ne \text{tie}\}}

    A model without an order effect predicts the share its worths imply; a real order effect
    shows as an observed share outside the predictive distribution (two-sided p-value).
    ``extra["excess"]`` is the observed share minus the mean predicted share: how often the
    first-shown option wins beyond what the model predicts. With ``by``, per group.
    """
    fit = _require_fit(fit)
    _, y_rep, y = _draws(fit, seed, max_draws)
    g, glabels = comparison_groups(fit, by)
    G = len(glabels)
    won_obs, _ = segment_mean((y == 1).astype(float), g, G)
    dec_obs, n = segment_mean((y != 2).astype(float), g, G)
    won_rep, _ = segment_mean((y_rep == 1).astype(float), g, G)
    dec_rep, _ = segment_mean((y_rep != 2).astype(float), g, G)
    with np.errstate(invalid="ignore", divide="ignore"):
        obs, rep = won_obs / dec_obs, won_rep / dec_rep
    index = None if by is None else {"group": glabels}
    if by is None:
        obs, rep, n = obs[0], rep[:, 0], None
    extra = {"excess": obs - np.nanmean(rep, 0)}
    return _check("position_flip", "share of decided comparisons won by the first-shown option", obs, rep,
                  "two-sided", index, n, extra)


# ---------------------------------------------------------------------------------------------
# intransitivity
# ---------------------------------------------------------------------------------------------
def _cyclic_rate(rate, i, j, n_options):
    """Cyclic-triad rate of majority tournaments given pair win rates (..., P) of i over j.

    D[i, j] = 1 when i beat j in most of their comparisons; a pair with rate exactly 1/2 has no
    edge. Cyclic triads = trace(D^3) / 3; triads with all three pairs decided = trace(A^3) / 6 with
    A = D + D^T. Returns (rate, number of decided triads).
    """
    lead = rate.shape[:-1]
    D = np.zeros(lead + (n_options, n_options))
    D[..., i, j] = rate > 0.5
    D[..., j, i] = rate < 0.5
    A = D + np.swapaxes(D, -1, -2)
    cyc = np.einsum("...ij,...jk,...ki->...", D, D, D) / 3
    tri = np.einsum("...ij,...jk,...ki->...", A, A, A) / 6
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(tri > 0, cyc / tri, np.nan), tri


def intransitivity(fit, by=None, seed: int = 0, max_draws: int | None = 400) -> PPCheck:
    r"""Rate of cyclic triads among option triples, observed vs predicted.

    For every compared pair {i, j} the majority direction (i beat j in more than half of their
    comparisons, ties half) gives a tournament; among the triples whose three pairs are all
    compared and decided, the share forming a cycle (i > j > k > i) is the statistic. Bradley-Terry
    worths are transitive, but finite samples are not: the replicates say how many cycles the
    model's own noise produces (two-sided p-value; small and observed above: preferences more
    cyclic than any single ranking explains, e.g. mixed user types). With ``by``, per group.
    """
    fit = _require_fit(fit)
    _, y_rep, y = _draws(fit, seed, max_draws)
    data = fit.data
    a, b = np.asarray(data.a), np.asarray(data.b)
    O = data.n_options
    g, glabels = comparison_groups(fit, by)
    G = len(glabels)
    codes, a_first, i, j = _pairs(a, b, O)
    P = len(i)
    gc = g * P + codes
    s_obs = np.where(a_first, score(y), 1 - score(y))
    s_rep = np.where(a_first, score(y_rep), 1 - score(y_rep))
    r_obs, _ = segment_mean(s_obs, gc, G * P)
    r_rep, _ = segment_mean(s_rep, gc, G * P)
    r_obs, r_rep = r_obs.reshape(G, P), r_rep.reshape(-1, G, P)
    obs, tri = _cyclic_rate(np.nan_to_num(r_obs, nan=0.5), i, j, O)
    rep, _ = _cyclic_rate(np.nan_to_num(r_rep, nan=0.5), i, j, O)
    if np.all(tri == 0):
        raise DataError("intransitivity: no option triple has all three pairs compared (and decided); "
                        "the check needs triads.")
    index = None if by is None else {"group": glabels}
    if by is None:
        obs, rep, tri = obs[0], rep[:, 0], None
    return _check("intransitivity", "share of decided triads that are cyclic (majority tournament)", obs, rep,
                  "two-sided", index, tri)


def check_all(fit, by=None, seed: int = 0) -> dict:
    """All the checks (``by`` passed to those that group); a dict name -> :class:`PPCheck`.

    For a fit of rankings, the ranking checks (:func:`bayespref.checks.ranking_ppc.check_rankings`).
    """
    if ranking_data(_require_fit(fit).data):
        if by is not None:
            raise DataError("The ranking checks are not grouped (by=None); group rankings with Rankings.subset.")
        return check_rankings(fit, seed=seed)
    # the checks draw their replicates with the same seed and draws: computed once, shared
    token = _SHARED.set({})
    try:
        out = {
            "win_rates": win_rates(fit, by="pair" if by is None else by, seed=seed),
            "calibration": calibration(fit, by=by, seed=seed),
            "position_flip": position_flip(fit, by=by, seed=seed),
            "intransitivity": intransitivity(fit, by=by, seed=seed),
        }
        if "user" in fit.data.frame and fit.data.n_users > 1:
            out["user_agreement"] = user_agreement(fit, by=by, seed=seed)
    finally:
        _SHARED.reset(token)
    return out


def summary(checks: dict) -> pd.DataFrame:
    """One row per check (scalar checks, or the smallest p-value over entries)."""
    rows = {}
    for name, chk in checks.items():
        t = chk.to_frame()
        row = t.loc[t["p_value"].idxmin()] if len(t) else None
        rows[name] = {"statistic": chk.statistic, "entries": len(t), "observed": row["observed"],
                      "predicted": row["predicted"], "p_value": row["p_value"],
                      "n_below_0.05": int((t["p_value"] < 0.05).sum()), "tail": chk.tail}
    return pd.DataFrame.from_dict(rows, orient="index")
