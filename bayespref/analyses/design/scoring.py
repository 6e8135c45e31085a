r"""Score every candidate judgement by its expected information gain about a target.

:func:`score` is the entry point; :func:`problem` builds what it and the batch selection
(:mod:`~bayespref.analyses.design.batch`) share: the candidates' outcome probabilities under the
posterior draws and the target on the same draws, with the estimator that fits the target's kind
(:mod:`~bayespref.analyses.design.eig`).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from bayespref.analyses.design import candidates as _cand
from bayespref.analyses.design import eig as _eig
from bayespref.analyses.design import outcomes as _out
from bayespref.analyses.design import targets as _targets
from bayespref.analyses.design.onboarding import TypeState
from bayespref.errors import DataError, ModelError
from bayespref.validate import seed as check_seed

ESTIMATORS = {"parameters": "exact (all parameters, BALD)", "discrete": "exact (discrete target)",
              "membership": "exact (type membership)", "continuous": "gaussian (reweighted draws)"}


@dataclasses.dataclass
class Problem:
    """The candidates' outcome probabilities and the target on the same S draws.

    ``P``: (S, C, Y) outcome probabilities, or (S, C, K, Y) per type for a membership target;
    ``T``: (S, d) whitened target draws (continuous), (S, L) one-hot classes (discrete) or None;
    ``raw``: (S, d) target draws on their own scale (continuous); ``omega``: (S, K) (draw, type)
    weights (membership).
    """

    pool: _cand.Pool
    target: _targets.Target
    P: np.ndarray
    T: np.ndarray | None = None
    raw: np.ndarray | None = None
    omega: np.ndarray | None = None
    sd_after: np.ndarray | None = None

    @property
    def kind(self) -> str:
        return self.target.kind

    @property
    def n_draws(self) -> int:
        return int(self.P.shape[0])

    def outcome_probs(self) -> np.ndarray:
        """(S, C, Y) probabilities of the outcomes under each draw (types mixed with their weights)."""
        if self.kind == "membership":
            w = self.omega / self.omega.sum(1, keepdims=True)
            return np.einsum("sk,scky->scy", w, self.P)
        return self.P

    def draw_weights(self) -> np.ndarray:
        """The draws' weights (S,) (membership: the draws' share of the (draw, type) weights)."""
        if self.kind == "membership":
            return self.omega.sum(1)
        return np.full(self.n_draws, 1.0 / self.n_draws)

    def gains(self, w=None, rows=None) -> np.ndarray:
        """EIG (nats) of every candidate (or of ``rows``) under draw weights ``w`` (S,) (membership:
        (S, K) weights of (draw, type)); default the posterior's."""
        P = self.P if rows is None else self.P[:, rows]
        if self.kind == "membership":
            om = jnp.asarray(self.omega if w is None else w, dtype=jnp.float32)
            return _eig.score_chunks(_eig.eig_membership, P, om)
        w = jnp.asarray(self.draw_weights() if w is None else w, dtype=jnp.float32)
        if self.kind == "parameters":
            return _eig.score_chunks(_eig.eig_parameters, P, w)
        if self.kind == "discrete":
            return _eig.score_chunks(_eig.eig_discrete, P, jnp.asarray(self.T), w)
        if self.T.shape[1] == 1:  # a scalar: the expected SD afterwards comes from the same moments
            both = _eig.score_chunks(_eig.eig_gaussian_scalar, P, jnp.asarray(self.T), w)
            if rows is None and self.raw.shape[1] == 1:
                self.sd_after = both[1] * float(self.raw[:, 0].std() / max(float(self.T[:, 0].std()), 1e-300))
            return both[0]
        return _eig.score_chunks(_eig.eig_gaussian, P, jnp.asarray(self.T), w)

    def mean_gains(self, W, rows=None) -> np.ndarray:
        """EIG of every candidate (or of ``rows``) averaged over several weightings ``W`` (F, S) (membership:
        (F, S, K)): the gain given fantasised outcomes (:mod:`~bayespref.analyses.design.batch`)."""
        P = self.P if rows is None else self.P[:, rows]
        W = jnp.asarray(W, dtype=jnp.float32)
        if self.kind == "membership":
            return _eig.score_chunks(_mean_over(_eig.eig_membership, 1), P, W)
        if self.kind == "parameters":
            return _eig.score_chunks(_mean_over(_eig.eig_parameters, 1), P, W)
        fn = _eig.eig_discrete if self.kind == "discrete" else _eig.eig_gaussian
        return _eig.score_chunks(_mean_over(fn, 2), P, jnp.asarray(self.T), W)


