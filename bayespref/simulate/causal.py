"""Simulators of the causal failure modes of preference learning (``docs/paper-notes.md``), with
their known truths: the data of the causal and sensitivity notebooks, ``experiments/causal.py``
and the tests.

* :func:`latent_positivity` -- a latent factor the training pairs never vary alone;
* :func:`confounded_objective` and :func:`confounded_shared` -- a user objective that drives both
  the pairs shown and the preferences;
* :func:`nonadditive_prompt` -- a prompt-dependent (non-additive) reward.

Each returns a :class:`~bayespref.simulate.families.Simulated` with the known truth.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bayespref.errors import DataError
from bayespref.simulate.families import Simulated, draw_outcomes, make_labels, response_frame


def _sigmoid(d):
    return 1 / (1 + np.exp(-d))


def _informative_share(rho: float) -> float:
    """Share of pairs whose two factor differences disagree in sign (bivariate normal, correlation rho)."""
    return 0.5 - np.arcsin(rho) / np.pi


def _pair_factors(rng, n, rho):
    """Latent factors of the two responses of ``n`` prompts, each response z ~ N(0, S / 2) with
    S = [[1, rho], [rho, 1]], so that the pair difference z_a - z_b ~ N(0, S)."""
    cov = np.array([[1.0, rho], [rho, 1.0]]) / 2
    chol = np.linalg.cholesky(cov + 1e-12 * np.eye(2))
    za = rng.normal(size=(n, 2)) @ chol.T
    zb = rng.normal(size=(n, 2)) @ chol.T
    return za, zb


def latent_positivity(rho: float = 0.0, alpha: float = 0.25, n_train: int = 2000, n_test: int = 2000,
                      n_distractors: int = 2, noise_sd: float = 0.2, scale: float = 2.0,
                      rho_ood: float = -0.8, seed: int = 0) -> Simulated:
    r"""Limited latent positivity: two latent response factors that move together in training.

    Each prompt n has two responses with latent factors :math:`z \in \mathbb{R}^2`, drawn so that
    the pair difference :math:`\delta_n = z_{a_n} - z_{b_n} \sim N(0, S_\rho)`,
    :math:`S_\rho = \begin{pmatrix}1 & \rho\\ \rho & 1\end{pmatrix}` (paper, App. D). The true reward
    and the outcome are

    .. math::

        r(y) = s\,(\alpha z_1(y) + (1 - \alpha) z_2(y)),\qquad
        P(a \succ b) = \sigma(r(a) - r(b)),

    with ``scale`` s and ``alpha`` (paper: 0.25). The observed features are noisy views
    :math:`x_k = z_k + \epsilon_k`, :math:`\epsilon_k \sim N(0, \text{noise\_sd}^2)` (``x1``,
    ``x2``) and ``n_distractors`` pure-noise features (``d1``, ...), all per response
    (``<name>_a``/``<name>_b`` columns).

    Splits (``sim.splits``): ``"train"`` (``n_train`` pairs, correlation ``rho``), ``"test_id"``
    (``n_test`` pairs, same ``rho``), ``"test_ood"`` (``n_test`` pairs drawn with correlation
    ``rho_ood`` and kept only when :math:`\delta_1, \delta_2` disagree in sign: the pairs where the
    two factors point different ways, which training at high ``rho`` rarely shows).

    Only a share :math:`1/2 - \arcsin(\rho)/\pi` of the training pairs is informative about which
    factor matters (0.50, 0.40, 0.30, 0.14 at rho = 0, 0.3, 0.6, 0.9), and the posterior SD of
    the reward orientation :math:`\operatorname{atan2}(w_2, w_1)` grows about as
    :math:`1/\sqrt{1 - \rho}`.

    The frame also holds the latent factors (``z1_a``, ``z1_b``, ``z2_a``, ``z2_b``), the true
    reward difference ``reward_diff`` and ``split``. Truth: ``alpha``, ``rho``, ``weight`` (true
    weights of z), ``orientation`` (atan2(1 - alpha, alpha)), ``informative_share``.

    Examples
    --------
    >>> sim = latent_positivity(rho=0.9, n_train=200, n_test=100, seed=1)
    >>> parts = sim.split()
    >>> sorted(parts), parts["train"].feature_names
    (['test_id', 'test_ood', 'train'], ('x1', 'x2', 'd1', 'd2'))
    """
    if not -1 < rho < 1 or not -1 < rho_ood < 1:
        raise ValueError(f"rho={rho} and rho_ood={rho_ood} must lie strictly between -1 and 1.")
    rng = np.random.default_rng(seed)
    weight = scale * np.array([alpha, 1 - alpha])

    za_tr, zb_tr = _pair_factors(rng, n_train + n_test, rho)
    parts_a, parts_b, keep = [], [], 0
    while keep < n_test:  # OOD: discordant pairs under rho_ood (a share 1/2 + arcsin(|rho_ood|)/pi)
        za, zb = _pair_factors(rng, 2 * n_test, rho_ood)
        dz = za - zb
        disc = np.sign(dz[:, 0]) != np.sign(dz[:, 1])
        parts_a.append(za[disc])
        parts_b.append(zb[disc])
        keep += int(disc.sum())
    za = np.vstack([za_tr] + parts_a)[: n_train + 2 * n_test]
    zb = np.vstack([zb_tr] + parts_b)[: n_train + 2 * n_test]
    n = za.shape[0]
    split = np.repeat(np.array(["train", "test_id", "test_ood"]), [n_train, n_test, n_test])

    def views(z):
        x = z + noise_sd * rng.normal(size=z.shape)
        d = rng.normal(0, np.sqrt(0.5), size=(n, n_distractors))
        return np.hstack([x, d])

    xa, xb = views(za), views(zb)
    names = ["x1", "x2"] + [f"d{j + 1}" for j in range(n_distractors)]
    d = (za - zb) @ weight
    frame = response_frame("p", za, zb, xa, xb, names,
                            latent={"z1": (za[:, 0], zb[:, 0]), "z2": (za[:, 1], zb[:, 1])})
    frame["outcome"] = draw_outcomes(rng, d, None)
    frame["reward_diff"] = d
    frame["split"] = split
    splits = {name: split == name for name in ("train", "test_id", "test_ood")}
    truth = {"alpha": alpha, "rho": rho, "weight": weight, "orientation": float(np.arctan2(1 - alpha, alpha)),
             "informative_share": _informative_share(rho)}
    return Simulated(frame, None, None, truth, splits,
                     {"features": names, "prompt": "prompt", "check_connected": False})


def confounded_objective(rho: float = 0.8, n_users: int = 100, comparisons_per_user: int = 60,
                         n_test: int = 4000, n_quality: int = 3, conflict: float = 1.5,
                         quality: float = 1.0, proxy: float = 1.0, proxy_link: float = 0.8,
                         comply_noise: float = 0.0, off_sd: float = 0.1, scale: float = 1.5,
                         seed: int = 0) -> Simulated:
    r"""Confounding by user objective: who asks which prompts depends on what they want.

    Users u have an objective :math:`c_u \in \{0, 1\}` (half each; user covariate ``objective``;
    think 0 = helpfulness, 1 = harmlessness). Each judgement's prompt has a type
    :math:`t \in \{0, 1\}` with :math:`P(t = c_u) = \rho`: ``rho = 0.5`` is no confounding,
    ``rho = 1`` leaves no inconsistent (t != c) cases. t is **hidden from the models** (column
    ``prompt_type`` of the frame, for diagnostics only).

    The prompt type changes which response features vary. Per response y of a type-t prompt:

    * quality features ``q0_1..q0_K`` vary (N(0, 1/2)) on type-0 prompts and ``q1_1..q1_K`` on
      type-1 prompts; off-type they have SD ``off_sd`` (K = ``n_quality``);
    * compliance with the request, :math:`k(y)`, varies (N(0, 1/2)) on type-1 prompts and has SD
      ``off_sd`` on type-0 prompts (benign prompts: every response complies); the feature
      ``comply`` is :math:`k(y) + N(0, \text{comply\_noise}^2)` (exact by default; a noisy view,
      like an embedding direction, with ``comply_noise > 0``);
    * ``topic``, a proxy of the prompt type that the reward does not use:
      :math:`\text{topic}(y) = \text{proxy}\,(2t - 1) + \text{proxy\_link}\; t\,k(y)
      + N(0, 1/4)`: its level reveals t (so it predicts c), and on type-1 prompts its difference
      carries compliance too (a shortcut that a reward can use in place of the noisy ``comply``).

    The objectives share the quality weights and conflict on compliance:

    .. math::

        r_c(y) = s\,\big(\text{quality}\sum_k (q_{0k}(y) + q_{1k}(y)) + (1 - 2c)\,\text{conflict}\,
        k(y)\big),\qquad P(a \succ b \mid u) = \sigma(r_{c_u}(a) - r_{c_u}(b)).

    Splits: ``"train"`` (``n_users`` x ``comparisons_per_user`` judgements under ``rho``, with
    ``"train_consistent"`` / ``"train_inconsistent"`` the t = c and t != c parts) and
    ``"test_consistent"`` / ``"test_inconsistent"`` (``n_test`` each, by the same users). The
    frame holds ``reward_diff`` (under the judging user's objective) and ``reward_diff_c0``,
    ``reward_diff_c1`` (under each objective: the truth of interventional questions such as "what
    would objective-0 users prefer on type-1 prompts?"). Truth: ``rho``, ``weight`` (objective,
    feature; the ``comply`` entry weighs the true compliance k), ``features``.

    Examples
    --------
    >>> sim = confounded_objective(rho=1.0, n_users=10, comparisons_per_user=10, n_test=20)
    >>> int(sim.splits["train_inconsistent"].sum())
    0
    """
    if not 0 <= rho <= 1:
        raise ValueError(f"rho={rho} is a probability P(t = c); use a value in [0, 1].")
    rng = np.random.default_rng(seed)
    K = n_quality
    names = [f"q0_{k + 1}" for k in range(K)] + [f"q1_{k + 1}" for k in range(K)] + ["comply", "topic"]
    w_common = np.r_[np.full(2 * K, quality), 0.0, 0.0]
    w_conf = np.zeros(len(names))
    w_conf[2 * K] = conflict
    weight = scale * np.vstack([w_common + w_conf, w_common - w_conf])  # (objective, feature)

    c_user, n_train, user, c, consistent, t = _objective_design(rng, rho, n_users, comparisons_per_user, n_test)
    n = user.size

    def responses():
        sd_q0 = np.where(t == 0, np.sqrt(0.5), off_sd)[:, None]
        sd_q1 = np.where(t == 1, np.sqrt(0.5), off_sd)[:, None]
        q0 = rng.normal(size=(n, K)) * sd_q0
        q1 = rng.normal(size=(n, K)) * sd_q1
        comply = rng.normal(size=n) * np.where(t == 1, np.sqrt(0.5), off_sd)
        seen = comply + rng.normal(0, comply_noise, n)
        topic = proxy * (2 * t - 1) + proxy_link * t * comply + rng.normal(0, 0.5, n)
        latent = np.column_stack([q0, q1, comply, np.zeros(n)])
        return np.column_stack([q0, q1, seen, topic]), latent

    (xa, za), (xb, zb) = responses(), responses()
    return _objective_frame(rng, xa, xb, za - zb, weight, names, user, c, t, c_user, consistent, n_users,
                            n_train, n_test, {"rho": rho, "weight": weight, "features": names})


def _objective_design(rng, rho, n_users, comparisons_per_user, n_test):
    """Users' objectives (alternating 0/1), who judges each comparison, and the prompt types: the
    training prompts match the judge's objective with probability rho; the two test sets are all
    consistent (t = c) and all inconsistent (t != c)."""
    c_user = np.arange(n_users) % 2
    n_train = n_users * comparisons_per_user
    user = np.r_[np.repeat(np.arange(n_users), comparisons_per_user), rng.integers(0, n_users, 2 * n_test)]
    c = c_user[user]
    consistent = np.r_[rng.random(n_train) < rho, np.ones(n_test, bool), np.zeros(n_test, bool)]
    t = np.where(consistent, c, 1 - c)
    return c_user, n_train, user, c, consistent, t


def _objective_frame(rng, xa, xb, reward_dx, weight, names, user, c, t, c_user, consistent, n_users, n_train,
                     n_test, truth) -> Simulated:
    """Comparisons of the confounding-by-objective simulators: outcomes from objective c's reward
    ``reward_dx @ weight[c]``, the train / consistent / inconsistent test splits, the users' objectives."""
    n = xa.shape[0]
    d_all = reward_dx @ weight.T  # (n, objective)
    d = d_all[np.arange(n), c]
    frame = response_frame("p", None, None, xa, xb, names)
    ulabels = make_labels("u", n_users)
    frame.insert(0, "user", ulabels[user])
    frame["outcome"] = draw_outcomes(rng, d, None)
    frame["objective"] = c
    frame["prompt_type"] = t
    frame["reward_diff"] = d
    frame["reward_diff_c0"], frame["reward_diff_c1"] = d_all[:, 0], d_all[:, 1]
    part = np.repeat(np.array(["train", "test_consistent", "test_inconsistent"]), [n_train, n_test, n_test])
    frame["split"] = part
    splits = {"train": part == "train", "train_consistent": (part == "train") & consistent,
              "train_inconsistent": (part == "train") & ~consistent,
              "test_consistent": part == "test_consistent", "test_inconsistent": part == "test_inconsistent"}
    users = pd.DataFrame({"objective": c_user}, index=pd.Index(ulabels, name="user"))
    return Simulated(frame, None, users, truth, splits,
                     {"features": names, "prompt": "prompt", "user": "user", "check_connected": False})


def confounded_shared(rho: float = 0.8, n_users: int = 100, comparisons_per_user: int = 20,
                      n_test: int = 2000, n_general: int = 4, n_specific: int = 12, n_conflict: int = 2,
                      conflict_share: float = 0.5, scale: float = 2.0, off_sd: float = 0.1,
                      proxy: float = 1.0, shortcut: float = 0.0, view_noise: float = 0.0,
                      seed: int = 0) -> Simulated:
    r"""Confounding by user objective with a shared representation: many features, objectives that
    agree on most of them and conflict on a few, few judgements per objective on the other
    objective's prompts.

    The setting in which one head per objective on a shared representation (partial pooling) has
    something to borrow: the weights the objectives share are learned from every judgement, so only
    the few conflicting weights have to come from the rare inconsistent judgements, while a model
    with independent per-objective interactions has to learn every weight of the rare prompt type
    from them (and overfits them).

    Users u have an objective :math:`c_u \in \{0, 1\}` (half each; user covariate ``objective``).
    Each judgement's prompt has a type :math:`t \in \{0, 1\}` with :math:`P(t = c_u) = \rho`
    (``rho = 0.5``: no confounding; ``rho = 1``: no inconsistent t != c judgements). t is hidden
    from the models (column ``prompt_type``, for diagnostics only). Features of a response y of a
    type-t prompt, all with mean 0 (the prompt type changes **which features vary**, not their
    level):

    * ``g1..gG`` (G = ``n_general``): vary on every prompt, :math:`N(0, 1/2)`;
    * ``s{k}_1..s{k}_S`` (S = ``n_specific``) for k = 0, 1: vary, :math:`N(0, 1/2)`, on type-k
      prompts; SD ``off_sd`` on the other type. The first ``n_conflict`` of each block are the
      features on which the objectives conflict;
    * ``topic``: :math:`\text{proxy}\,(2t - 1) + \text{shortcut}\; x^\top w_t / \lambda_s + N(0, 1/4)`,
      a prompt-type proxy that the reward does not use. Its level predicts C. With ``shortcut = 0``
      (default) its within-prompt difference is noise. With ``shortcut > 0`` it also tracks how well
      the response serves the objective that the prompt type usually comes with (:math:`w_t`, the
      type-t objective's weights; :math:`\lambda_s` = ``scale``): a shortcut such as a style that
      prompt writers give the answers their usual audience likes. On consistent judgements
      (t = c) it predicts the preference; on inconsistent ones it predicts the other objective's
      preference. A reward that leans on it is misled exactly where t != c.

    With ``view_noise > 0`` the frame holds noisy views :math:`x + N(0, \text{view\_noise}^2)` of
    every feature but ``topic``, while the outcomes (and the shortcut) use the true :math:`x`: a
    head that cannot recover the reward exactly from its inputs has a reason to lean on ``topic``.

    Weights, one draw per seed: :math:`v_f \sim N(0, 1)` for every feature but ``topic``; the
    conflicting features of block k get the factor :math:`\kappa_k` that makes them carry the share
    ``conflict_share`` (:math:`\pi`) of the reward-difference variance on type-k prompts,
    :math:`\kappa_k^2 \sum_{f \in K_k} v_f^2 = \frac{\pi}{1 - \pi} \sum_{f \in G \cup S_k
    \setminus K_k} v_f^2` (K_k: conflicting features of block k). Objective c's weights are

    .. math::

        w_{c f} = \lambda\, v_f \; (f \text{ shared}),\qquad
        w_{c f} = \lambda\, (1 - 2c)\, \kappa_k v_f \; (f \in K_k),\qquad
        P(a \succ b \mid u) = \sigma\big((x_a - x_b)^\top w_{c_u}\big),

    with :math:`\lambda` such that the reward difference has SD ``scale`` on an average prompt
    (off-type variation ignored). On a type-k prompt the two objectives' reward differences then
    correlate :math:`1 - 2\pi` (0 for the default :math:`\pi = 1/2`): a model that answers for one
    objective with the other's weights is at chance on inconsistent pairs, while it has the
    shared weights, which carry half of the variance, right.

    Confounding acts on second moments only (which features vary by group), plus the ``topic``
    level: linear concept erasure of C (:func:`bayespref.causal.erase`) can remove only the
    ``topic`` mean direction, which cancels in within-prompt differences anyway.

    Splits, frame columns and truth as in :func:`confounded_objective` (``"train"``,
    ``"train_consistent"``, ``"train_inconsistent"``, ``"test_consistent"``,
    ``"test_inconsistent"``; ``reward_diff``, ``reward_diff_c0``, ``reward_diff_c1``); truth
    ``weight`` (objective, feature; 0 for ``topic``), ``conflicting`` (feature names).

    Examples
    --------
    >>> sim = confounded_shared(rho=0.9, n_users=10, comparisons_per_user=10, n_test=20)
    >>> len(sim.truth["features"]), sim.truth["conflicting"]
    (29, ['s0_1', 's0_2', 's1_1', 's1_2'])
    """

    if not 0 <= rho <= 1:
        raise DataError(f"rho={rho} is a probability P(t = c); use a value in [0, 1].")
    if not 0 <= conflict_share < 1:
        raise DataError(f"conflict_share={conflict_share}: the share of reward variance carried by the "
                        "conflicting features; use a value in [0, 1).")
    if not 0 < n_conflict < n_specific:
        raise DataError(f"n_conflict={n_conflict}: use 1 <= n_conflict < n_specific ({n_specific}) so that "
                        "each block has conflicting and shared features.")
    rng = np.random.default_rng(seed)
    G, S = n_general, n_specific
    names = ([f"g{j + 1}" for j in range(G)] + [f"s0_{j + 1}" for j in range(S)]
             + [f"s1_{j + 1}" for j in range(S)] + ["topic"])
    D = len(names)
    gen = np.arange(G)
    block = [G + np.arange(S), G + S + np.arange(S)]
    conf = [b[:n_conflict] for b in block]
    v = np.r_[rng.normal(size=D - 1), 0.0]
    sign = np.ones((2, D))
    total = []
    for k in (0, 1):
        shared_k = np.r_[gen, block[k][n_conflict:]]
        kappa = np.sqrt(conflict_share / (1 - conflict_share) * np.sum(v[shared_k] ** 2) / np.sum(v[conf[k]] ** 2))
        v[conf[k]] *= kappa
        sign[1, conf[k]] = -1.0
        total.append(np.sum(v[shared_k] ** 2) + np.sum(v[conf[k]] ** 2))
    lam = scale / np.sqrt(np.mean(total))
    weight = lam * sign * v[None, :]  # (objective, feature)

    c_user, n_train, user, c, consistent, t = _objective_design(rng, rho, n_users, comparisons_per_user, n_test)
    n = user.size
    sd = np.full((n, D), np.sqrt(0.5))
    for k in (0, 1):
        sd[np.ix_(t != k, block[k])] = off_sd

    def responses():
        x = rng.normal(size=(n, D)) * sd
        x[:, -1] = proxy * (2 * t - 1) + rng.normal(0, 0.5, n)
        if shortcut:
            x[:, -1] += shortcut * np.einsum("nf,nf->n", x, weight[t]) / scale
        return x

    xa, xb = responses(), responses()
    dx = xa - xb  # the reward uses the responses' true features
    if view_noise:  # the models see noisy views of them (topic is seen as it is)
        xa, xb = (x + np.c_[rng.normal(0, view_noise, (n, D - 1)), np.zeros(n)] for x in (xa, xb))
    truth = {"rho": rho, "weight": weight, "features": names, "shortcut": shortcut, "view_noise": view_noise,
             "conflicting": [names[i] for i in np.r_[conf[0], conf[1]]]}
    return _objective_frame(rng, xa, xb, dx, weight, names, user, c, t, c_user, consistent, n_users,
                            n_train, n_test, truth)


def nonadditive_prompt(n_prompts: int = 1000, n_test: int = 1000, ideal=(-0.5, 0.5), spread: float = 1.0,
                       scale: float = 3.0, seed: int = 0) -> Simulated:
    r"""Non-additive prompt effects: the ideal response length depends on the task type.

    Each prompt has a task type :math:`t \in \{0, 1\}` (half each; e.g. 0 = quick question,
    1 = essay) and two responses with lengths :math:`\ell \sim U(-\text{spread}, \text{spread})`
    (standardised). The reward peaks at the task's ideal length :math:`m_t` (``ideal``; paper
    Example 2):

    .. math::

        r(x, y) = -s\,(\ell_y - m_{t(x)})^2 = -s\,\ell_y^2 + 2 s\, m_{t(x)} \ell_y - s\, m_{t(x)}^2 .

    In the features ``len`` (:math:`\ell`), ``len2`` (:math:`\ell^2`) and ``len_task``
    (:math:`\ell\, t`) the reward is linear: weights (2 s m_0, -s, 2 s (m_1 - m_0)); the last term
    depends on the prompt alone and cancels in every comparison. An additive model (``len``,
    ``len2`` and the prompt feature ``task``, equal for both responses) cannot follow the switch:
    its prompt term ``task`` cancels, so its weight is learned from the prior alone.

    Splits: ``"train"``, ``"test"``, and ``"test_between"`` (test pairs with both lengths between
    the two ideal points, where the two task types prefer opposite responses). Frame columns:
    ``task`` (prompt level), ``reward_diff``. Truth: ``ideal``, ``weight`` (for len, len2,
    len_task), ``scale``.
    """
    rng = np.random.default_rng(seed)
    m = np.asarray(ideal, float)
    n = n_prompts + n_test
    t = rng.integers(0, 2, n)
    la, lb = rng.uniform(-spread, spread, (2, n))

    def feats(length):
        return np.column_stack([length, length ** 2, length * t, t.astype(float)])

    xa, xb = feats(la), feats(lb)
    names = ["len", "len2", "len_task", "task"]
    ra, rb = -scale * (la - m[t]) ** 2, -scale * (lb - m[t]) ** 2
    d = ra - rb
    frame = response_frame("p", None, None, xa, xb, names)
    frame["outcome"] = draw_outcomes(rng, d, None)
    frame["task"] = t
    frame["reward_diff"] = d
    part = np.repeat(np.array(["train", "test"]), [n_prompts, n_test])
    frame["split"] = part
    lo, hi = m.min(), m.max()
    between = (part == "test") & (la > lo) & (la < hi) & (lb > lo) & (lb < hi)
    splits = {"train": part == "train", "test": part == "test", "test_between": between}
    truth = {"ideal": m, "scale": scale, "weight": scale * np.array([2 * m[0], -1.0, 2 * (m[1] - m[0])])}
    return Simulated(frame, None, None, truth, splits,
                     {"features": names, "prompt": "prompt", "check_connected": False})
