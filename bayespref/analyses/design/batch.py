r"""Choose a batch of n judgements at once: greedy conditional EIG, under budgets and exclusions.

The EIG of a batch is the sum of conditional gains, :math:`I(T; y_1, \dots, y_n) = \sum_j
I(T; y_j \mid y_1, \dots, y_{j-1})`, and the greedy design adds, at each step, the candidate with
the largest gain given the ones already chosen (their outcomes still unknown). No refit happens:
the posterior after the chosen judgements is represented by the same draws, in one of two ways.

``method="ensemble"`` (default for continuous targets)
    A linearised Gaussian update of the draws, as in an ensemble square-root filter. Each
    candidate's log-odds :math:`\eta_c = \operatorname{logit} P(a \mid a \text{ or } b)` is observed
    with Gaussian noise of variance :math:`R_c = 1 / E_s[\pi_{sc}\, q_{sc}(1 - q_{sc})]`
    (the Fisher information of the outcome about :math:`\eta_c`; :math:`q` = P(a | decided),
    :math:`\pi` = P(decided)). Under the joint Gaussian of :math:`(T, \eta)` given by the draws,
    the gain of candidate c is

    .. math::

        g_c = -\tfrac12 \log\big(1 - k_c^\top \Sigma_T^{-1} k_c / (v_c + R_c)\big),
        \quad k_c = \operatorname{Cov}(T, \eta_c),\ v_c = \operatorname{Var}(\eta_c),

    (for a scalar target, :math:`\tfrac12 \log(\sigma_T^2 / \sigma_{T \mid c}^2)`), and choosing c
    moves every draw's anomaly (deviation from the mean) by the deterministic square-root update
    :math:`A \leftarrow A - \alpha\, h K^\top`, :math:`h = A_{\cdot c}`,
    :math:`K = A^\top h / ((S - 1)(v_c + R_c))`, :math:`\alpha = 1 / (1 + \sqrt{R_c / (v_c + R_c)})`
    (Whitaker and Hamill 2002), which gives the expected posterior covariance without drawing an
    outcome and without the weight collapse of importance sampling, so batches of hundreds stay
    well defined. ``target_sd`` after each step is the expected posterior SD of the target.

``method="fantasy"`` (default for discrete targets, membership and all parameters)
    Fantasised outcomes: F fantasies each draw a "true" posterior draw :math:`s_f` (and type) and
    answer every chosen candidate from it; the posterior of fantasy f is the draws reweighted by
    the likelihood of its answers, and the gain of a candidate is its EIG averaged over the
    fantasies (:mod:`~bayespref.analyses.design.eig`). The weights degenerate as the batch grows
    (``attrs["min_ess"]`` reports the smallest effective sample size); prefer batches that move the
    posterior little, or the ensemble method.

``method="top"``: the n candidates of highest EIG on their own (no conditioning): a baseline.

Constraints: ``budget`` caps the judgements per user (``budget_by="user"``) or per group (a user
covariate or a column of the candidates), ``exclude_judged`` leaves out pairs the data already
hold, and a candidate row is chosen at most once (repeat a row in the pool to allow asking it twice).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from bayespref.analyses.design import candidates as _cand
from bayespref.analyses.design import scoring as _score
from bayespref.errors import DataError, ModelError
from bayespref.validate import seed as check_seed

METHODS = ("auto", "ensemble", "fantasy", "top")


# -- the linearised (ensemble) posterior ------------------------------------------------------------------
def log_odds_and_noise(P: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per draw and candidate the log-odds of a over b, and the pseudo-observation noise variance
    :math:`R_c` (see the module docstring): ``(eta (S, C), R (C,))``."""
    pa, pb = P[..., 0].astype(np.float64), P[..., 1].astype(np.float64)
    dec = np.clip(pa + pb, 1e-9, 1.0)
    q = np.clip(pa / dec, 1e-6, 1 - 1e-6)
    eta = np.log(q) - np.log1p(-q)
    info = np.mean(dec * q * (1 - q), axis=0)
    return eta.astype(np.float32), (1.0 / np.maximum(info, 1e-9)).astype(np.float32)


# The draws' anomalies are stored transposed, X (m, S): one row per column of (target, log-odds), so
# the per-candidate sums below run over contiguous memory.
@functools.partial(jax.jit, static_argnames=("d",))
def _ens_gains(X, R, d: int = 1):
    S = X.shape[1]
    XT, Xe = X[:d], X[d:]
    ST = XT @ XT.T / (S - 1) + 1e-12 * jnp.eye(d)
    k = Xe @ XT.T / (S - 1)                                   # (C, d)
    v = jnp.sum(Xe * Xe, 1) / (S - 1)
    quad = jnp.sum(k * jnp.linalg.solve(ST, k.T).T, 1) / (v + R)
    return -0.5 * jnp.log(jnp.clip(1.0 - quad, 1e-12, 1.0))


