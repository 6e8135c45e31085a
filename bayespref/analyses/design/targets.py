r"""What the next judgements should teach: the targets of the design.

A target is a function :math:`T(\theta)` of the model's parameters, evaluated on every posterior
draw. Each constructor returns a small declarative object; it is checked against a fit (a
:class:`~bayespref.ModelError` names what the model cannot express, and the fix) and evaluated on
the same draws as the candidates' outcome probabilities.

==========================  ==========  =====================================================================
constructor                 kind        :math:`T(\theta)`
==========================  ==========  =====================================================================
:func:`parameters`          all         every parameter (EIG = "BALD", the default)
:func:`contrast`            continuous  a group contrast: the difference of two groups' effect on one option
                                        or feature (as :func:`bayespref.heterogeneity.contrast`)
:func:`top_k`               discrete    the (ordered) set of the k options with the highest utility
:func:`membership`          type        one user's latent type (few-shot onboarding of an annotator)
:func:`weight`              continuous  a feature's weight (population level)
:func:`amce`                continuous  the AMCE of a feature (paper eq. 6)
:func:`predictions`         continuous  P(a preferred) for a named test set (a vector)
:func:`from_draws`          either      any estimand given as draws (chain, draw, ...) of this fit
==========================  ==========  =====================================================================

Which fits can express which target is asked of the model spec (``group_effect_methods``,
``has_types``, ``effect_blocks``, ``uses_worths``, ``feature_names``), never of its family name.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import xarray as xr

from bayespref.analyses.design import candidates as _cand
from bayespref.analyses.design import outcomes as _out
from bayespref.data.features import option_feature_matrix
from bayespref.errors import DataError, ModelError
from bayespref.models import sites

SAMPLE = ("chain", "draw")


class Target:
    """Base class: ``kind`` is "parameters", "continuous", "discrete" or "membership"."""

    kind: ClassVar[str] = "parameters"

    @property
    def label(self) -> str:
        return "all parameters"

    def check(self, fit) -> None:
        """Raise a ModelError / DataError when the fit cannot express the target."""

    def values(self, fit, od: _out.OutcomeDraws) -> np.ndarray:
        """The target on the draws of ``od``: (S, d) floats (continuous) or (S,) ints (discrete)."""
        raise NotImplementedError

    def information_scale(self, values: np.ndarray) -> np.ndarray:
        """The target on the scale its information is estimated on (continuous targets): a one-to-one
        map of each value, which leaves the mutual information unchanged but can bring the draws
        closer to the Gaussian the cheap estimator assumes. Default: the values themselves."""
        return values


@dataclasses.dataclass(frozen=True)
class Parameters(Target):
    """All parameters of the model (the EIG about every parameter, BALD)."""

    kind: ClassVar[str] = "parameters"


def parameters() -> Parameters:
    """Target every parameter: the EIG is :math:`H(\\bar P_c) - \\frac1S\\sum_s H(P_{sc})`."""
    return Parameters()


# -- helpers ----------------------------------------------------------------------------------------------
def _posterior(fit):
    return fit.idata.posterior


def _block_of(fit, effect) -> tuple[str, int, list]:
    """(block, index, labels) of an effect named by a feature name or an option label."""
    feats = [str(f) for f in fit.model.feature_names(fit.data)]
    opts = [str(o) for o in fit.data.options]
    if str(effect) in feats:
        return sites.WEIGHT, feats.index(str(effect)), feats
    if str(effect) in opts:
        return sites.WORTH, opts.index(str(effect)), opts
    raise DataError(f"effect={effect!r} is neither a feature of the model ({feats or 'none'}) nor an option "
                    f"({opts[:10]}{' ...' if len(opts) > 10 else ''}).")


def _cbar(fit) -> np.ndarray | None:
    """Mean covariate row (the model's covariates) over the training users with judgements."""
    post = _posterior(fit)
    if "covariate" not in post.coords or not post.sizes.get("covariate", 0):
        return None
    names = list(fit.data.covariate_names)
    cols = [names.index(str(c)) for c in post["covariate"].values]
    users = np.unique(np.asarray(fit.data.user))
    users = users[users >= 0]
    return np.asarray(fit.data.covariates, dtype=float)[users][:, cols].mean(0)


def population(fit, block: str) -> xr.DataArray:
    """Population-level effects of a block: the pooled site plus, with group effects, the average
    training user's covariate shift (as :meth:`Fit.worths <bayespref.Fit.worths>` does)."""
    post = _posterior(fit)
    v = post[block]
    if sites.group(block) in post:
        cbar = _cbar(fit)
        if cbar is not None:
            c = xr.DataArray(cbar, dims="covariate", coords={"covariate": post["covariate"].values})
            v = v + (c * post[sites.group(block)]).sum("covariate")
    return v


def _pick_type(da: xr.DataArray, type_, what: str) -> xr.DataArray:
    if "type" in da.dims:
        if type_ is None:
            raise ModelError(f"{what}: the model has one value per latent type; pass type=k "
                             f"(0..{da.sizes['type'] - 1}).")
        if type_ not in list(da["type"].values):
            raise DataError(f"{what}: type={type_!r} is not a type of the model ({list(da['type'].values)}).")
        return da.sel(type=type_)
    if type_ is not None:
        raise ModelError(f"{what}: type={type_!r} given, but the model has no latent types.")
    return da


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), 1e-9, 1 - 1e-9)
    return np.log(p) - np.log1p(-p)


