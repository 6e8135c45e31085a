"""Simulated preference data confounded by a hidden binary user trait."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from bayespref.simulate.families import Simulated, draw_outcomes, make_labels, option_labels, random_pairs


def simulate_confounded(n_users: int = 200, comparisons_per_user: int = 30, n_options: int = 30,
                        n_features: int = 2, effect: float = 0.5, gamma: float = 1.5, delta: float = 2.0,
                        prevalence: float = 0.5, weight_mean=None, user_sd: float = 0.3,
                        observed: tuple[float, float] | None = (0.7, 1.0), seed: int = 0):
    r"""Hierarchical preferences confounded by a hidden binary user trait U.

    Users alternate between groups A and B (:math:`g_u \in \{0, 1\}`, covariate ``group``); the
    hidden :math:`U_u` follows :math:`\operatorname{logit} P(U_u = 1) = \operatorname{logit}(p) +
    \delta (g_u - \bar g)`; weights of the options' features :math:`x_i \sim N(0, I)` are

    .. math::

        w_u = \mu + \beta\, g_u e_0 + \gamma\, U_u e_0 + \lambda\, o_u e_0 + \eta_u,\quad
        \eta_u \sim N(0, \text{user\_sd}^2 I),

    so U and the observed covariate ``trait`` (:math:`o_u`, "yes"/"no", with logit P(o = 1) =
    :math:`\delta_o (g_u - \bar g)` and effect :math:`\lambda`; ``observed = (λ, δ_o)``, None for
    none) shift the weight of feature ``x0`` like the group does. The group contrast of ``x0``
    (``group_contrast("group[B]", "x0")``) is :math:`\beta` = ``effect``; a model blind to U
    estimates about :math:`\beta + \gamma\,(P(U=1 \mid B) - P(U=1 \mid A))`. U is returned in
    ``truth["U"]`` but not in the data.
    """

    rng = np.random.default_rng(seed)
    mu = np.asarray(weight_mean if weight_mean is not None else np.linspace(1.0, -0.5, n_features), float)
    X = rng.normal(size=(n_options, n_features))
    g = (np.arange(n_users) % 2).astype(float)
    gc = g - g.mean()
    lp = math.log(prevalence / (1 - prevalence))
    U = (rng.random(n_users) < 1 / (1 + np.exp(-(lp + delta * gc)))).astype(float)
    o = np.zeros(n_users)
    lam = 0.0
    if observed is not None:
        lam, d_o = observed
        o = (rng.random(n_users) < 1 / (1 + np.exp(-d_o * gc))).astype(float)
    shift = effect * g + gamma * U + lam * o
    W = mu + rng.normal(size=(n_users, n_features)) * user_sd
    W[:, 0] += shift
    user = np.repeat(np.arange(n_users), comparisons_per_user)
    a, b = random_pairs(rng, user.size, n_options)
    d = np.sum((X[a] - X[b]) * W[user], -1)
    labels = option_labels(n_options)
    ulabels = make_labels("u", n_users)
    frame = pd.DataFrame({"a": labels[a], "b": labels[b], "outcome": draw_outcomes(rng, d, None), "user": ulabels[user]})
    table = pd.DataFrame(X, index=pd.Index(labels, name="option"), columns=[f"x{j}" for j in range(n_features)])
    users = pd.DataFrame({"group": np.where(g == 1, "B", "A")}, index=pd.Index(ulabels, name="user"))
    if observed is not None:
        users["trait"] = np.where(o == 1, "yes", "no")
    truth = {"effect": effect, "gamma": gamma, "delta": delta, "prevalence": prevalence, "U": U,
             "weight": mu, "user_weight": W, "naive_bias": gamma * (U[g == 1].mean() - U[g == 0].mean())}
    return Simulated(frame, table, users, truth)