_MEAN_OVER: dict = {}


def _mean_over(fn, n_args: int):
    """``fn(P, *args, w)`` averaged over the rows of a stack of weights ``w`` (jitted, cached)."""
    key = (fn, n_args)
    if key not in _MEAN_OVER:
        axes = (None,) * n_args + (0,)
        _MEAN_OVER[key] = jax.jit(lambda *a: jnp.mean(jax.vmap(fn, in_axes=axes)(*a), axis=0))
    return _MEAN_OVER[key]


def as_target(target) -> _targets.Target:
    if target is None:
        return _targets.parameters()
    if isinstance(target, str) and target in ("parameters", "all"):
        return _targets.parameters()
    if not isinstance(target, _targets.Target):
        raise ModelError(f"target={target!r}: pass a target from bayespref.design (parameters(), contrast(...), "
                         "top_k(...), membership(...), weight(...), amce(...), predictions(...), from_draws(...)).")
    return target


def problem(fit, candidates, target=None, *, user_covariates=None, features=None, max_draws: int = 1000,
            seed: int = 0, new_user_draws: int = 8) -> Problem:
    """Build the :class:`Problem` of a fit, a candidate pool and a target (checks all three first)."""
    if not (hasattr(fit, "idata") and hasattr(fit, "model") and hasattr(fit, "data")):
        raise ModelError(f"design needs a bayespref.Fit (from bayespref.fit or bayespref.load_fit), got "
                         f"{type(fit).__name__}.")
    check_seed(seed)
    if not isinstance(max_draws, (int, np.integer)) or max_draws < 2:
        raise ModelError(f"max_draws={max_draws!r} must be a whole number of at least 2.")
    target = as_target(target)
    target.check(fit)
    if target.kind == "membership":
        state = TypeState(fit, target.user, candidates, target.judgements,
                          target.user_covariates if user_covariates is None else user_covariates,
                          features=features, max_draws=max_draws)
        return Problem(state.pool, target, state.p, omega=state.omega)
    pool = _cand.prepare(fit, candidates, user_covariates, features=features)
    od = _out.outcome_draws(fit, pool, max_draws=max_draws, seed=seed, new_user_draws=new_user_draws)
    if target.kind == "parameters":
        return Problem(pool, target, od.p)
    values = target.values(fit, od)
    if target.kind == "discrete":
        labels = np.asarray(values).reshape(-1)
        onehot = (labels[:, None] == np.unique(labels)[None, :]).astype(np.float32)
        return Problem(pool, target, od.p, T=onehot)
    raw = np.asarray(values, dtype=np.float64).reshape(od.n_draws, -1)
    if not np.all(np.isfinite(raw)):
        raise ModelError(f"The target ({target.label}) is not finite on every posterior draw.")
    if np.all(raw.std(0) == 0):
        raise ModelError(f"The target ({target.label}) does not vary over the posterior draws: no judgement can "
                         "teach anything about it (is it fixed by the model?).")
    info = np.asarray(target.information_scale(raw), dtype=np.float64).reshape(od.n_draws, -1)
    return Problem(pool, target, od.p, T=_eig.whiten(info, getattr(target, "max_dims", 8)), raw=raw)