def _flat(fit, od, da: xr.DataArray) -> np.ndarray:
    v = od.select(da)
    return np.asarray(v, dtype=np.float64).reshape(v.shape[0], -1)


# -- group contrast ---------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Contrast(Target):
    """Difference between two groups (levels of a user covariate) in one effect."""

    by: str
    first: Any
    second: Any
    effect: Any
    method: str = "auto"
    kind: ClassVar[str] = "continuous"

    @property
    def label(self) -> str:
        return f"{self.effect} in {self.by}={self.first} minus {self.by}={self.second}"

    def _method(self, fit) -> str:
        offered = tuple(fit.model.group_effect_methods)
        if not offered:
            raise ModelError(
                f"A group contrast needs a model whose users differ by group; this fit is {fit.model.family}, "
                "which has no user-level or group effects. Fit bayespref.Hierarchical(covariates=[...]) or "
                "bayespref.LatentTypes(n_types=K), or target a weight or the ranking instead.")
        if self.method not in ("auto", "design", "users"):
            raise ModelError(f"contrast(method={self.method!r}): use 'auto', 'design' or 'users'.")
        method = offered[0] if self.method == "auto" else self.method
        if method not in offered:
            raise ModelError(f"contrast(method={method!r}) is not offered by {fit.model.family} "
                             f"(its methods: {list(offered)}).")
        return method

    def _levels(self, fit):
        table = fit.data.user_table
        if table is None or self.by not in table.columns:
            raise DataError(f"contrast: by={self.by!r} is not a user covariate of the data (covariates: "
                            f"{[] if table is None else [str(c) for c in table.columns]}).")
        design = dict(fit.data._spec.design)
        levels = design.get(self.by)
        if levels is not None:
            names = [str(v) for v in levels]
            bad = [v for v in (self.first, self.second) if str(v) not in names]
            if bad:
                raise DataError(f"contrast: {bad} are not levels of {self.by!r}; its levels: {names}.")
        return levels

    def check(self, fit) -> None:
        method = self._method(fit)
        self._levels(fit)
        block, _, _ = _block_of(fit, self.effect)
        post = _posterior(fit)
        if method == "design":
            model_cov = [str(c) for c in post["covariate"].values] if "covariate" in post.coords else []
            present = [c for c in model_cov if c == self.by or c.startswith(f"{self.by}[")]
            if sites.group(block) not in post or not present:
                raise ModelError(
                    f"contrast: the {fit.model.family} model has no group effect of {self.by!r} on {block} "
                    f"(its covariates: {model_cov or 'none'}); refit with covariates including {self.by!r} and "
                    f"{block}s that vary by user, or use method='users'.")
        elif block not in post and not fit.model.has_types:
            raise ModelError(f"contrast: the model has no {block}s.")

    def values(self, fit, od) -> np.ndarray:
        self.check(fit)
        method = self._method(fit)
        block, idx, _ = _block_of(fit, self.effect)
        dim = sites.block_dim(block)
        post = _posterior(fit)
        if method == "design":
            levels = self._levels(fit)
            cov = [str(c) for c in post["covariate"].values]
            delta = np.zeros(len(cov))
            if levels is None:  # numeric covariate: per unit of the covariate
                delta[cov.index(self.by)] = float(self.first) - float(self.second)
            else:
                for level, sign in ((self.first, 1.0), (self.second, -1.0)):
                    col = f"{self.by}[{level}]"
                    if col in cov:
                        delta[cov.index(col)] += sign
            B = post[sites.group(block)]
            diff = (xr.DataArray(delta, dims="covariate", coords={"covariate": post["covariate"].values})
                    * B).sum("covariate")
        else:
            diff = self._users(fit, block)
        diff = diff.transpose(*SAMPLE, dim)
        v = _flat(fit, od, diff)
        if block == sites.WORTH:
            v = v - v.mean(1, keepdims=True)
        return v[:, [idx]]

    def _users(self, fit, block) -> xr.DataArray:
        """Group means of the users' effects (method='users'), as differences first minus second."""
        table = fit.data.user_table
        users = np.unique(np.asarray(fit.data.user))
        users = users[users >= 0]
        raw = table[self.by].to_numpy()[users]
        members = [users[np.asarray([str(x) == str(level) for x in raw])] for level in (self.first, self.second)]
        empty = [lv for lv, m in zip((self.first, self.second), members) if m.size == 0]
        if empty:
            raise DataError(f"contrast: no training users have {self.by} in {empty}.")
        post = _posterior(fit)
        dim = sites.block_dim(block)
        if fit.model.has_types:
            m = fit.membership(draws=True)  # (chain, draw, user, type)
            mv = np.asarray(m.transpose(*SAMPLE, "user", "type").values)
            mbar = [mv[:, :, g].mean(2) for g in members]   # (C, D, K)
            vk = post[block].transpose(*SAMPLE, "type", dim)
            dm = xr.DataArray(mbar[0] - mbar[1], dims=(*SAMPLE, "type"),
                              coords={"chain": post["chain"].values, "draw": post["draw"].values,
                                      "type": vk["type"].values})
            return (dm * vk).sum("type")
        site = fit.model.user_effect_sites(fit.sizes).get(block)
        if site is None or site not in post:
            raise ModelError(f"contrast(method='users'): the model records no user-level {block}s.")
        u = post[site].transpose(*SAMPLE, "user", dim)
        return u.isel(user=members[0]).mean("user") - u.isel(user=members[1]).mean("user")


