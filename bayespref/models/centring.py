r"""The centring of users' effects chosen from the data (``Hierarchical(centring=None)``).

NUTS samples users' effects :math:`v_u` in partially centred coordinates (Gorinova, Moore and
Hoffman 2020; :meth:`Hierarchical._partially_centred`): :math:`x_u = c\, m_u + \tau^{c} e_u` with
:math:`e_u = (v_u - m_u) / \tau`. The best weight c depends on how much each user's own data say
about its effects against the population spread :math:`\tau`.

**Information.** For effect e of user u, the Fisher information of the user's comparisons at zero
effects (logit link, where :math:`p(1 - p) = 1/4`) is

.. math::

    I_{ue} = \tfrac14 \sum_{n \in u} \delta_{ne}^2, \qquad
    \hat v_{ue} = \frac{\sum_{n \in u} (y_n - \tfrac12)\, \delta_{ne}}{I_{ue}}

with :math:`\delta_{ne}` the comparison's difference in that effect (:math:`x_a - x_b` for a
feature weight; +1 / -1 for the worths of the two options shown), and :math:`\hat v_{ue}` one
Newton step from zero (its sampling variance about :math:`1 / I_{ue}`). A moment estimate of each
effect's population SD, as in DerSimonian and Laird's random-effects estimator, is
:math:`\hat\tau_e^2 = \max(0, \operatorname{var}_u \hat v_{ue} - \operatorname{mean}_u 1 / I_{ue})`;
the one-step estimates shrink large effects toward zero, so :math:`\hat\tau` errs low, and so does
c (the safe side: too much centring with a small :math:`\tau` brings the funnel back).

**Rule.** With :math:`\kappa_{ue} = I_{ue}\hat\tau_e^2 / (1 + I_{ue}\hat\tau_e^2)`, the data's
share of the user's posterior precision, the conditional variance of :math:`x_u` given
:math:`\tau` is flat in :math:`\tau` at :math:`c = \kappa`, and its conditional mean at
:math:`c = 2\kappa - 1`; the weight taken is the midpoint of the two,
:math:`c_{ue} = (\kappa_{ue} + \max(0, 2\kappa_{ue} - 1)) / 2`, and c is the median over users and
effects, capped at :data:`MAX_CENTRING` and set to 0 below :data:`MIN_CENTRING` (the non-centred
form then, whose gradient is cheaper). Measured on hierarchical BT with 4 features
(benchmarks/RESULTS.md, "Centring chosen from the data"), the rule lands inside the range of c
with the fewest gradients per effective sample.
"""

from __future__ import annotations

import numpy as np

#: the largest centring weight the rule chooses
MAX_CENTRING = 0.8
#: below this the rule chooses the non-centred form (c = 0)
MIN_CENTRING = 0.05
#: at most this many (comparison, effect) cells enter the rule (a random subset of users beyond)
MAX_CELLS = 20_000_000


def weight(choice: dict | None) -> np.floating | None:
    """The centring weight NUTS uses (a float32 scalar) from a family's ``centring_choice``, or None
    (non-centred: no choice, or c = 0)."""
    if not choice or choice["centring"] == 0.0:
        return None
    return np.float32(choice["centring"])


def pooled_fit(delta: np.ndarray, y: np.ndarray, ridge: float = 0.25, iters: int = 8) -> np.ndarray:
    """Pooled effects (E,): a few Newton steps of ridge-penalised logistic regression on all users."""
    win = np.where(np.asarray(y) == 2, 0.5, np.asarray(y, float))
    mu = np.zeros(delta.shape[1])
    for _ in range(iters):  # Newton iterations (a fixed few), each vectorised over comparisons
        p = 1.0 / (1.0 + np.exp(-(delta @ mu)))
        g = delta.T @ (win - p) - ridge * mu
        h = (delta * (p * (1 - p))[:, None]).T @ delta + ridge * np.eye(delta.shape[1])
        mu = mu + np.linalg.solve(h, g)
    return mu


def user_information(delta: np.ndarray, y: np.ndarray, user: np.ndarray, n_users: int, mu: np.ndarray):
    """(I, dev): per-user Fisher information at the pooled effects ``mu`` and one-step estimates of
    each user's deviation from them, each (users, effects).

    ``delta`` (N, E) the comparisons' differences in each effect, ``y`` (N,) outcome codes (1: a
    preferred, 0: b, 2: tie, counted as half a win), ``user`` (N,) user codes.
    """
    win = np.where(np.asarray(y) == 2, 0.5, np.asarray(y, float))
    p = 1.0 / (1.0 + np.exp(-(delta @ mu)))
    info = np.zeros((n_users, delta.shape[1]))
    score = np.zeros_like(info)
    np.add.at(info, user, (p * (1 - p))[:, None] * delta ** 2)
    np.add.at(score, user, (win - p)[:, None] * delta)
    with np.errstate(divide="ignore", invalid="ignore"):
        dev = np.where(info > 0, score / info, np.nan)
    return info, dev


def population_sd(info: np.ndarray, dev: np.ndarray, covariates: np.ndarray | None = None) -> np.ndarray:
    """Moment estimate of each effect's population SD (effects,), from users with information;
    with user covariates, of the spread left after a least-squares fit of the deviations on them."""
    out = np.zeros(info.shape[1])
    for e in range(info.shape[1]):  # a handful of effects, not a hot path
        seen = info[:, e] > 0
        if seen.sum() < 3:
            continue
        d = dev[seen, e]
        if covariates is not None and covariates.shape[1] and seen.sum() > covariates.shape[1] + 3:
            X = np.column_stack([np.ones(seen.sum()), covariates[seen]])
            d = d - X @ np.linalg.lstsq(X, d, rcond=None)[0]
        var = np.var(d, ddof=1) - np.mean(1.0 / info[seen, e])
        out[e] = np.sqrt(max(var, 0.0))
    return out


def choose(delta: np.ndarray, y: np.ndarray, user: np.ndarray, n_users: int,
           covariates: np.ndarray | None = None) -> dict:
    """The centring weight for these comparisons and what it came from.

    Returns ``{"centring": c, "median_information": ..., "tau_hat": [...]}``; ``c`` is 0.0 when the
    non-centred form is chosen.
    """
    delta = np.asarray(delta, float)
    mu = pooled_fit(delta, y)
    info, dev = user_information(delta, y, user, n_users, mu)
    tau = population_sd(info, dev, covariates)
    r = info * tau[None, :] ** 2
    kappa = r / (1.0 + r)
    c_ue = 0.5 * (kappa + np.maximum(0.0, 2.0 * kappa - 1.0))
    seen = info > 0
    c = float(np.median(c_ue[seen])) if seen.any() else 0.0
    c = min(c, MAX_CENTRING)
    c = 0.0 if c < MIN_CENTRING else round(c, 2)
    return {"centring": c, "median_information": round(float(np.median(info[seen])), 2) if seen.any() else 0.0,
            "tau_hat": [round(float(t), 3) for t in tau]}
