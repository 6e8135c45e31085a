r"""The sequential design loop, for simulation: design -> judge (from a known truth) -> refit -> design.

:func:`sequential` runs, for every seed and every strategy, the loop

1. fit the model to the judgements so far (``initial`` plus those collected);
2. record the target's posterior SD and ``ci_prob`` interval width;
3. choose ``per_step`` judgements from what is left of the pool with the strategy:

   * ``"eig"`` -- the greedy batch of highest conditional EIG about the target
     (:func:`~bayespref.analyses.design.select`);
   * ``"uncertainty"`` -- uncertainty sampling: the candidates whose outcome the posterior
     predicts least surely (largest predictive entropy :math:`H(\bar P_c)`), whatever the target;
   * ``"random"`` -- uniformly at random;

4. draw their outcomes from ``truth`` (P(a preferred) of each row) and go to 1,

until ``steps`` batches are collected, the pool is used up, or the interval is narrower than
``stop_width``. Every strategy of a seed starts from the same initial judgements and sees the same
pool; the outcomes are drawn from the same stream per seed.

**Refits.** With NUTS each refit is warm-started from the previous step's fit (``init=``: its
draws start the chains and set the mass matrix) while the parameters keep their shapes (the same
options, users, features and covariates); a step that brings a new user or option starts afresh.
Refits stay cheap because the samplers are compiled once per data shape and the shapes (initial +
k * per_step judgements) are the same for every strategy and seed. For hierarchical models with user-varying
feature weights pass ``method="laplace"`` (about a second per refit at a few thousand judgements).
"""

from __future__ import annotations

import dataclasses
import time
import warnings

import numpy as np
import pandas as pd

from bayespref.analyses.design import batch as _batch
from bayespref.analyses.design import scoring as _score
from bayespref.analyses.design import targets as _targets
from bayespref.analyses.design.outcomes import OutcomeDraws
from bayespref.analyses.design.plots import plot_sequential
from bayespref.data.comparisons import Comparisons
from bayespref.errors import DataError, ModelError
from bayespref.inference.fit import fit as _fit_model
from bayespref.intervals import interval_bounds

STRATEGIES = ("eig", "uncertainty", "random")


@dataclasses.dataclass
class SequentialResult:
    """The history of :func:`sequential`: one row per (seed, strategy, step) with ``n_judgements``
    (added so far), ``sd``, ``width`` (of the ``ci_prob`` interval), ``mean``, ``fit_seconds``."""

    history: pd.DataFrame
    target: str
    ci_prob: float

    def judgements_to_reach(self, width: float) -> pd.DataFrame:
        """Judgements each (seed, strategy) needed before the interval width was at most ``width``
        (NaN when it never was): a table seed x strategy."""
        h = self.history
        reached = h[h["width"] <= width].groupby(["seed", "strategy"])["n_judgements"].min()
        runs = h.groupby(["seed", "strategy"]).size().index
        return reached.reindex(runs).unstack("strategy")

    def summary(self, width: float) -> pd.DataFrame:
        """Per strategy: mean and median judgements needed to reach ``width`` over seeds (runs that
        never reached it count at their last size plus one step, ``censored`` says how many), and the
        ratio to random selection."""
        need = self.judgements_to_reach(width)
        last = self.history.groupby(["seed", "strategy"])["n_judgements"].max().unstack("strategy")
        step = self.history.groupby(["seed", "strategy"])["n_judgements"].apply(
            lambda s: np.diff(np.sort(s.to_numpy())).max() if len(s) > 1 else 0).unstack("strategy")
        filled = need.fillna(last + step)
        out = pd.DataFrame({"mean": filled.mean(), "median": filled.median(), "censored": need.isna().sum(),
                            "seeds": need.shape[0]})
        if "random" in out.index:
            out["ratio_to_random"] = out["mean"] / out.loc["random", "mean"]
        out.attrs = {"width": width, "target": self.target, "ci_prob": self.ci_prob}
        return out

    def plot(self, width: float | None = None, measure: str = "width", ax=None):
        """Target uncertainty against the number of judgements per strategy (see
        :func:`~bayespref.analyses.design.plots.plot_sequential`)."""
        return plot_sequential(self, width=width, measure=measure, ax=ax)