def _update(X, row, R):
    S = X.shape[1]
    h = X[row]
    v = h @ h / (S - 1)
    K = X @ h / (S - 1) / (v + R)
    alpha = 1.0 / (1.0 + jnp.sqrt(R / (v + R)))
    return X - alpha * jnp.outer(K, h)


_ens_update = jax.jit(_update, donate_argnums=0)


@functools.partial(jax.jit, static_argnames=("d",), donate_argnums=0)
def _ens_step(X, R, ok, d: int = 1):
    """One greedy step on the device: the gains, the best allowed candidate, and the updated draws."""
    g = _ens_gains(X, R, d)
    c = jnp.argmax(jnp.where(ok, g, -jnp.inf))
    return _update(X, d + c, R[c]), c, g[c]


class Ensemble:
    """Draws of (target, candidates' log-odds) under linearised Gaussian updates (module docstring).

    ``T`` (S, d): the target's draws (a scalar on its own scale, a vector whitened); ``P`` (S, C, Y).
    """

    def __init__(self, T: np.ndarray, P: np.ndarray):
        eta, self.R = log_odds_and_noise(P)
        self.d = int(T.shape[1])
        X = np.concatenate([np.asarray(T, np.float32), eta], axis=1)
        self.A = jnp.asarray((X - X.mean(0)).T, dtype=jnp.float32)     # (m, S)
        self.R = jnp.asarray(self.R)

    def gains(self) -> np.ndarray:
        return np.asarray(_ens_gains(self.A, self.R, self.d))

    def choose(self, c: int) -> None:
        self.A = _ens_update(self.A, self.d + int(c), self.R[int(c)])

    def step(self, ok: np.ndarray) -> tuple[int, float]:
        """Choose the allowed candidate (``ok``) of highest gain and condition on it: (index, gain)."""
        self.A, c, g = _ens_step(self.A, self.R, jnp.asarray(ok), self.d)
        return int(c), float(g)

    def target_cov(self) -> np.ndarray:
        XT = np.asarray(self.A[: self.d], dtype=np.float64)
        return XT @ XT.T / (XT.shape[1] - 1)

    def target_sd(self) -> float:
        """SD of a scalar target; for a vector, the geometric-mean SD :math:`\\det(\\Sigma_T)^{1/2d}`."""
        cov = self.target_cov()
        return float(np.exp(np.linalg.slogdet(cov)[1] / (2 * self.d)))


# -- constraints -------------------------------------------------------------------------------------------
def units(fit, pool: _cand.Pool, budget_by: str, user_covariates=None) -> np.ndarray:
    """The unit (user id or group label, str) each candidate's budget is counted in."""
    if budget_by == "user":
        return pool.users.astype(str)
    if budget_by in pool.frame.columns:
        return pool.frame[budget_by].astype(str).to_numpy()
    table = fit.data.user_table
    if table is not None and budget_by in table.columns:
        values = table[budget_by].astype(str)
        if isinstance(user_covariates, pd.DataFrame) and budget_by in user_covariates.columns:
            values = pd.concat([user_covariates[budget_by].astype(str), values])
            values = values[~values.index.duplicated()]
        out = values.reindex(pd.Index(pool.users)).to_numpy()
        if pd.isna(out).any():
            missing = pd.unique(pool.users[pd.isna(out)])[:5]
            raise DataError(f"budget_by={budget_by!r}: no {budget_by} for users {list(missing)}; put a {budget_by!r} "
                            "column in the candidates or pass user_covariates=<table>.")
        return out.astype(str)
    raise DataError(f"budget_by={budget_by!r} is neither 'user', a column of the candidates ({list(pool.frame.columns)}) "
                    f"nor a user covariate ({[] if table is None else list(table.columns)}).")


def caps(budget, unit: np.ndarray) -> dict:
    """Budget per unit: an int for every unit, or a dict (units it does not name are unlimited)."""
    if budget is None:
        return {}
    labels = pd.unique(unit)
    if isinstance(budget, (int, np.integer)) and not isinstance(budget, bool):
        if budget < 0:
            raise DataError(f"budget={budget} must be a whole number of at least 0.")
        return {u: int(budget) for u in labels}
    if isinstance(budget, dict):
        out = {}
        for k, v in budget.items():
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 0:
                raise DataError(f"budget[{k!r}] = {v!r} must be a whole number of at least 0.")
            out[str(k)] = int(v)
        unknown = [k for k in out if k not in set(labels)]
        if unknown and len(unknown) == len(out):
            raise DataError(f"budget names {unknown[:5]}, none of which judge a candidate (units: {list(labels[:10])}).")
        return out
    raise DataError(f"budget={budget!r} must be a whole number (the same cap for every unit) or a dict "
                    "{unit: cap}.")