def contrast(by: str, first, second, effect, method: str = "auto") -> Contrast:
    r"""Target a group contrast: effect ``effect`` (a feature's weight or an option's worth) in group
    ``by = first`` minus group ``by = second``.

    With group effects (``Hierarchical(covariates=[by])``, ``method="design"``) it is
    :math:`(c_{first} - c_{second})^\top B_{\cdot e}`; with ``method="users"`` (``LatentTypes``:
    the only method) the difference of the two groups' average user effects (membership-weighted
    type effects). Worths are centred over the options first, as in
    :func:`bayespref.heterogeneity.group_effects`.

    Examples
    --------
    >>> t = contrast("group", "B", "A", effect="x0")
    >>> t.kind, t.label
    ('continuous', 'x0 in group=B minus group=A')
    """
    return Contrast(by, first, second, effect, method)


# -- ranking ------------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class TopK(Target):
    """The k options of highest population utility, ordered or as a set."""

    k: int = 3
    ordered: bool = True
    type: Any = None
    min_share: float = 0.01
    kind: ClassVar[str] = "discrete"

    @property
    def label(self) -> str:
        return f"{'ordered ' if self.ordered else ''}top {self.k} options"

    def utilities(self, fit) -> xr.DataArray:
        """Population utilities of the options per draw (chain, draw, option)."""
        post = _posterior(fit)
        util = None
        if sites.WORTH in post:
            util = _pick_type(population(fit, sites.WORTH), self.type, "top_k")
        feats = list(fit.model.feature_names(fit.data))
        if sites.WEIGHT in post and feats:
            X = option_feature_matrix(fit.data, feats)
            if X is None:
                if util is None:
                    raise ModelError("top_k: the options' features vary between comparisons (features of "
                                     "prompt-response pairs), so options have no fixed utility to rank.")
            else:
                w = _pick_type(population(fit, sites.WEIGHT), self.type, "top_k")
                xu = xr.DataArray(X, dims=("option", "feature"),
                                  coords={"option": fit.model.coords(fit.data)["option"],
                                          "feature": w["feature"].values})
                fu = (xu * w).sum("feature")
                util = fu if util is None else util + fu
        if util is None:
            raise ModelError("top_k: the model has neither option worths nor per-option features to rank the "
                             "options by.")
        return util.transpose(*SAMPLE, "option")

    def check(self, fit) -> None:
        n = fit.data.n_options
        if not isinstance(self.k, (int, np.integer)) or not 1 <= self.k < n:
            raise DataError(f"top_k: k={self.k!r} must be a whole number from 1 to {n - 1} (the fit has {n} options).")
        self.utilities(fit)

    def values(self, fit, od) -> np.ndarray:
        self.check(fit)
        u = od.select(self.utilities(fit))                    # (S, options)
        top = np.argsort(-u, axis=1, kind="stable")[:, : self.k]
        if not self.ordered:
            top = np.sort(top, axis=1)
        _, labels = np.unique(top, axis=0, return_inverse=True)
        labels = labels.reshape(-1)
        counts = np.bincount(labels)
        rare = counts < self.min_share * labels.size           # rare rankings pooled into one class
        if rare.sum() > 1:
            labels = np.where(rare[labels], -1, labels)
            _, labels = np.unique(labels, return_inverse=True)
        return labels.reshape(-1).astype(np.int64)