def _target_draws(fit, target) -> np.ndarray:
    post = fit.idata.posterior
    od = OutcomeDraws(np.zeros((post.sizes["chain"] * post.sizes["draw"], 0, 2)), post["chain"].values,
                      post["draw"].values, post.sizes["chain"] * post.sizes["draw"], 0)
    v = np.asarray(target.values(fit, od), dtype=float)
    if v.ndim != 2 or v.shape[1] != 1:
        raise ModelError(f"sequential needs a scalar continuous target; {target.label} has {v.shape[1]} values.")
    return v[:, 0]


def sequential(model, initial: pd.DataFrame, pool: pd.DataFrame, truth, target, *, data_options: dict | None = None,
               strategies=STRATEGIES, per_step: int = 50, steps: int = 10, seeds=(0,), method: str = "nuts",
               fit_options: dict | None = None, select_options: dict | None = None, budget=None,
               budget_by: str = "user", ci_prob: float = 0.9, stop_width: float | None = None,
               max_draws: int = 1000, verbose: bool = False) -> SequentialResult:
    r"""Simulate the design loop for several strategies and seeds (module docstring).

    Parameters
    ----------
    model : ModelSpec
        The model refitted at every step.
    initial : DataFrame
        The judgements available at the start (long frame with outcomes).
    pool : DataFrame
        The candidate judgements (same columns, no outcome needed); each row is collected at most once.
    truth : callable
        ``truth(rows) -> array`` of P(a preferred) for pool rows: the simulated annotators.
    target : Target
        A scalar continuous target (:func:`~bayespref.analyses.design.contrast`, ``weight``, ``amce``).
    data_options : dict
        Arguments of :meth:`Comparisons.from_frame <bayespref.Comparisons.from_frame>` that build the
        data from the frame (``user=``, ``features=``, ``user_covariates=``, ...).
    strategies : sequence of {"eig", "uncertainty", "random"}
    per_step, steps : int
        Judgements per batch and number of batches.
    seeds : sequence of int
        One run of every strategy per seed (the seed drives the outcomes and random choices).
    method, fit_options : the refits' ``bayespref.fit(model, data, method=method, **fit_options)``.
    select_options : dict
        More arguments of :func:`~bayespref.analyses.design.select` for the EIG strategy.
    budget, budget_by : caps on the judgements collected per user / group over the whole run (all
        strategies), as in :func:`~bayespref.analyses.design.select`.
    stop_width : float, optional
        Stop a run once its interval is at most this wide.

    Returns
    -------
    SequentialResult
    """
    target = _score.as_target(target)
    if target.kind != "continuous":
        raise ModelError(f"sequential needs a continuous target (a contrast, weight or AMCE); got {target.label}.")
    bad = [s for s in strategies if s not in STRATEGIES]
    if bad:
        raise DataError(f"strategies {bad} are not known; use {STRATEGIES}.")
    if not isinstance(pool, pd.DataFrame) or not len(pool):
        raise DataError("sequential needs a non-empty candidate pool (a DataFrame).")
    pool = pool.reset_index(drop=True)
    data_options = dict(data_options or {})
    data_options.setdefault("check_connected", False)
    fit_options = {"progress": False, **(fit_options or {})}
    select_options = dict(select_options or {})
    rows = []
    for seed in seeds:
        for strategy in strategies:
            rng = np.random.default_rng([int(seed), 1])           # the same outcome stream for every strategy
            u = rng.random(len(pool))
            choice_rng = np.random.default_rng([int(seed), 2, STRATEGIES.index(strategy)])
            frame = initial.copy()
            used = np.zeros(len(pool), dtype=bool)
            taken: dict = {}
            fit = None
            for step in range(int(steps) + 1):
                t0 = time.perf_counter()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    data = Comparisons.from_frame(frame.reset_index(drop=True), **data_options)
                    # NUTS warm-started from the previous step's fit while the parameters keep their shapes
                    warm = (method == "nuts" and fit is not None and fit.sizes == fit.model.sizes(data)
                            and fit.data.options.equals(data.options) and fit.data.users.equals(data.users))
                    fit = _fit_model(model, data, method=method, seed=int(seed) + 1000 * step,
                                     **({"init": fit} if warm else {}), **fit_options)
                draws = _target_draws(fit, target)
                lo, hi = interval_bounds(draws, ci_prob)
                rows.append({"seed": seed, "strategy": strategy, "step": step,
                             "n_judgements": int(used.sum()), "sd": float(draws.std(ddof=1)),
                             "width": float(hi - lo), "mean": float(draws.mean()),
                             "fit_seconds": round(time.perf_counter() - t0, 3)})
                if verbose:
                    print(rows[-1], flush=True)
                if step == steps or (stop_width is not None and hi - lo <= stop_width) or used.all():
                    break
                left = np.flatnonzero(~used)
                pick = _choose(strategy, fit, pool.iloc[left], target, per_step, choice_rng, budget, budget_by,
                               taken, select_options, max_draws, seed)
                if not len(pick):  # the budgets are spent
                    break
                idx = left[pick]
                for unit in _units(fit, pool.iloc[idx], budget_by):
                    taken[unit] = taken.get(unit, 0) + 1
                used[idx] = True
                new = pool.iloc[idx].copy()
                outcome_col = data._spec.roles["outcome"]
                new[outcome_col] = (u[idx] < np.asarray(truth(new), dtype=float)).astype(float)
                frame = pd.concat([frame, new], ignore_index=True)
    return SequentialResult(pd.DataFrame(rows), target.label, ci_prob)