class Feasible:
    """Which candidates may still be chosen: not chosen yet, not excluded, unit under its cap."""

    def __init__(self, n: int, unit: np.ndarray, cap: dict, excluded: np.ndarray | None = None):
        self.ok = np.ones(n, dtype=bool) if excluded is None else ~excluded
        self.unit = unit
        self.left = dict(cap)
        for u, c in cap.items():
            if c == 0:
                self.ok &= unit != u

    def take(self, c: int) -> None:
        self.ok[c] = False
        u = self.unit[c]
        if u in self.left:
            self.left[u] -= 1
            if self.left[u] <= 0:
                self.ok &= self.unit != u

    def any(self) -> bool:
        return bool(self.ok.any())


def _best(gains: np.ndarray, feasible: Feasible) -> int:
    g = np.where(feasible.ok, np.nan_to_num(gains, nan=-np.inf), -np.inf)
    return int(np.argmax(g))


# -- selection ---------------------------------------------------------------------------------------------
def select(fit, candidates, target=None, n: int = 10, *, user_covariates=None, features=None, budget=None,
           budget_by: str = "user", exclude_judged: bool = False, method: str = "auto", fantasies: int = 16,
           max_draws: int = 1000, seed: int = 0, new_user_draws: int = 8) -> pd.DataFrame:
    r"""Select a batch of ``n`` judgements that together tell most about ``target``.

    Parameters
    ----------
    fit, candidates, target, user_covariates, features, max_draws, seed, new_user_draws :
        As in :func:`~bayespref.analyses.design.score`.
    n : int
        Batch size (fewer rows come back when the constraints leave fewer candidates).
    budget : int or dict, optional
        At most this many judgements per unit (``budget_by``), or ``{unit: cap}`` (units not named
        are unlimited; 0 excludes a unit).
    budget_by : str
        ``"user"`` (the candidate's judge), a column of the candidates, or a user covariate (e.g.
        ``"group"``: caps per group).
    exclude_judged : bool
        Leave out candidates whose two options the data already hold for the same judge.
    method : {"auto", "ensemble", "fantasy", "top"}
        See the module docstring; "auto" is "ensemble" for continuous targets, "fantasy" otherwise.
    fantasies : int
        Number of fantasies (``method="fantasy"``).

    Returns
    -------
    pandas.DataFrame
        The chosen candidates in the order chosen (their index kept) with ``step``, ``eig`` (the
        conditional gain when chosen, nats), ``cumulative_eig``, ``p_a`` and, for continuous
        targets with the ensemble method, ``target_sd`` (expected posterior SD of the target after
        this step; ``attrs["target_sd_before"]`` before any). ``attrs``: method, target, ``min_ess``
        (fantasy), ``n_candidates``, ``n_feasible``.

    Examples
    --------
    >>> batch = bp.design.select(fit, pool, bp.design.weight("x1"), n=50, budget=5)   # doctest: +SKIP
    """
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1:
        raise DataError(f"n={n!r}: the batch size must be a whole number of at least 1.")
    if method not in METHODS:
        raise ModelError(f"method={method!r}: use one of {METHODS}.")
    if not isinstance(fantasies, (int, np.integer)) or fantasies < 1:
        raise ModelError(f"fantasies={fantasies!r} must be a whole number of at least 1.")
    check_seed(seed)
    pr = _score.problem(fit, candidates, target, user_covariates=user_covariates, features=features,
                        max_draws=max_draws, seed=seed, new_user_draws=new_user_draws)
    if method == "auto":
        method = "ensemble" if pr.kind == "continuous" else "fantasy"
    if method == "ensemble" and pr.kind != "continuous":
        raise ModelError(f"method='ensemble' needs a continuous target (a contrast, weight, AMCE or predictions); "
                         f"the target ({pr.target.label}) is {pr.kind}: use method='fantasy'.")
    unit = units(fit, pr.pool, budget_by, user_covariates)
    excluded = _cand.judged(fit, pr.pool) if exclude_judged else None
    feas = Feasible(pr.pool.size, unit, caps(budget, unit), excluded)
    n_feasible = int(feas.ok.sum())
    if not feas.any():
        raise DataError("No candidate can be chosen: the budgets and exclusions leave none.")
    if method == "ensemble":
        chosen, gains, extra = _ensemble(pr, n, feas)
    elif method == "fantasy":
        chosen, gains, extra = _fantasy(pr, n, feas, fantasies, seed)
    else:
        chosen, gains, extra = _top(pr, n, feas)
    out = pr.pool.frame.iloc[chosen].copy()
    out.index = pr.pool.labels[chosen]
    out.insert(0, "step", np.arange(1, len(chosen) + 1))
    out["eig"] = gains
    out["cumulative_eig"] = np.cumsum(gains)
    P = pr.outcome_probs()
    out["p_a"] = np.einsum("s,sc->c", pr.draw_weights(), P[:, chosen, 0])
    for k, v in extra.pop("columns", {}).items():
        out[k] = v
    out.attrs = {"method": method, "target": pr.target.label, "n_candidates": pr.pool.size,
                 "n_feasible": n_feasible, "unit": "nats", **extra}
    return out