def top_k(k: int = 3, ordered: bool = True, type=None, min_share: float = 0.01) -> TopK:
    r"""Target the ranking of the top ``k`` options by population utility (worths plus features).

    The target is discrete, so its EIG is exact given the draws; rankings seen in fewer than
    ``min_share`` of the draws are pooled into one class (which keeps the plug-in estimate from
    treating draw-to-draw noise as information). ``ordered=False``: the set, not its order.
    ``type``: the type whose ranking (``LatentTypes``).
    """
    return TopK(k, ordered, type, min_share)


# -- feature weight ----------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Weight(Target):
    """A feature's weight (population level, or with covariates at zero, or of one type)."""

    feature: str
    level: str = "population"
    type: Any = None
    kind: ClassVar[str] = "continuous"

    @property
    def label(self) -> str:
        return f"weight of {self.feature}"

    def check(self, fit) -> None:
        feats = [str(f) for f in fit.model.feature_names(fit.data)]
        if str(self.feature) not in feats:
            raise ModelError(f"weight({self.feature!r}): the model has no weight for {self.feature!r} (its features: "
                             f"{feats or 'none'}); fit a model with that option feature.")
        if self.level not in ("population", "baseline"):
            raise ModelError(f"weight(level={self.level!r}): use 'population' or 'baseline'.")
        if sites.WEIGHT not in _posterior(fit):
            raise ModelError("weight: the posterior has no feature weights.")

    def values(self, fit, od) -> np.ndarray:
        self.check(fit)
        post = _posterior(fit)
        w = population(fit, sites.WEIGHT) if self.level == "population" else post[sites.WEIGHT]
        w = _pick_type(w, self.type, "weight").sel(feature=str(self.feature))
        return _flat(fit, od, w.transpose(*SAMPLE))


