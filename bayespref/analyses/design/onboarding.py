r"""A user's latent type from their answers: the weights of (draw, type) behind the membership target.

For a user judged by a :class:`~bayespref.LatentTypes` fit with S posterior draws, the joint
posterior of a draw and the user's type given the user's answers :math:`A` so far is

.. math::

    \omega_{sk} \propto P(z = k \mid \theta_s, c_u) \prod_{(a, b, y) \in A} p(y \mid \theta_s, z = k, a, b),

(the draws' own weights are equal; a new user's answers reweight them a little as well, which is
Bayes' rule for the parameters too; a training user's training judgements, which the draws already
condition on, only weigh the types within each draw). The user's membership is :math:`P(z = k \mid A) = \sum_s \omega_{sk}`;
:func:`bayespref.Fit.few_shot` gives the same numbers for the same answers, draw by draw.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pandas as pd
from scipy.special import logsumexp

from bayespref.analyses.design import candidates as _cand
from bayespref.analyses.design import eig as _eig
from bayespref.analyses.design import outcomes as _out
from bayespref.errors import DataError


def with_user(fit, frame: pd.DataFrame | None, user) -> pd.DataFrame | None:
    """``frame`` with its user column set to ``user`` (a DataError if it names another user)."""
    if frame is None:
        return None
    col = _cand.roles(fit.data)["user"]
    frame = frame.copy()
    if col in frame.columns:
        other = frame[col].astype(str) != str(user)
        if other.any():
            raise DataError(f"The membership target is about user {user!r}, but rows "
                            f"{list(frame.index[other.to_numpy()][:5])} name other users; drop the user column "
                            "or give only this user's comparisons.")
    frame[col] = user
    return frame


class TypeState:
    """Per-type outcome probabilities of a candidate pool for one user, and the (draw, type) weights.

    Parameters
    ----------
    fit : Fit
        A fit of a family with latent types (``has_types``) and no user deviations.
    user : id
        A training user or a new user.
    candidates : DataFrame
        Comparisons the user could be asked (their user column, if any, must name this user).
    judgements : DataFrame, optional
        The user's answers so far (with outcomes).
    user_covariates : DataFrame, optional
        Covariates of a new user (indexed by user id).
    """

    def __init__(self, fit, user, candidates, judgements=None, user_covariates=None, *, features=None,
                 max_draws: int = 1000):
        _out.require_types(fit, "A membership target")
        self.fit, self.user, self.max_draws = fit, user, max_draws
        self.user_covariates = user_covariates
        self.pool = _cand.prepare(fit, with_user(fit, candidates, user), user_covariates, features=features)
        self.cov = self._covariate_row(self.pool.data)
        self.p, log_prior, self.draws = _out.type_draws(fit, self.pool.data, self.cov, max_draws=max_draws)
        self.log_omega = log_prior.copy()                 # (S, K), unnormalised
        known = fit.data.users.get_indexer([user])[0]
        if known >= 0:  # a training user: the draws already know their judgements; per draw, only z
            rows = np.flatnonzero(np.asarray(fit.data.user) == known)
            if rows.size:
                self._add(fit.data.subset(rows))
            self.log_omega = self.log_omega - logsumexp(self.log_omega, axis=1, keepdims=True)
        if judgements is not None and len(judgements):
            self.record(judgements)

    def _covariate_row(self, data) -> np.ndarray:
        names = list(data.covariate_names)
        cols = [names.index(c) for c in self.fit.model.covariate_names(self.fit.data)]
        return np.asarray(data.comparison_covariates, dtype=float)[0][cols]

    def _add(self, data) -> None:
        y = np.asarray(data.y)
        if np.any(y < 0):
            raise DataError("The user's judgements need outcomes (an outcome column: 1 = a preferred, 0 = b, 0.5 = tie).")
        p, _, _ = _out.type_draws(self.fit, data, self.cov, max_draws=self.max_draws)   # (S, H, K, Y)
        pos = np.array([_out.OUTCOME_CODES.index(int(c)) for c in y])
        if np.any(pos >= p.shape[-1]):
            raise DataError("The user's judgements hold ties, but the model has no tie outcome.")
        lp = np.log(np.maximum(np.take_along_axis(p, pos[None, :, None, None], axis=-1)[..., 0], 1e-30))  # (S, H, K)
        self.log_omega = self.log_omega + lp.sum(1)

    def record(self, judgements: pd.DataFrame) -> None:
        """Add the user's answers (training frame's columns with outcomes)."""
        frame = with_user(self.fit, judgements, self.user)
        try:
            enc = self.fit.data.encode(frame, user_covariates=self.user_covariates)
        except DataError as exc:
            raise DataError(f"judgements: {exc}") from None
        self._add(enc)

    @property
    def omega(self) -> np.ndarray:
        """Joint weights of (draw, type), summing to 1: (S, K)."""
        lw = self.log_omega - logsumexp(self.log_omega)
        return np.exp(lw)

    def membership(self) -> pd.Series:
        """P(type = k | answers), indexed by type."""
        return pd.Series(self.omega.sum(0), index=pd.Index(range(self.omega.shape[1]), name="type"),
                         name="membership")


class Onboarding:
    r"""Few-shot onboarding of a new annotator: which comparison to ask next to learn their type.

    Holds the new user's state (:class:`TypeState`) for a pool of comparisons they could be asked
    (default: every pair of the fit's options, in both orders once): :meth:`next` ranks the pool by
    the EIG about the user's type given the answers so far (exact given the draws,
    :func:`~bayespref.analyses.design.eig.eig_membership`), :meth:`record` adds an answer and
    :meth:`membership` gives :math:`P(z = k \mid \text{answers})`. Nothing is refitted; the fit's
    draws are reweighted by the answers (as :meth:`Fit.few_shot <bayespref.Fit.few_shot>` does).

    Parameters
    ----------
    fit : Fit
        A fit with latent types (``LatentTypes`` without user deviations).
    candidates : DataFrame, optional
        Comparisons the user could be asked (training frame's columns, no user needed).
    user : id
        The new user's id (default ``"__onboard"``); a training user's id continues from their
        training judgements.
    user_covariates : DataFrame, optional
        The new user's covariates (indexed by user id), when the membership model uses covariates.
    max_draws : int

    Examples
    --------
    >>> ob = bp.design.Onboarding(fit)                    # doctest: +SKIP
    >>> q = ob.next()                                     # the most informative pair   # doctest: +SKIP
    >>> ob.record(q["a"].iloc[0], q["b"].iloc[0], 1)      # the user preferred a       # doctest: +SKIP
    >>> ob.membership()                                   # doctest: +SKIP
    """

    def __init__(self, fit, candidates: pd.DataFrame | None = None, *, user="__onboard", user_covariates=None,
                 features=None, max_draws: int = 1000):
        if candidates is None:
            candidates = all_pairs(fit)
        self.fit, self.user = fit, user
        self.state = TypeState(fit, user, candidates, None, user_covariates, features=features, max_draws=max_draws)
        self.asked = np.zeros(self.state.pool.size, dtype=bool)
        self.answers: list = []

    @property
    def pool(self) -> pd.DataFrame:
        return self.state.pool.frame

    def scores(self) -> np.ndarray:
        """EIG (nats) about the user's type of every comparison of the pool, given the answers so far."""
        return _eig.score_chunks(_eig.eig_membership, self.state.p, jnp.asarray(self.state.omega, dtype=jnp.float32))

    def next(self, n: int = 1, exclude_asked: bool = True) -> pd.DataFrame:
        """The ``n`` comparisons of highest EIG (not asked yet, unless ``exclude_asked=False``), with
        ``eig`` and the predicted ``p_a`` for this user."""
        g = self.scores()
        if exclude_asked:
            g = np.where(self.asked, -np.inf, g)
        if not np.isfinite(g).any():
            raise DataError("Every comparison of the pool has been asked; pass more candidates.")
        order = np.argsort(-g, kind="stable")[: int(n)]
        order = order[np.isfinite(g[order])]
        out = self.pool.iloc[order].copy()
        out["eig"] = g[order]
        om = self.state.omega
        out["p_a"] = np.einsum("sk,sck->c", om, self.state.p[:, order][..., 0])
        out.index = self.state.pool.labels[order]
        return out

    def record(self, a, b=None, outcome=None) -> "Onboarding":
        """Add an answer: ``record(a, b, outcome)`` (outcome 1: a preferred, 0: b, 0.5: tie) or
        ``record(frame)`` (rows in the training frame's columns with outcomes)."""
        if isinstance(a, pd.DataFrame):
            self.state.record(a)
            self.answers.extend(a.to_dict("records"))
            return self
        r = _cand.roles(self.fit.data)
        frame = self.pool
        hit = np.flatnonzero((frame[r["a"]].astype(str) == str(a)).to_numpy()
                             & (frame[r["b"]].astype(str) == str(b)).to_numpy())
        value = float(outcome)
        if value not in _out.OUTCOME_VALUES:
            raise DataError(f"outcome={outcome!r}: use 1 (a preferred), 0 (b preferred) or 0.5 (tie).")
        pos = _out.OUTCOME_VALUES.index(value)
        if hit.size and pos < self.state.p.shape[-1]:
            c = int(hit[0])
            self.state.log_omega = self.state.log_omega + np.log(np.maximum(self.state.p[:, c, :, pos], 1e-30))
            self.asked[c] = True
        else:
            self.state.record(pd.DataFrame({r["a"]: [a], r["b"]: [b], r["outcome"]: [value]}))
        self.answers.append({r["a"]: a, r["b"]: b, r["outcome"]: value})
        return self

    def membership(self) -> pd.Series:
        """P(type = k | answers so far)."""
        return self.state.membership()


def all_pairs(fit) -> pd.DataFrame:
    """Every unordered pair of the fit's options once (a listed before b in the options' order)."""
    r = _cand.roles(fit.data)
    opts = list(fit.data.options)
    i, j = np.triu_indices(len(opts), k=1)
    return pd.DataFrame({r["a"]: np.asarray(opts, dtype=object)[i], r["b"]: np.asarray(opts, dtype=object)[j]})
