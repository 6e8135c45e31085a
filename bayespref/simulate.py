"""Simulated paired comparisons with known true parameters.

Each generator returns a :class:`Simulated` with the long frame, the option and user tables, the
true parameters and a ready :class:`~bayespref.Comparisons`. Same seed, same data.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd


@dataclasses.dataclass(frozen=True)
class Simulated:
    """Simulated data: ``frame`` (long, columns a, b, outcome[, user]), ``option_table``,
    ``user_table``, ``truth`` (dict of true parameter arrays, labelled like the posterior)."""

    frame: pd.DataFrame
    option_table: pd.DataFrame | None
    user_table: pd.DataFrame | None
    truth: dict

    def comparisons(self, **kwargs):
        """The :class:`~bayespref.Comparisons` of the simulated data."""
        from .data import Comparisons

        kw = {"a": "a", "b": "b", "outcome": "outcome"}
        if "user" in self.frame:
            kw["user"] = "user"
        if self.option_table is not None and self.option_table.shape[1]:
            kw["features"] = self.option_table
        if self.user_table is not None and self.user_table.shape[1]:
            kw["user_covariates"] = self.user_table
        kw.update(kwargs)
        return Comparisons.from_frame(self.frame, **kw)


def _pairs(rng, n, n_options):
    a = rng.integers(0, n_options, n)
    b = (a + rng.integers(1, n_options, n)) % n_options  # never equal to a
    return a, b


def _outcomes(rng, d, log_tie):
    """Outcome (1, 0, 0.5) from reward differences ``d`` under BT or Davidson ties."""
    if log_tie is None:
        return (rng.random(d.shape) < 1 / (1 + np.exp(-d))).astype(float)
    logits = np.stack([-d / 2, d / 2, np.full_like(d, log_tie)], -1)
    p = np.exp(logits - logits.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    u = rng.random(d.shape)
    code = (u[:, None] > np.cumsum(p, -1)).sum(-1)  # 0 = b, 1 = a, 2 = tie
    return np.array([0.0, 1.0, 0.5])[code]


def _labels(prefix, n):
    """Labels that sort in index order (zero-padded to the width of n - 1)."""
    width = max(3, len(str(n - 1)))
    return np.array([f"{prefix}{i:0{width}d}" for i in range(n)])


def _option_labels(n):
    return _labels("o", n)


def bradley_terry(n_options: int = 8, n_comparisons: int = 1000, n_features: int = 0, worth_sd: float = 1.0,
                  position: float = 0.0, log_tie: float | None = None, seed: int = 0) -> Simulated:
    r"""Pooled Bradley-Terry data.

    .. math::

        \theta \sim N(0, \text{worth\_sd}^2) \text{ (centred)},\quad x_i \sim N(0, I),\quad
        w \sim N(0, 1),\quad
        \operatorname{logit} P(a \succ b) = \theta_a - \theta_b + (x_a - x_b)^\top w + \beta_{pos}

    with Davidson ties when ``log_tie`` is given. Truth: ``worth`` (sum to zero), ``weight``,
    ``position``, ``log_tie``.
    """
    rng = np.random.default_rng(seed)
    worth = rng.normal(0, worth_sd, n_options)
    worth -= worth.mean()
    X = rng.normal(size=(n_options, n_features))
    weight = rng.normal(size=n_features)
    a, b = _pairs(rng, n_comparisons, n_options)
    d = worth[a] - worth[b] + (X[a] - X[b]) @ weight + position
    labels = _option_labels(n_options)
    frame = pd.DataFrame({"a": labels[a], "b": labels[b], "outcome": _outcomes(rng, d, log_tie)})
    names = [f"x{j}" for j in range(n_features)]
    table = pd.DataFrame(X, index=pd.Index(labels, name="option"), columns=names) if n_features else None
    truth = {"worth": worth, "weight": weight, "position": position, "log_tie": log_tie}
    return Simulated(frame, table, None, truth)


def hierarchical(n_users: int = 100, comparisons_per_user: int = 40, n_options: int = 30, n_features: int = 3,
                 weight_mean=None, user_sd=0.5, group_effect=None, worth_sd: float = 0.0,
                 position: float = 0.0, seed: int = 0) -> Simulated:
    r"""Hierarchical data: user-varying feature weights with an optional binary group covariate.

    .. math::

        x_i \sim N(0, I_D),\quad w_u = \mu + \beta\, g_u + \eta_u,\quad \eta_u \sim N(0, \mathrm{diag}(\tau^2)),\\
        \operatorname{logit} P(a \succ b \mid u) = \theta_a - \theta_b + (x_a - x_b)^\top w_u + \beta_{pos}

    with ``g_u`` in {0, 1} (covariate ``group`` = "A"/"B", only when ``group_effect`` is given),
    ``tau = user_sd`` (scalar or per feature), pooled worths theta ~ N(0, worth_sd^2) (0 by default)
    and every user making ``comparisons_per_user`` comparisons of random option pairs.

    Truth: ``weight`` (mu), ``sd_weight`` (tau), ``group_weight`` (beta, shape (1, D)),
    ``user_weight`` (U, D), ``worth``, ``position``.
    """
    rng = np.random.default_rng(seed)
    mu = np.asarray(weight_mean if weight_mean is not None else np.linspace(1.0, -0.5, n_features), float)
    tau = np.broadcast_to(np.asarray(user_sd, float), (n_features,)).copy()
    X = rng.normal(size=(n_options, n_features))
    worth = rng.normal(0, worth_sd, n_options) if worth_sd else np.zeros(n_options)
    worth -= worth.mean()
    g = np.zeros(n_users)
    beta = None
    if group_effect is not None:
        beta = np.broadcast_to(np.asarray(group_effect, float), (n_features,)).copy()
        g = (np.arange(n_users) % 2).astype(float)
    W = mu + (g[:, None] * beta if beta is not None else 0.0) + rng.normal(size=(n_users, n_features)) * tau
    user = np.repeat(np.arange(n_users), comparisons_per_user)
    a, b = _pairs(rng, user.size, n_options)
    d = worth[a] - worth[b] + np.sum((X[a] - X[b]) * W[user], -1) + position
    labels = _option_labels(n_options)
    ulabels = _labels("u", n_users)
    frame = pd.DataFrame({"a": labels[a], "b": labels[b], "outcome": _outcomes(rng, d, None), "user": ulabels[user]})
    table = pd.DataFrame(X, index=pd.Index(labels, name="option"), columns=[f"x{j}" for j in range(n_features)])
    users = None
    if beta is not None:
        users = pd.DataFrame({"group": np.where(g == 1, "B", "A")}, index=pd.Index(ulabels, name="user"))
    truth = {"weight": mu, "sd_weight": tau, "group_weight": None if beta is None else beta[None, :],
             "user_weight": W, "worth": worth, "position": position}
    return Simulated(frame, table, users, truth)


def latent_types(n_users: int = 200, comparisons_per_user: int = 30, n_options: int = 20, n_types: int = 2,
                 worths=None, shares=None, covariate_shift=None, worth_sd: float = 1.5,
                 seed: int = 0) -> Simulated:
    r"""Users of ``n_types`` latent types, each type with its own option worths.

    .. math::

        z_u \sim \operatorname{Categorical}(\pi_u),\quad
        \operatorname{logit} P(a \succ b \mid u) = \theta_{z_u, a} - \theta_{z_u, b}

    ``worths`` (K, n_options) gives the types' worths (default: N(0, worth_sd^2), centred);
    ``shares`` the type probabilities (default equal). With ``covariate_shift=(p0, p1)`` (K = 2
    only) users get a binary covariate ``group`` ("A"/"B", alternating) and P(z_u = 1) is p0 in
    group A and p1 in group B; the true membership coefficient is logit(p1) - logit(p0).

    Truth: ``worth`` (K, n_options, centred), ``type`` (per user), ``shares``, ``type_coef``.
    """
    rng = np.random.default_rng(seed)
    W = (np.asarray(worths, float) if worths is not None
         else rng.normal(0, worth_sd, (n_types, n_options)))
    W = W - W.mean(1, keepdims=True)
    K, n_options = W.shape
    users = None
    coef = None
    if covariate_shift is not None:
        if K != 2:
            raise ValueError("covariate_shift needs n_types = 2")
        p0, p1 = covariate_shift
        g = np.arange(n_users) % 2
        z = (rng.random(n_users) < np.where(g == 1, p1, p0)).astype(int)
        coef = np.log(p1 / (1 - p1)) - np.log(p0 / (1 - p0))
    else:
        p = np.full(K, 1 / K) if shares is None else np.asarray(shares, float)
        z = rng.choice(K, size=n_users, p=p / p.sum())
    user = np.repeat(np.arange(n_users), comparisons_per_user)
    a, b = _pairs(rng, user.size, n_options)
    d = W[z[user], a] - W[z[user], b]
    labels = _option_labels(n_options)
    ulabels = _labels("u", n_users)
    frame = pd.DataFrame({"a": labels[a], "b": labels[b], "outcome": _outcomes(rng, d, None), "user": ulabels[user]})
    if covariate_shift is not None:
        users = pd.DataFrame({"group": np.where(g == 1, "B", "A")}, index=pd.Index(ulabels, name="user"))
    truth = {"worth": W, "type": z, "shares": np.bincount(z, minlength=K) / n_users, "type_coef": coef}
    return Simulated(frame, None, users, truth)


def hidden_context(n_users: int = 200, comparisons_per_user: int = 30, n_options: int = 25,
                   minority_share: float = 0.3, scale: float = 3.0, seed: int = 0) -> Simulated:
    r"""Two user types that agree on half the option space and disagree on the other half.

    Options are points :math:`y_i \sim U(0, 1)`; the majority type (0) has reward
    :math:`r_0(y) = y` for y < 0.5 and :math:`2y` above, the minority type (1, share
    ``minority_share``) :math:`r_1(y) = y` below 0.5 and :math:`1 - y` above; comparisons follow
    BT on ``scale`` times the reward. A pooled model averages the two (a Borda-like average) and
    describes neither. Truth as in :func:`latent_types` plus ``y`` (option positions).
    """
    rng = np.random.default_rng(seed)
    y = np.sort(rng.random(n_options))
    r0 = np.where(y < 0.5, y, 2 * y)
    r1 = np.where(y < 0.5, y, 1 - y)
    sim = latent_types(n_users, comparisons_per_user, n_options, worths=scale * np.vstack([r0, r1]),
                       shares=[1 - minority_share, minority_share], seed=seed + 1)
    return Simulated(sim.frame, None, None, {**sim.truth, "y": y})
