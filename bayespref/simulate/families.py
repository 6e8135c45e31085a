"""Simulated paired comparisons with known true parameters.

Each generator returns a :class:`Simulated` with the long frame, the option and user tables, the
true parameters and a ready :class:`~bayespref.Comparisons`. Same seed, same data.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from bayespref.data.comparisons import Comparisons
from bayespref.errors import DataError


@dataclasses.dataclass(frozen=True)
class Simulated:
    """Simulated data: ``frame`` (long, columns a, b, outcome[, user]), ``option_table``,
    ``user_table``, ``truth`` (dict of true parameter arrays, labelled like the posterior).

    Simulators of the causal failure modes also give ``splits`` (name -> boolean mask over the
    rows of ``frame``, e.g. ``"train"``, ``"test_id"``, ``"test_ood"``) and ``options`` (the
    :meth:`Comparisons.from_frame <bayespref.Comparisons.from_frame>` arguments, e.g. the
    per-comparison feature names and the prompt column).
    """

    frame: pd.DataFrame
    option_table: pd.DataFrame | None
    user_table: pd.DataFrame | None
    truth: dict
    splits: dict | None = None
    options: dict | None = None

    def comparisons(self, **kwargs):
        """The :class:`~bayespref.Comparisons` of the simulated data (all rows, every split)."""

        kw = {"a": "a", "b": "b", "outcome": "outcome"}
        if "user" in self.frame:
            kw["user"] = "user"
        if self.option_table is not None and self.option_table.shape[1]:
            kw["features"] = self.option_table
        if self.user_table is not None and self.user_table.shape[1]:
            kw["user_covariates"] = self.user_table
        kw.update(self.options or {})
        kw.update(kwargs)
        return Comparisons.from_frame(self.frame, **kw)

    def split(self, **kwargs) -> dict:
        """The :class:`~bayespref.Comparisons` of each split: ``{name: Comparisons}``.

        All splits share one encoding (options, users, prompts), so a model fitted on one split
        predicts the others. ``kwargs`` go to :meth:`comparisons`.
        """

        if not self.splits:
            raise DataError("These simulated data have no splits; use .comparisons() and "
                            "Comparisons.split_by_user/split_by_prompt.")
        data = self.comparisons(**kwargs)
        return {name: data.subset(np.asarray(mask, bool)) for name, mask in self.splits.items()}


def random_pairs(rng, n, n_options):
    a = rng.integers(0, n_options, n)
    b = (a + rng.integers(1, n_options, n)) % n_options  # never equal to a
    return a, b


def draw_outcomes(rng, d, log_tie):
    """Outcome (1, 0, 0.5) from reward differences ``d`` under BT or Davidson ties."""
    if log_tie is None:
        return (rng.random(d.shape) < 1 / (1 + np.exp(-d))).astype(float)
    logits = np.stack([-d / 2, d / 2, np.full_like(d, log_tie)], -1)
    p = np.exp(logits - logits.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    u = rng.random(d.shape)
    code = (u[:, None] > np.cumsum(p, -1)).sum(-1)  # 0 = b, 1 = a, 2 = tie
    return np.array([0.0, 1.0, 0.5])[code]


def make_labels(prefix, n):
    """Labels that sort in index order (zero-padded to the width of n - 1)."""
    width = max(3, len(str(n - 1)))
    return np.array([f"{prefix}{i:0{width}d}" for i in range(n)])


def option_labels(n):
    return make_labels("o", n)


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
    a, b = random_pairs(rng, n_comparisons, n_options)
    d = worth[a] - worth[b] + (X[a] - X[b]) @ weight + position
    labels = option_labels(n_options)
    frame = pd.DataFrame({"a": labels[a], "b": labels[b], "outcome": draw_outcomes(rng, d, log_tie)})
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
    a, b = random_pairs(rng, user.size, n_options)
    d = worth[a] - worth[b] + np.sum((X[a] - X[b]) * W[user], -1) + position
    labels = option_labels(n_options)
    ulabels = make_labels("u", n_users)
    frame = pd.DataFrame({"a": labels[a], "b": labels[b], "outcome": draw_outcomes(rng, d, None), "user": ulabels[user]})
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
    a, b = random_pairs(rng, user.size, n_options)
    d = W[z[user], a] - W[z[user], b]
    labels = option_labels(n_options)
    ulabels = make_labels("u", n_users)
    frame = pd.DataFrame({"a": labels[a], "b": labels[b], "outcome": draw_outcomes(rng, d, None), "user": ulabels[user]})
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


def response_frame(prefix, za, zb, xa, xb, names, latent=None):
    """Frame of prompt-specific response pairs: ids, feature columns ``<name>_a``/``<name>_b``."""
    n = za.shape[0] if za is not None else xa.shape[0]
    pid = make_labels(prefix, n)
    cols = {"prompt": pid, "a": np.char.add(pid, ":y0"), "b": np.char.add(pid, ":y1")}
    for j, name in enumerate(names):
        cols[f"{name}_a"] = xa[:, j]
        cols[f"{name}_b"] = xb[:, j]
    for name, (va, vb) in (latent or {}).items():
        cols[f"{name}_a"], cols[f"{name}_b"] = va, vb
    return pd.DataFrame(cols)


def position_bias(size: float = 0.5, n_options: int = 8, n_comparisons: int = 2000, worth_sd: float = 1.0,
                  seed: int = 0) -> Simulated:
    r"""Pooled Bradley-Terry data with an order effect of a chosen size.

    .. math::

        \operatorname{logit} P(a \succ b) = \theta_a - \theta_b + \beta_{pos},\quad
        \beta_{pos} = \text{size}

    (``a`` is the option shown first). This is :func:`bradley_terry` with ``position=size``;
    truth ``position``.
    """
    return bradley_terry(n_options=n_options, n_comparisons=n_comparisons, worth_sd=worth_sd,
                         position=size, seed=seed)


def binary_factors(effects=(1.0, -0.5, 0.5), interaction: float = 0.0, probs=(0.5, 0.3, 0.5),
                   n_comparisons: int = 2000, seed: int = 0) -> Simulated:
    r"""Responses described by binary factors with known effects (the AMCE's setting).

    Each response has factors :math:`f_k \sim \text{Bernoulli}(p_k)` (``probs``) and reward

    .. math::

        r(y) = \sum_k \beta_k f_k(y) + \gamma\, f_1(y) f_2(y),

    with ``effects`` :math:`\beta` and ``interaction`` :math:`\gamma`. Features: ``f1, f2, ...``
    and their product ``f1f2`` (per response, ``<name>_a``/``<name>_b``). The AMCE of ``f1``
    (P(a response with f1 = 1 beats an otherwise equal one with f1 = 0)) is
    :math:`\sigma(\beta_1)` when :math:`\gamma = 0` whatever the reference distribution, and
    :math:`(1 - m_2)\,\sigma(\beta_1) + m_2\,\sigma(\beta_1 + \gamma)` when the reference
    distribution has :math:`P(f_2 = 1) = m_2` (1/2 uniform, :math:`p_2` empirical).
    """
    rng = np.random.default_rng(seed)
    beta = np.asarray(effects, float)
    p = np.asarray(probs, float)
    if beta.shape != p.shape:
        raise ValueError("effects and probs need one value per factor.")
    K = beta.size

    def draw():
        f = (rng.random((n_comparisons, K)) < p).astype(float)
        return np.column_stack([f, f[:, 0] * f[:, 1]])

    xa, xb = draw(), draw()
    w = np.r_[beta, interaction]
    d = (xa - xb) @ w
    names = [f"f{k + 1}" for k in range(K)] + ["f1f2"]
    frame = response_frame("p", None, None, xa, xb, names)
    frame["outcome"] = draw_outcomes(rng, d, None)
    frame["reward_diff"] = d
    truth = {"effects": beta, "interaction": interaction, "probs": p, "weight": w}
    return Simulated(frame, None, None, truth, None,
                     {"features": names, "prompt": "prompt", "check_connected": False})