def weight(feature: str, level: str = "population", type=None) -> Weight:
    r"""Target a feature's weight: ``level="population"`` the average training user's weight
    :math:`\mu + B^\top \bar c` (models with group effects), ``"baseline"`` :math:`\mu`;
    ``type=k`` the weight of type k (``LatentTypes``)."""
    return Weight(feature, level, type)


# -- AMCE ---------------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Amce(Target):
    """The average marginal component effect of a feature."""

    feature: str
    levels: tuple = (1.0, 0.0)
    max_profiles: int = 256
    judge: Any = None
    seed: int = 0
    kind: ClassVar[str] = "continuous"

    @property
    def label(self) -> str:
        return f"AMCE of {self.feature} ({self.levels[0]} vs {self.levels[1]})"

    def check(self, fit) -> None:
        if fit.model.uses_worths(fit.data):
            raise ModelError("amce: the model estimates a worth per option, so profiles of new options cannot be "
                             "predicted; fit a features-only model (worths=False), or target weight(...) instead.")
        Weight(self.feature).check(fit)

    def values(self, fit, od) -> np.ndarray:
        self.check(fit)
        prof = _cand.option_profiles(fit)
        if len(prof) > self.max_profiles:
            prof = prof.sample(self.max_profiles, random_state=self.seed).reset_index(drop=True)
        hi = prof.assign(**{self.feature: float(self.levels[0])})
        lo = prof.assign(**{self.feature: float(self.levels[1])})
        extra, cov = judge_rows(fit, self.judge, 2 * len(prof))
        fa, fb = pd.concat([hi, lo], ignore_index=True), pd.concat([lo, hi], ignore_index=True)
        frame, table = _cand.profile_comparisons(fit, fa, fb, prefix="__amce", extra=extra)
        pool = _cand.prepare(fit, frame, cov, features=table, what="amce profiles")
        p = _out.outcome_draws(fit, pool, max_draws=od.max_draws, seed=od.seed).p[..., 0]   # (S, 2n)
        n = len(prof)
        amce = 0.5 * (p[:, :n] + 1.0 - p[:, n:])              # both orders: a position effect cancels
        return amce.mean(1, keepdims=True)

    def information_scale(self, values):
        """The AMCE's log-odds (a probability: its draws are closer to Gaussian on that scale)."""
        return _logit(values)


def judge_rows(fit, judge, n):
    """User column and covariates for a new judge of the population or a group (dict of covariates)."""
    r = _cand.roles(fit.data)
    if r["user"] is None:
        return {}, None
    if judge is None:
        return {r["user"]: _cand.NEW_USER}, None
    if not isinstance(judge, dict):
        raise DataError(f"judge={judge!r} must be a dict of the judge's user covariates, e.g. {{'group': 'A'}}.")
    table = fit.data.user_table
    cov = pd.DataFrame([judge], index=pd.Index(["__judge"], name=None if table is None else table.index.name))
    return {r["user"]: "__judge"}, cov


def amce(feature: str, levels=(1.0, 0.0), *, max_profiles: int = 256, judge: dict | None = None,
         seed: int = 0) -> Amce:
    r"""Target the AMCE of ``feature`` (paper eq. 6): the probability that a response with the
    feature at ``levels[0]`` is preferred to one at ``levels[1]`` that agrees with it on every other
    feature, averaged over the observed option profiles (at most ``max_profiles``) and both orders.
    ``judge``: covariates of the (new) judge, e.g. ``{"group": "A"}``; default a new user of the
    population. Features-only models (new options are described by their features)."""
    return Amce(feature, tuple(levels), max_profiles, judge, seed)