def _units(fit, rows, budget_by):
    if budget_by == "user":
        col = fit.data._spec.roles["user"]
        return rows[col].astype(str).tolist() if col in rows else ["__new"] * len(rows)
    if budget_by in rows:
        return rows[budget_by].astype(str).tolist()
    table = fit.data.user_table
    col = fit.data._spec.roles["user"]
    return table[budget_by].astype(str).reindex(rows[col].astype(str)).tolist()


def _remaining(budget, taken, units):
    """The budget left per unit (a dict) after the judgements already taken."""
    if budget is None:
        return None
    labels = set(units) | set(taken)
    caps = ({u: int(budget) for u in labels} if not isinstance(budget, dict)
            else {str(k): int(v) for k, v in budget.items()})
    return {u: max(0, c - taken.get(u, 0)) for u, c in caps.items()}


def _choose(strategy, fit, rows, target, n, rng, budget, budget_by, taken, select_options, max_draws, seed):
    """Positions (in ``rows``) of the judgements a strategy collects next."""
    units = np.asarray(_units(fit, rows, budget_by), dtype=str)
    left = _remaining(budget, taken, units)
    if not _batch.Feasible(len(rows), units, left or {}).any():
        return np.zeros(0, dtype=int)
    if strategy == "eig":
        chosen = _batch.select(fit, rows, target, n=n, budget=left, budget_by=budget_by, max_draws=max_draws,
                               seed=int(seed), **select_options)
        return rows.index.get_indexer(chosen.index)
    if strategy == "uncertainty":
        pr = _score.problem(fit, rows, _targets.parameters(), max_draws=max_draws, seed=int(seed))
        pbar = pr.P.mean(0)
        order = np.argsort(np.sum(pbar * np.log(np.maximum(pbar, 1e-30)), -1), kind="stable")  # entropy, largest first
    else:
        order = rng.permutation(len(rows))
    feas = _batch.Feasible(len(rows), units, left or {})
    out = []
    for c in order:
        if len(out) == n or not feas.any():
            break
        if feas.ok[c]:
            out.append(int(c))
            feas.take(int(c))
    return np.asarray(out, dtype=int)