def score(fit, candidates, target=None, *, user_covariates=None, features=None, exclude_judged: bool = False,
          max_draws: int = 1000, seed: int = 0, new_user_draws: int = 8) -> pd.DataFrame:
    r"""Rank candidate judgements by their expected information gain about ``target``.

    Parameters
    ----------
    fit : Fit
    candidates : DataFrame
        The pool: one row per judgement that could be collected, in the training frame's columns
        (``a``, ``b``, features, optionally ``user`` / the user covariates / ``prompt``; see
        :mod:`~bayespref.analyses.design.candidates`).
    target : Target, optional
        What to learn about (:mod:`~bayespref.analyses.design.targets`); default every parameter.
    user_covariates : DataFrame, optional
        Covariates of users the fit has not seen, indexed by user id.
    features : DataFrame, optional
        Option table for options the fit has not seen (data that read features from a table).
    exclude_judged : bool
        Leave out candidates whose two options the data already hold, judged by the same user
        (by anyone, for new users).
    max_draws : int
        Use about this many posterior draws (each chain thinned evenly).
    seed : int
    new_user_draws : int
        Draws of a new user's deviation averaged per posterior draw
        (:mod:`~bayespref.analyses.design.outcomes`).

    Returns
    -------
    pandas.DataFrame
        The candidates (their index kept), best first, with ``eig`` (nats; exact for discrete
        targets and all parameters, the Gaussian estimator for continuous ones), ``rank`` (1 =
        most informative), ``p_a`` and ``p_a_sd`` (posterior mean and SD of P(a preferred)),
        ``entropy`` (of the predicted outcome: what uncertainty sampling maximises) and, for a
        scalar continuous target, ``target_sd_after`` (its expected posterior SD after the
        judgement; ``attrs["target_sd"]`` is the SD now). ``attrs`` also name the target, the
        estimator and the number of draws.

    Raises
    ------
    DataError
        Bad candidates (:func:`~bayespref.analyses.design.candidates.prepare`).
    ModelError
        A target the model cannot express.

    Examples
    --------
    >>> import bayespref as bp                                                       # doctest: +SKIP
    >>> ranked = bp.design.score(fit, pool, bp.design.contrast("group", "B", "A", effect="x0"))  # doctest: +SKIP
    >>> ranked.head()                                                                # doctest: +SKIP
    """
    pr = problem(fit, candidates, target, user_covariates=user_covariates, features=features,
                 max_draws=max_draws, seed=seed, new_user_draws=new_user_draws)
    return table(fit, pr, pr.gains(), exclude_judged=exclude_judged)


def table(fit, pr: Problem, gains: np.ndarray, *, exclude_judged: bool = False) -> pd.DataFrame:
    """The ranked table of :func:`score` for gains computed on a problem."""
    P = pr.outcome_probs()
    w = pr.draw_weights()
    pa = P[..., 0]
    mean = np.einsum("s,sc->c", w, pa)
    sd = np.sqrt(np.maximum(np.einsum("s,sc->c", w, pa ** 2) - mean ** 2, 0.0))
    pbar = np.einsum("s,scy->cy", w, P)
    ent = -np.sum(np.where(pbar > 0, pbar * np.log(np.maximum(pbar, 1e-30)), 0.0), -1)
    out = pr.pool.frame.copy()
    out.index = pr.pool.labels
    out["eig"] = gains
    out["p_a"] = mean
    out["p_a_sd"] = sd
    out["entropy"] = ent
    attrs = {"target": pr.target.label, "estimator": ESTIMATORS[pr.kind], "n_draws": pr.n_draws, "unit": "nats"}
    if pr.kind == "continuous" and pr.raw.shape[1] == 1:
        if pr.sd_after is None or type(pr.target).information_scale is not _targets.Target.information_scale:
            raw = jnp.asarray(pr.raw, dtype=jnp.float32)
            pr.sd_after = _eig.score_chunks(_eig.gaussian_sd_after, pr.P, raw, jnp.asarray(w, dtype=jnp.float32))
        out["target_sd_after"] = pr.sd_after
        attrs["target_sd"] = float(pr.raw[:, 0].std())
    if exclude_judged:
        seen = _cand.judged(fit, pr.pool)
        out = out[~seen]
        attrs["excluded_judged"] = int(seen.sum())
        if not len(out):
            raise DataError("Every candidate was judged already (exclude_judged=True); add new comparisons.")
    out = out.sort_values("eig", ascending=False, kind="stable")
    out["rank"] = np.arange(1, len(out) + 1)
    out.attrs = attrs
    return out