# -- predictions for a test set ----------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True, eq=False)
class Predictions(Target):
    """P(a preferred) for the comparisons of a named test set (a vector target)."""

    test: pd.DataFrame
    user_covariates: Any = None
    name: str = "test set"
    max_dims: int = 8
    kind: ClassVar[str] = "continuous"

    @property
    def label(self) -> str:
        return f"predictions for the {self.name} ({len(self.test)} comparisons)"

    def check(self, fit) -> None:
        _cand.prepare(fit, self.test, self.user_covariates, what=f"the {self.name}")

    def values(self, fit, od) -> np.ndarray:
        pool = _cand.prepare(fit, self.test, self.user_covariates, what=f"the {self.name}")
        return _out.outcome_draws(fit, pool, max_draws=od.max_draws, seed=od.seed).p[..., 0]

    def information_scale(self, values):
        """The predictions' log-odds: for Bradley-Terry models linear in the parameters, so the
        Gaussian estimator fits them far better than the bounded probabilities."""
        return _logit(values)


def predictions(test: pd.DataFrame, user_covariates=None, name: str = "test set", max_dims: int = 8) -> Predictions:
    r"""Target the predictions P(a preferred) of the comparisons in ``test`` (training frame's
    layout). Their information is estimated on the log-odds scale (the same mutual information),
    projected on at most ``max_dims`` principal components for the Gaussian estimator
    (:mod:`~bayespref.analyses.design.eig`)."""
    return Predictions(test, user_covariates, name, max_dims)


# -- any estimand as draws ---------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True, eq=False)
class FromDraws(Target):
    """An estimand given as draws of this fit (chain, draw, ...)."""

    draws: xr.DataArray
    name: str = "estimand"

    @property
    def kind(self) -> str:  # type: ignore[override]
        return "discrete" if self.draws.dtype.kind in "biuUSO" else "continuous"

    @property
    def label(self) -> str:
        return self.name

    def check(self, fit) -> None:
        if not isinstance(self.draws, xr.DataArray) or not set(SAMPLE) <= set(self.draws.dims):
            raise DataError("from_draws needs an xarray.DataArray with dims chain and draw (draws of the fit's "
                            "posterior, e.g. heterogeneity.contrast(...)['weight']).")
        post = _posterior(fit)
        for d in SAMPLE:
            if not np.isin(post[d].values, self.draws[d].values).all():
                raise DataError(f"from_draws: the draws' {d} coordinates are not those of the fit's posterior; "
                                "compute the estimand from this fit.")

    def values(self, fit, od) -> np.ndarray:
        self.check(fit)
        v = od.select(self.draws.transpose(*SAMPLE, ...))
        if self.kind == "discrete":
            _, labels = np.unique(v.reshape(v.shape[0], -1), axis=0, return_inverse=True)
            return labels.reshape(-1).astype(np.int64)
        return np.asarray(v, dtype=np.float64).reshape(v.shape[0], -1)


def from_draws(draws: xr.DataArray, name: str = "estimand") -> FromDraws:
    """Target any estimand computed from this fit, given as draws (chain, draw, ...): continuous
    for float draws, discrete (class labels) for integer, boolean or string draws.

    Examples
    --------
    >>> # from bayespref import heterogeneity as het
    >>> # t = from_draws(het.contrast(het.group_effects(fit, "group"), "B", "A")["weight"].sel(feature="x0"))
    """
    return FromDraws(draws, name)


# -- membership ----------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True, eq=False)
class Membership(Target):
    """One user's latent type."""

    user: Any
    judgements: pd.DataFrame | None = None
    user_covariates: Any = None
    kind: ClassVar[str] = "membership"

    @property
    def label(self) -> str:
        return f"latent type of user {self.user}"

    def check(self, fit) -> None:
        _out.require_types(fit, "membership")
        if _cand.roles(fit.data)["user"] is None:
            raise ModelError("membership: the fit's data have no user column.")


def membership(user, judgements: pd.DataFrame | None = None, user_covariates=None) -> Membership:
    r"""Target the latent type of ``user`` (a training user, or a new annotator being onboarded).

    ``judgements``: the user's answers so far (training frame's columns, with outcomes; for a
    training user they add to the training judgements); ``user_covariates``: a table indexed by
    user id with the covariates of a new user, when the membership model uses covariates. The
    candidates are taken as judged by this user. See also :class:`~bayespref.analyses.design.Onboarding`.
    """
    return Membership(user, judgements, user_covariates)