def _ensemble(pr, n, feas):
    T = pr.raw if pr.raw.shape[1] == 1 else pr.T
    ens = Ensemble(T, pr.P)
    before = ens.target_sd()
    chosen, gains, sds = [], [], []
    for _ in range(n):
        if not feas.any():
            break
        c, g = ens.step(feas.ok)
        chosen.append(c)
        gains.append(g)
        feas.take(c)
        sds.append(ens.target_sd())
    scale = "target_sd" if pr.raw.shape[1] == 1 else "target_sd_whitened"
    return np.asarray(chosen, int), np.asarray(gains), {"columns": {scale: sds}, "target_sd_before": before,
                                                        "target_sd_after": sds[-1] if sds else before}


def _top(pr, n, feas):
    g = pr.gains()
    chosen, gains = [], []
    for _ in range(n):
        if not feas.any():
            break
        c = _best(g, feas)
        chosen.append(c)
        gains.append(float(g[c]))
        feas.take(c)
    return np.asarray(chosen, int), np.asarray(gains), {}


def _fantasy(pr, n, feas, F, seed):
    rng = np.random.default_rng(seed)
    S = pr.n_draws
    membership = pr.kind == "membership"
    if membership:
        base = pr.omega / pr.omega.sum()
        flat = rng.choice(base.size, size=F, p=base.reshape(-1))
        truth_s, truth_k = np.unravel_index(flat, base.shape)
        W = np.repeat(base[None], F, axis=0)                   # (F, S, K)
    else:
        base = pr.draw_weights()
        truth_s = rng.choice(S, size=F, p=base)
        truth_k = None
        W = np.repeat(base[None], F, axis=0)                   # (F, S)
    chosen, gains, min_ess = [], [], float(S)
    for _ in range(n):
        if not feas.any():
            break
        g = pr.mean_gains(W)                                   # all candidates: one compiled shape
        best = _best(g, feas)
        chosen.append(best)
        gains.append(float(g[best]))
        feas.take(best)
        for f in range(F):
            if membership:
                p = pr.P[truth_s[f], best, truth_k[f]]
                y = rng.choice(p.size, p=p / p.sum())
                W[f] = W[f] * pr.P[:, best, :, y]
            else:
                p = pr.P[truth_s[f], best]
                y = rng.choice(p.size, p=p / p.sum())
                W[f] = W[f] * pr.P[:, best, y]
            W[f] = W[f] / W[f].sum()
            ws = W[f].reshape(S, -1).sum(1)
            min_ess = min(min_ess, float(1.0 / np.sum(ws ** 2)))
    return np.asarray(chosen, int), np.asarray(gains), {"min_ess": min_ess, "fantasies": F}


def expected_target_sd(fit, batch, target, *, user_covariates=None, features=None, max_draws: int = 1000,
                       seed: int = 0, new_user_draws: int = 8) -> pd.DataFrame:
    r"""Expected posterior SD of a continuous target after adding the judgements of ``batch`` (in
    its row order), by the linearised Gaussian (ensemble) update of :mod:`this module
    <bayespref.analyses.design.batch>`: for any batch (e.g. random pool rows, to compare with a
    designed one). Returns a DataFrame with ``n_judgements`` (0..len(batch)) and ``target_sd``.
    """
    pr = _score.problem(fit, batch, target, user_covariates=user_covariates, features=features,
                        max_draws=max_draws, seed=seed, new_user_draws=new_user_draws)
    if pr.kind != "continuous":
        raise ModelError(f"expected_target_sd needs a continuous target; {pr.target.label} is {pr.kind}.")
    T = pr.raw if pr.raw.shape[1] == 1 else pr.T
    ens = Ensemble(T, pr.P)
    sds = [ens.target_sd()]
    for c in range(pr.pool.size):
        ens.choose(c)
        sds.append(ens.target_sd())
    return pd.DataFrame({"n_judgements": np.arange(len(sds)), "target_sd": sds})
