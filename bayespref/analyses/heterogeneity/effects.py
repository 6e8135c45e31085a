r"""Heterogeneity: how preferences differ between groups of users, with posterior uncertainty.

Every function here takes a :class:`~bayespref.Fit` (``Hierarchical`` or ``LatentTypes``) or the
labelled result of another function of this module, and returns labelled ``xarray`` draws
(dims ``chain``, ``draw`` first) or tidy ``pandas`` tables; :mod:`bayespref.plots` draws them.
Which fits apply is asked of the model spec, not its family name: ``group_effect_methods``
(``"design"``, ``"users"``; see :class:`~bayespref.models.base.ModelSpec`), ``has_types``,
``effect_blocks`` and ``user_effect_sites``. What is said below of ``Hierarchical`` holds for any
family that declares ``"design"``, and of ``LatentTypes`` for any family with ``has_types``.

Groups
------
A *group* is a level of a user covariate ``by``, named by its raw column (``"gender"``, not the
design column ``"gender[male]"``):

* a categorical covariate (strings, booleans, categories): its levels, all or those in ``levels=``;
* a numeric covariate: there are no natural levels, so pass either ``levels=`` (values, e.g.
  ``levels=[25, 60]``) or ``bins=`` (edges, e.g. ``bins=[0, 52, 100]``, intervals closed on the
  right, the first also on the left).

The users of a group are the training users (those with at least one comparison in ``fit.data``)
whose covariate has that level (for numeric ``levels=``, exactly that value; for ``bins=``, a value in
the bin). ``n_users`` (a coordinate on ``group``) counts them; it weights the pooled preference.

What a group's preference is
----------------------------
Write :math:`v` for the effects that vary by user (option worths :math:`\theta` and/or feature
weights :math:`w`) and :math:`r(i) = \theta_i + x_i^\top w` for the reward (utility) of option i.

* ``Hierarchical``, ``method="design"`` (default): the group level is the model's group-level
  mean :math:`v_g = \mu + B^\top c_g`, where :math:`c_g` is the design row of the level with every
  *other* covariate at its average over the training users (for a categorical covariate, the share
  of users in each of its levels). For a numeric covariate, the column is set to the value of
  ``levels=`` or to the mean of the covariate over the users in each bin of ``bins=``. The user
  random effect :math:`\eta_u` has mean 0 and is left out: this is the preference of a typical
  (new) user of the group. The covariate must be one of the model's covariates.
* ``Hierarchical``, ``method="users"``: the average of the posterior user-level effects
  :math:`v_u` over the users of the group (any covariate of the data; includes the users' random
  effects, so it describes the sampled users rather than the population of the group).
* ``LatentTypes``: the membership-weighted mixture of the type effects averaged over the users of
  the group,

  .. math::

      v_g = \frac{1}{n_g} \sum_{u \in g} \sum_k P(z_u = k \mid y_u, \phi)\, v_k
          = \sum_k \bar m_{gk} v_k, \qquad \bar m_{gk} = \frac{1}{n_g} \sum_{u \in g} P(z_u = k \mid y_u, \phi),

  evaluated for every posterior draw :math:`\phi` (membership from
  :meth:`Fit.membership(draws=True) <bayespref.Fit.membership>`), so the uncertainty of both the
  type effects and the memberships propagates (plus the mean user deviation of the group when the
  model has ``user_deviations``). Any covariate of the data can be used, whether or not it enters
  the membership model.

**Gauge.** Only differences of worths within a user are identified, so group worths and utilities
are centred over the options in every draw (or taken relative to ``reference=``). Contrasts of
worths between groups are therefore contrasts of *relative* worths (option minus the group's mean
option). Feature weights are not centred.

Pooled preference
-----------------
:func:`pooled` averages the group levels weighted by the number of users in each group,
:math:`\bar v = \sum_g n_g v_g / \sum_g n_g`. For a ``Hierarchical`` fit grouped by a categorical
covariate over all its levels this equals :math:`\mu + B^\top \bar c` (the population level of
:meth:`Fit.worths`, up to the centring); for a ``LatentTypes`` fit it is the average of the users'
mixtures. :func:`pooled_vs_groups` shows when such an average describes no group at all.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import xarray as xr

from bayespref import config
from bayespref.data.features import option_feature_matrix
from bayespref.errors import DataError, ModelError
from bayespref.intervals import summary
from bayespref.models import FAMILIES, sites

__all__ = [
    "group_effects", "summary", "summarize", "contrast", "pooled", "pooled_vs_groups", "variance_shares",
    "membership_by_group", "rank_reversal", "reversal_matrix", "reversal_table",
]

SAMPLE = ("chain", "draw")
POOLED = "pooled"
SOURCES = ("between_groups", "within_groups", "residual")


# ------------------------------------------------------------------------------------------------
# input checks: what the fit's family can do is asked of its spec (capabilities), never its name
# ------------------------------------------------------------------------------------------------
def _can_compare_groups(spec) -> bool:
    return bool(spec.group_effect_methods)


def _has_design(spec) -> bool:
    return "design" in spec.group_effect_methods


def _has_types(spec) -> bool:
    return bool(spec.has_types)


def _offering(able) -> list[str]:
    """Names of the registered families whose specs have the capability ``able``."""
    return [name for name, cls in FAMILIES.items() if able(cls)]


def _require(fit, able, what: str) -> str:
    """The fit's family, after checking that it is a Fit whose spec has the capability ``able``."""
    if not (hasattr(fit, "idata") and hasattr(fit, "model") and hasattr(fit, "data")):
        raise ModelError(f"{what}() needs a bayespref.Fit (from bayespref.fit), got {type(fit).__name__}.")
    family = getattr(fit.model, "family", type(fit.model).__name__)
    if not able(fit.model):
        raise ModelError(
            f"{what}() needs a {' or '.join(_offering(able))} fit; this fit is {family}, which has no "
            "user-level or type-level effects to compare. Fit bayespref.Hierarchical(covariates=[...]) "
            "or bayespref.LatentTypes(n_types=K) to study heterogeneity.")
    return family


def _active_users(data) -> np.ndarray:
    """Positions (in ``data.users``) of the users with at least one comparison."""
    u = np.unique(np.asarray(data.user))
    return u[u >= 0]


class _Grouping:
    """The groups of a covariate: labels, the users in each, and the design value of each level."""

    def __init__(self, data, by, levels=None, bins=None):
        table = data.user_table
        if table is None or not len(table.columns):
            raise DataError(
                f"by={by!r}: the data have no user covariates. Pass them when building the data: "
                "Comparisons.from_frame(..., user_covariates=[...] or a table indexed by user id).")
        if by not in table.columns:
            raise DataError(f"by={by!r} is not a user covariate of the data; available: "
                            f"{[str(c) for c in table.columns]}.")
        self.by = by
        self.active = _active_users(data)
        raw = table[by].to_numpy()[self.active]
        design = dict(getattr(getattr(data, "_spec", None), "design", ()) or ())
        all_levels = design.get(by, None)
        numeric = by in design and all_levels is None
        if by not in design:  # not in the design (should not happen): infer from the dtype
            s = table[by]
            numeric = pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype)
            all_levels = None if numeric else tuple(pd.unique(s.astype(object)))
        self.numeric = numeric
        if numeric:
            self._numeric(np.asarray(raw, dtype=float), levels, bins)
        else:
            self._categorical(raw, tuple(all_levels), levels, bins)
        self.n_users = np.bincount(self.code[self.code >= 0], minlength=len(self.labels))

    def _categorical(self, raw, all_levels, levels, bins):
        if bins is not None:
            raise DataError(f"bins= is for numeric covariates; {self.by!r} is categorical with levels "
                            f"{[str(v) for v in all_levels]}. Use levels=[...] to choose some of them.")
        names = [str(v) for v in all_levels]
        chosen = names if levels is None else [str(v) for v in np.atleast_1d(np.asarray(levels, dtype=object))]
        unknown = [v for v in chosen if v not in names]
        if unknown:
            raise DataError(f"levels={unknown} are not levels of {self.by!r}; its levels: {names}.")
        if len(set(chosen)) != len(chosen) or not chosen:
            raise DataError(f"levels= must name distinct levels of {self.by!r}; got {chosen}.")
        self.labels = chosen
        self.code = pd.Index(chosen).get_indexer(pd.Index([str(v) for v in raw]))
        # dummies of the non-reference levels, one row per chosen level
        self.columns = [f"{self.by}[{v}]" for v in names[1:]]
        self.values = (np.asarray(chosen)[:, None] == np.asarray(names[1:])[None, :]).astype(float)

    def _numeric(self, raw, levels, bins):
        if (levels is None) == (bins is None):
            raise DataError(
                f"{self.by!r} is numeric (values {np.nanmin(raw):g} to {np.nanmax(raw):g}): pass either "
                f"levels=[values] (e.g. levels=[{np.quantile(raw, 0.25):g}, {np.quantile(raw, 0.75):g}]) "
                "or bins=[edges] (e.g. bins=[lowest, cut, highest]), not both.")
        self.columns = [str(self.by)]
        if levels is not None:
            vals = np.atleast_1d(np.asarray(levels, dtype=float))
            if len(np.unique(vals)) != len(vals):
                raise DataError(f"levels= must be distinct values; got {list(vals)}.")
            self.labels = [f"{v:g}" for v in vals]
            match = np.isclose(raw[:, None], vals[None, :])
            self.code = np.where(match.any(1), match.argmax(1), -1)
            self.values = vals[:, None]
        else:
            edges = np.asarray(bins, dtype=float)
            if edges.ndim != 1 or len(edges) < 2 or np.any(np.diff(edges) <= 0):
                raise DataError(f"bins= must be increasing edges (at least two); got {list(np.atleast_1d(bins))}.")
            cut = pd.cut(raw, edges, include_lowest=True)
            self.labels = [str(iv) for iv in cut.categories]
            self.code = np.asarray(cut.codes)
            sums = np.bincount(self.code[self.code >= 0], weights=raw[self.code >= 0], minlength=len(edges) - 1)
            counts = np.bincount(self.code[self.code >= 0], minlength=len(edges) - 1)
            if np.any(counts == 0):
                empty = [lab for lab, n in zip(self.labels, counts) if n == 0]
                raise DataError(f"bins {empty} of {self.by!r} hold no training users; choose other edges.")
            self.values = (sums / counts)[:, None]

    def assignment(self, n_all: int, require_users: bool = True) -> np.ndarray:
        """(n_all users, G) matrix averaging over the users of each group (columns sum to 1)."""
        if require_users and np.any(self.n_users == 0):
            empty = [lab for lab, n in zip(self.labels, self.n_users) if n == 0]
            hint = (" For a numeric covariate, method='users' groups the users with exactly that value; "
                    "use bins= instead." if self.numeric else "")
            raise DataError(f"Group(s) {empty} of {self.by!r} have no users in the training data; "
                            f"choose levels= that occur.{hint}")
        A = np.zeros((n_all, len(self.labels)))
        keep = self.code >= 0
        A[self.active[keep], self.code[keep]] = 1.0
        return A / np.maximum(A.sum(0, keepdims=True), 1.0)


# ------------------------------------------------------------------------------------------------
# group effects
# ------------------------------------------------------------------------------------------------
def _values(da: xr.DataArray, *dims) -> np.ndarray:
    return np.asarray(da.transpose(*SAMPLE, *dims).values, dtype=float)


def _blocks(fit) -> list[str]:
    """Names of the user-level effect blocks of the fit's model (``worth``, ``weight``)."""
    sizes = fit.sizes
    return [name for name, _ in fit.model.effect_blocks(sizes["n_options"], sizes["n_features"]) or []]


def _design(fit, g: _Grouping) -> dict:
    """Group levels mu + B^T c_g of a model with design-level group effects (method='design')."""
    post = fit.idata.posterior
    blocks = _blocks(fit)
    model_cov = [str(c) for c in post["covariate"].values] if "covariate" in post.coords else []
    present = [c for c in g.columns if c in model_cov]
    if not any(sites.group(b) in post for b in blocks) or not present:
        raise ModelError(
            f"The {fit.model.family} model has no group effect for {g.by!r} (its covariates: "
            f"{model_cov or 'none'}), so method='design' would give every group the same level. Refit with "
            f"covariates including {g.by!r}, or use method='users' (average of the users' effects).")
    data = fit.data
    names = list(data.covariate_names)
    cov = np.asarray(data.covariates, dtype=float)[:, [names.index(c) for c in model_cov]]
    cbar = cov[g.active].mean(0)
    rows = np.tile(cbar, (len(g.labels), 1))  # (G, P)
    for j, c in enumerate(g.columns):
        if c in model_cov:
            rows[:, model_cov.index(c)] = g.values[:, j]
    out = {}
    for b in blocks:
        dim = sites.block_dim(b)
        mu = _values(post[b], dim)  # (C, D, E)
        B = _values(post[sites.group(b)], "covariate", dim)  # (C, D, P, E)
        out[b] = mu[:, :, None, :] + np.einsum("gp,cdpe->cdge", rows, B)
    return out


def _users(fit, g: _Grouping) -> dict:
    """Averages of the users' recorded effects over each group (method='users', no types)."""
    post = fit.idata.posterior
    A = g.assignment(post.sizes["user"])
    user_sites = fit.model.user_effect_sites(fit.sizes)
    out = {}
    for b in _blocks(fit):
        out[b] = np.einsum("cdue,ug->cdge", _values(post[user_sites[b]], "user", sites.block_dim(b)), A)
    return out


def _mean_membership(fit, g: _Grouping) -> tuple[np.ndarray, np.ndarray]:
    """(C, D, G, K) mean posterior membership over the users of each group per draw, and the type labels."""
    m = fit.membership(draws=True)
    A = g.assignment(m.sizes["user"])
    return np.einsum("cduk,ug->cdgk", _values(m, "user", "type"), A), m["type"].values


def _types_users(fit, g: _Grouping) -> dict:
    post = fit.idata.posterior
    mbar, _ = _mean_membership(fit, g)
    out = {}
    for b, dim in sites.BLOCK_DIMS.items():
        if b in post and "type" in post[b].dims:
            out[b] = np.einsum("cdgk,cdke->cdge", mbar, _values(post[b], "type", dim))
    sizes = fit.sizes
    blocks = fit.model.effect_blocks(sizes["n_options"], sizes["n_features"])
    if blocks and sites.Z in post:
        tau = np.concatenate([_values(post[sites.sd(b)], sites.block_dim(b)) for b, _ in blocks], axis=-1)
        eta = _values(post[sites.Z], "user", "effect") * tau[:, :, None, :]
        eta_g = np.einsum("cdue,ug->cdge", eta, g.assignment(post.sizes["user"]))
        start = 0
        for b, n in blocks:
            out[b] = out[b] + eta_g[..., start:start + n]
            start += n
    return out


def _gauge(x: np.ndarray, ref: int | None) -> np.ndarray:
    return x - (x.mean(-1, keepdims=True) if ref is None else x[..., ref:ref + 1])


def group_effects(fit, by: str, levels=None, *, bins=None, method: str = "auto", reference=None,
                  ci_prob: float | None = None) -> xr.Dataset:
    r"""Posterior draws of the preference of each level (group) of a user covariate.

    Parameters
    ----------
    fit : Fit
        A ``Hierarchical`` or ``LatentTypes`` fit.
    by : str
        A raw user covariate column (``"gender"``, ``"q2"``, ``"age"``).
    levels : list, optional
        Categorical covariate: the levels to keep (default all, in the design's order). Numeric
        covariate: the values at which to evaluate (required unless ``bins`` is given).
    bins : list of float, optional
        Numeric covariate: bin edges; each bin is a group (``"(18.0, 52.0]"``).
    method : {"auto", "design", "users"}
        How a group's level is defined (module docstring): ``"design"`` (:math:`\mu + B^\top c_g`,
        ``Hierarchical`` only, the default there) or ``"users"`` (average over the group's users;
        the only method, and the default, for ``LatentTypes``).
    reference : option label, optional
        Give worths and utilities relative to this option instead of centred over the options.
    ci_prob : float
        Interval mass used by default by :func:`summary`, :func:`contrast` and the plots.

    Returns
    -------
    xarray.Dataset
        Dims (chain, draw, group, option | feature). Variables: ``worth`` (group, option) when the
        model has option worths (pooled worths are repeated for every group when they do not vary
        by user); ``weight`` (group, feature) when it has features; ``utility`` (group, option),
        :math:`\theta_{g,i} + x_i^\top w_g`, when it has features fixed per option. Coordinate
        ``n_users`` (group): training users per group. Attributes ``by``, ``method``, ``family``,
        ``ci_prob``.

    Raises
    ------
    ModelError
        For a fit of another family, or ``method="design"`` when the model has no group effect for
        ``by``.
    DataError
        For an unknown covariate (the message lists the available ones), unknown levels, or a
        numeric covariate without ``levels=``/``bins=``.

    Examples
    --------
    >>> import bayespref as bp
    >>> from bayespref import heterogeneity as het
    >>> data = bp.load_dataset("topmodel2007").comparisons(user_covariates=["gender", "age", "q2"])
    >>> fit = bp.fit(bp.Hierarchical(varying=["worths"]), data, seed=1)          # doctest: +SKIP
    >>> eff = het.group_effects(fit, "gender")                                   # doctest: +SKIP
    >>> het.summary(eff["worth"])             # mean, sd, lower, upper per (group, option)   # doctest: +SKIP
    >>> het.group_effects(fit, "age", levels=[25, 60])                           # doctest: +SKIP
    >>> het.group_effects(fit, "age", bins=[0, 52, 100], method="users")         # doctest: +SKIP
    """
    ci_prob = config.ci_prob(ci_prob)
    family = _require(fit, _can_compare_groups, "group_effects")
    spec = fit.model
    if method not in ("auto", "design", "users"):
        raise ModelError(f"method={method!r}: use 'auto', 'design' or 'users'.")
    offered = tuple(spec.group_effect_methods)
    if method == "auto":
        method = offered[0]
    if method not in offered:
        users = "type mixtures" if spec.has_types else "effects"
        raise ModelError(
            f"method={method!r} is for {' or '.join(_offering(lambda s: method in s.group_effect_methods))} fits; "
            + (f"{family} groups are averages over their users' {users} (method='users')." if offered == ("users",)
               else f"{family} offers method={list(offered)}."))
    g = _Grouping(fit.data, by, levels, bins)
    if method == "design":
        parts = _design(fit, g)
    elif spec.has_types:
        parts = _types_users(fit, g)
    else:
        parts = _users(fit, g)
    post = fit.idata.posterior
    G = len(g.labels)
    for b, dim in sites.BLOCK_DIMS.items():  # pooled effects that do not vary by user: the same for every group
        if b not in parts and b in post and "type" not in post[b].dims:
            v = _values(post[b], dim)
            parts[b] = np.broadcast_to(v[:, :, None, :], v.shape[:2] + (G,) + v.shape[2:]).copy()
    options = fit.model.coords(fit.data)["option"]
    ref = None
    if reference is not None:
        labels = [str(o) for o in options]
        if str(reference) not in labels:
            raise DataError(f"reference={reference!r} is not an option; options: {labels}.")
        ref = labels.index(str(reference))
    chain, draw = post["chain"].values, post["draw"].values
    coords = {"chain": chain, "draw": draw, "group": np.asarray(g.labels, dtype=str), "option": options}
    ds = xr.Dataset(coords=coords)
    if sites.WORTH in parts:
        ds["worth"] = (("chain", "draw", "group", "option"), _gauge(parts[sites.WORTH], ref))
    features = fit.model.feature_names(fit.data)
    if sites.WEIGHT in parts:
        ds = ds.assign_coords(feature=np.asarray(features, dtype=str))
        ds["weight"] = (("chain", "draw", "group", "feature"), parts[sites.WEIGHT])
        X = option_feature_matrix(fit.data, features)
        if X is not None:
            u = np.einsum("cdgf,of->cdgo", parts[sites.WEIGHT], X)
            if sites.WORTH in parts:
                u = u + parts[sites.WORTH]
            ds["utility"] = (("chain", "draw", "group", "option"), _gauge(u, ref))
    ds = ds.assign_coords(n_users=("group", g.n_users))
    ds.attrs = {"by": str(by), "method": method, "family": family, "ci_prob": float(ci_prob),
                "gauge": "centred over options" if ref is None else f"relative to {reference}"}
    return ds


# ------------------------------------------------------------------------------------------------
# summaries and contrasts
# ------------------------------------------------------------------------------------------------
def summarize(obj, ci_prob: float | None = None, p_positive: bool = False) -> pd.DataFrame:
    """Deprecated spelling of :func:`summary` (:func:`bayespref.intervals.summary`)."""
    warnings.warn("heterogeneity.summarize is deprecated; use heterogeneity.summary.", DeprecationWarning,
                  stacklevel=2)
    return summary(obj, ci_prob, p_positive)


def pooled(effects: xr.Dataset) -> xr.Dataset:
    r"""Population average of group effects, weighted by the number of users per group.

    .. math:: \bar v = \sum_g n_g v_g \Big/ \sum_g n_g

    The weights count the training users of each group in ``effects`` (so the average is over
    those groups only). For a numeric covariate evaluated at ``levels=`` values they count users
    with exactly those values; group it with ``bins=`` for a meaningful average.

    Parameters
    ----------
    effects : xarray.Dataset
        From :func:`group_effects` (coordinate ``n_users`` on ``group``).

    Returns
    -------
    xarray.Dataset with the ``group`` dim removed.

    Examples
    --------
    >>> eff = group_effects(fit, "gender")       # doctest: +SKIP
    >>> summary(pooled(eff)["worth"])          # doctest: +SKIP
    """
    if "group" not in effects.dims or "n_users" not in effects.coords:
        raise DataError("pooled() needs the result of group_effects() (a 'group' dim with 'n_users').")
    n = effects["n_users"].astype(float)
    if float(n.sum()) <= 0:
        raise DataError("pooled(): no group has users in the training data.")
    out = (effects.drop_vars("n_users") * (n / n.sum())).sum("group")
    out.attrs = {**effects.attrs, "group": POOLED}
    return out


def _effects(fit_or_effects, by, what, **kw) -> xr.Dataset:
    if isinstance(fit_or_effects, xr.Dataset):
        if "group" not in fit_or_effects.dims:
            raise DataError(f"{what}(): the Dataset has no 'group' dim; pass group_effects(fit, by) or a fit.")
        return fit_or_effects
    if by is None:
        raise DataError(f"{what}(fit, by): name the user covariate `by` that defines the groups.")
    return group_effects(fit_or_effects, by, **kw)


def contrast(effects, a, b, *, ci_prob: float | None = None, draws: bool = False):
    r"""Difference between two groups, :math:`v_a - v_b`, with intervals and :math:`P(v_a - v_b > 0)`.

    Parameters
    ----------
    effects : xarray.Dataset or DataArray
        From :func:`group_effects` (or one of its variables).
    a, b : group labels
        Groups to compare; ``"pooled"`` stands for the population average (:func:`pooled`).
    ci_prob : float, optional
        Interval mass (default the one given to :func:`group_effects`).
    draws : bool
        Return the draws of the difference (xarray, dims chain, draw, ...) instead of the table.

    Returns
    -------
    pandas.DataFrame
        As :func:`summary` with ``p_positive``: one row per option/feature (and variable).

    Examples
    --------
    >>> eff = group_effects(fit, "gender")                # doctest: +SKIP
    >>> contrast(eff, "male", "female")                   # doctest: +SKIP
    >>> contrast(eff["weight"], "male", "pooled", draws=True)   # doctest: +SKIP
    """
    if "group" not in effects.dims:
        raise DataError("contrast() needs group effects with a 'group' dim (from group_effects()).")
    groups = [str(x) for x in effects["group"].values]

    def pick(label):
        if str(label) in groups:
            return effects.sel(group=str(label)).drop_vars(["group", "n_users"], errors="ignore")
        if str(label) == POOLED:
            ds = effects if isinstance(effects, xr.Dataset) else effects.to_dataset(name="__v")
            p = pooled(ds)
            return p if isinstance(effects, xr.Dataset) else p["__v"].rename(effects.name)
        raise DataError(f"Group {label!r} is not in the effects; groups: {groups} (or {POOLED!r}).")

    diff = pick(a) - pick(b)
    diff.attrs = {**effects.attrs, "contrast": f"{a} - {b}"}
    if draws:
        return diff
    return summary(diff, ci_prob if ci_prob is not None else effects.attrs.get("ci_prob", config.CI_PROB), p_positive=True)


# ------------------------------------------------------------------------------------------------
# pooled versus groups, rank reversals
# ------------------------------------------------------------------------------------------------
def _reward(effects: xr.Dataset) -> xr.DataArray:
    for name in ("utility", "worth"):
        if name in effects:
            return effects[name]
    raise ModelError("Ranking options needs option rewards: the model has neither worths nor option features "
                     "fixed per option (features given per comparison vary, so options have no single utility).")


def _select_options(r: xr.DataArray, options) -> xr.DataArray:
    if options is None:
        return r
    labels = [str(o) for o in r["option"].values]
    wanted = [str(o) for o in options]
    unknown = [o for o in wanted if o not in labels]
    if unknown:
        raise DataError(f"options {unknown} are unknown; options: {labels}.")
    if len(wanted) < 2:
        raise DataError("options= needs at least two options.")
    return r.isel(option=[labels.index(o) for o in wanted])


def pooled_vs_groups(fit, by: str | None = None, *, options=None, **kwargs) -> xr.Dataset:
    r"""The pooled (population-average) preference beside the groups', and whether it serves any group.

    With the rewards :math:`r_g(i)` of each group (``utility`` when available, else ``worth``) and
    the pooled rewards :math:`\bar r = \sum_g n_g r_g / \sum_g n_g`, per posterior draw:

    * ``p_top`` (group, option): :math:`P(\arg\max_i r_g(i) = \text{option})`;
    * ``p_same_top`` (group): :math:`P(\arg\max_i r_g(i) = \arg\max_i \bar r(i))`;
    * ``p_same_ranking`` (group): probability that the group's full ranking equals the pooled one;
    * ``kendall_tau`` (chain, draw, group): rank correlation of the group's and the pooled ranking;
    * ``p_top_serves_no_group``: :math:`P(\arg\max \bar r \ne \arg\max r_g \ \forall g)`, the
      probability that the pooled favourite is no group's favourite ("the average serves no group");
    * ``p_ranking_serves_no_group``: the same for the full ranking.

    The pooled order of a single *pair* always agrees with at least one group in every draw (a
    weighted average cannot lie outside its parts), so the flags are about the favourite and the
    ranking, where averaging can produce an order no group holds (e.g. a Borda-like compromise).
    The ``pooled`` row is included in ``reward``, ``p_top`` and the per-group variables (trivially 1
    there) so the pooled preference is shown beside the groups.

    Parameters
    ----------
    fit : Fit or xarray.Dataset
        A ``Hierarchical``/``LatentTypes`` fit, or the result of :func:`group_effects`.
    by : str
        The covariate defining the groups (needed with a fit).
    options : list, optional
        Restrict the ranking to these options.
    **kwargs
        Passed to :func:`group_effects` (``levels``, ``bins``, ``method``).

    Returns
    -------
    xarray.Dataset (variables above; attribute ``average_serves_no_group`` is True when
    ``p_top_serves_no_group`` > 0.5).

    Examples
    --------
    >>> pv = pooled_vs_groups(fit, "q2")                                  # doctest: +SKIP
    >>> pv[["p_same_top", "p_same_ranking"]].to_dataframe()               # doctest: +SKIP
    >>> float(pv["p_top_serves_no_group"])                                # doctest: +SKIP
    """
    effects = _effects(fit, by, "pooled_vs_groups", **kwargs)
    r = _select_options(_reward(effects), options)
    groups = [str(x) for x in r["group"].values]
    label = POOLED if POOLED not in groups else f"{POOLED} (all users)"
    rp = _reward(pooled(effects))
    rp = rp.sel(option=r["option"].values)
    both = xr.concat([r.drop_vars("n_users"), rp.expand_dims(group=[label])], dim="group")
    x = _values(both, "group", "option")  # (C, D, G+1, O)
    top = x.argmax(-1)  # (C, D, G+1)
    O = x.shape[-1]
    p_top = (top[..., None] == np.arange(O)).mean((0, 1))
    same_top = (top == top[..., -1:]).mean((0, 1))
    order = np.argsort(-x, axis=-1)
    same_rank_draw = np.all(order == order[..., -1:, :], axis=-1)  # (C, D, G+1)
    iu = np.triu_indices(O, 1)
    sp = np.sign(x[..., -1, :, None] - x[..., -1, None, :])[..., iu[0], iu[1]]  # (C, D, pairs)
    tau = np.stack([(np.sign(x[..., k, :, None] - x[..., k, None, :])[..., iu[0], iu[1]] * sp).mean(-1)
                    for k in range(x.shape[2])], axis=-1)  # loop over the few groups
    G = len(groups)
    no_top = np.all(top[..., :G] != top[..., -1:], axis=-1).mean()
    no_rank = np.all(~same_rank_draw[..., :G], axis=-1).mean()
    coords = {"chain": both["chain"].values, "draw": both["draw"].values, "group": both["group"].values,
              "option": both["option"].values}
    ds = xr.Dataset({
        "reward": (("chain", "draw", "group", "option"), x),
        "p_top": (("group", "option"), p_top),
        "p_same_top": ("group", same_top),
        "p_same_ranking": ("group", same_rank_draw.mean((0, 1))),
        "kendall_tau": (("chain", "draw", "group"), tau),
        "p_top_serves_no_group": ((), float(no_top)),
        "p_ranking_serves_no_group": ((), float(no_rank)),
    }, coords=coords)
    n = np.append(np.asarray(effects["n_users"].values), int(np.sum(effects["n_users"].values)))
    ds = ds.assign_coords(n_users=("group", n))
    ds.attrs = {**effects.attrs, "reward": str(r.name), "pooled": label,
                "average_serves_no_group": int(no_top > 0.5)}
    return ds


def rank_reversal(fit, by: str | None = None, options=None, **kwargs) -> xr.DataArray:
    r"""Posterior probability that two groups rank two options in opposite order.

    For groups g, h and options i, j, with :math:`d_g = r_g(i) - r_g(j)`,

    .. math:: P_{\text{rev}}(g, h, i, j) = P\big(\operatorname{sign} d_g \ne \operatorname{sign} d_h\big)
              \approx \frac1S \sum_s 1\big[d_g^{(s)} d_h^{(s)} < 0\big],

    computed from the joint draws (so correlation between the groups' estimates is respected).
    It is near 1 for a confident reversal, near 0 when the groups confidently agree; near 0.5 when
    the pair is close to a tie in a group (the sign is then a coin flip), so read it together with
    the coordinates ``p_group_a``/``p_group_b`` (:math:`P(r_g(i) > r_g(j))`), as
    :func:`reversal_table` does.

    Parameters
    ----------
    fit : Fit or xarray.Dataset
        A ``Hierarchical``/``LatentTypes`` fit, or the result of :func:`group_effects`.
    by : str
        The covariate defining the groups (needed with a fit).
    options : list, optional
        Options to consider (default all).
    **kwargs
        Passed to :func:`group_effects`.

    Returns
    -------
    xarray.DataArray (group_a, group_b, option_a, option_b), symmetric in both pairs, 0 on the
    diagonals; coordinates ``p_group_a`` (group_a, option_a, option_b) and ``p_group_b``. Summaries:
    :func:`reversal_matrix` (per pair of groups) and :func:`reversal_table` (tidy).

    Examples
    --------
    >>> rr = rank_reversal(fit, "q2")                 # doctest: +SKIP
    >>> reversal_matrix(rr)                           # doctest: +SKIP
    >>> reversal_table(rr).head()                     # doctest: +SKIP
    """
    effects = _effects(fit, by, "rank_reversal", **kwargs)
    r = _select_options(_reward(effects), options)
    x = _values(r, "group", "option")  # (C, D, G, O)
    G, O = x.shape[2], x.shape[3]
    x = x.reshape(-1, G, O)

    def sign(k):  # (S, O, O) signs of r_k(i) - r_k(j); one group at a time keeps memory at S x O^2
        return np.sign(x[:, k, :, None] - x[:, k, None, :]).astype(np.int8)

    prob = np.zeros((G, G, O, O))
    p_first = np.zeros((G, O, O))
    for a in range(G):  # a handful of groups
        sa = sign(a)
        p_first[a] = (sa > 0).mean(0)
        for b in range(a + 1, G):
            prob[a, b] = prob[b, a] = (sa * sign(b) < 0).mean(0)
    groups, opts = r["group"].values, r["option"].values
    da = xr.DataArray(prob, dims=("group_a", "group_b", "option_a", "option_b"),
                      coords={"group_a": groups, "group_b": groups, "option_a": opts, "option_b": opts},
                      name="p_reversal")
    da = da.assign_coords(p_group_a=(("group_a", "option_a", "option_b"), p_first),
                          p_group_b=(("group_b", "option_a", "option_b"), p_first))
    da.attrs = {**effects.attrs, "reward": str(r.name)}
    return da


def reversal_matrix(rr: xr.DataArray) -> pd.DataFrame:
    """Per pair of groups, the largest reversal probability over option pairs (group x group table).

    Examples
    --------
    >>> reversal_matrix(rank_reversal(fit, "q2"))     # doctest: +SKIP
    """
    m = rr.max(("option_a", "option_b"))
    return pd.DataFrame(m.values, index=pd.Index(rr["group_a"].values, name="group_a"),
                        columns=pd.Index(rr["group_b"].values, name="group_b"))


def reversal_table(rr: xr.DataArray, min_prob: float = 0.0) -> pd.DataFrame:
    """Tidy table of :func:`rank_reversal`: one row per pair of groups and pair of options.

    Columns ``group_a``, ``group_b``, ``option_a``, ``option_b``, ``p_reversal``, and
    ``p_a_prefers`` / ``p_b_prefers`` (probability that group a / group b prefers ``option_a`` to
    ``option_b``); rows with ``p_reversal >= min_prob``, most probable reversals first.

    Examples
    --------
    >>> reversal_table(rank_reversal(fit, "q2"), min_prob=0.9)   # doctest: +SKIP
    """
    G, O = rr.sizes["group_a"], rr.sizes["option_a"]
    ga, gb, oa, ob = np.meshgrid(np.arange(G), np.arange(G), np.arange(O), np.arange(O), indexing="ij")
    keep = (ga < gb) & (oa < ob)
    p = rr.values[keep]
    pa = rr["p_group_a"].values[ga[keep], oa[keep], ob[keep]]
    pb = rr["p_group_b"].values[gb[keep], oa[keep], ob[keep]]
    t = pd.DataFrame({"group_a": rr["group_a"].values[ga[keep]], "group_b": rr["group_b"].values[gb[keep]],
                      "option_a": rr["option_a"].values[oa[keep]], "option_b": rr["option_b"].values[ob[keep]],
                      "p_reversal": p, "p_a_prefers": pa, "p_b_prefers": pb})
    t = t[t["p_reversal"] >= min_prob]
    return t.sort_values("p_reversal", ascending=False, kind="stable").reset_index(drop=True)


# ------------------------------------------------------------------------------------------------
# variance shares (Hierarchical)
# ------------------------------------------------------------------------------------------------
def variance_shares(fit) -> xr.Dataset:
    r"""Split the variation of preferences across users into between groups, within groups and residual.

    For a ``Hierarchical`` fit with user-level effects :math:`v_u = \mu + B^\top c_u + \eta_u`,
    :math:`\eta_u \sim N(0, \Sigma)`, :math:`\Sigma = \operatorname{diag}(\tau) R \operatorname{diag}(\tau)`,
    per posterior draw:

    * between groups: :math:`\Sigma_B = \operatorname{Cov}_u(B^\top c_u) = B^\top S_c B`, with
      :math:`S_c` the covariance of the covariate rows over the training users (all the model's
      covariates together define the groups);
    * within groups (between users of the same group): :math:`\Sigma`, the user random effect
      (0 for a model without random effects);
    * residual: the variance of the logistic noise of a comparison on the latent-utility scale,
      :math:`\pi^2/3` (1 with ``link="probit"``).

    Worth effects are taken after the model's centring over options (only differences are
    identified), i.e. :math:`T \Sigma T` with :math:`T = I - \mathbf{1}\mathbf{1}^\top/O` on the
    worth block.

    *Per effect* e (``effect`` = ``"worth[i]"``, ``"weight[f]"``), on the scale of the reward
    difference of a comparison in which only that effect differs by a typical amount
    :math:`s_e` (:math:`s_e = 1` for a worth: option i against an option of the user's mean worth;
    :math:`s_e` = root mean square of :math:`x_{a,f} - x_{b,f}` over the data's comparisons for a
    feature): :math:`s_e^2 \Sigma_{B,ee}`, :math:`s_e^2 \Sigma_{ee}` and :math:`\pi^2/3`.

    *Overall* (``effect="overall"``), on the scale of the reward differences of the comparisons in
    the data, :math:`d_u(n) = \Delta_n^\top v_u` with :math:`\Delta_n` the design difference
    (:math:`e_{a_n} - e_{b_n}` for worths, :math:`x_{a_n} - x_{b_n}` for features) and
    :math:`M = \frac1N \sum_n \Delta_n \Delta_n^\top`: :math:`\operatorname{tr}(\Sigma_B M)`,
    :math:`\operatorname{tr}(\Sigma M)` (a comparison-weighted sum of the :math:`\tau^2`, including
    correlations) and :math:`\pi^2/3`.

    The shares are each part over their sum, per draw, so they sum to 1 in every draw.

    Returns
    -------
    xarray.Dataset
        ``variance`` and ``share`` with dims (chain, draw, effect, source), ``source`` in
        (``between_groups``, ``within_groups``, ``residual``). Summarise with
        ``summary(vs["share"])``.

    Raises
    ------
    ModelError
        For fits other than ``Hierarchical``.

    Examples
    --------
    >>> vs = variance_shares(fit)                                   # doctest: +SKIP
    >>> summary(vs["share"].sel(effect="overall"))                # doctest: +SKIP
    """
    family = _require(fit, _has_design, "variance_shares")
    post = fit.idata.posterior
    data, spec = fit.data, fit.model
    if data.obs_dim != "comparison":  # rankings: the moments of the pairs they imply
        data = data.explode()
    sizes = fit.sizes
    blocks = spec.effect_blocks(sizes["n_options"], sizes["n_features"])
    dims = sites.BLOCK_DIMS
    E = sum(n for _, n in blocks)
    sample_shape = (post.sizes["chain"], post.sizes["draw"])
    if all(sites.sd(b) in post for b, _ in blocks):
        tau = np.concatenate([_values(post[sites.sd(b)], dims[b]) for b, _ in blocks], -1)  # (C, D, E)
        if sites.CORR_CHOL in post:
            L = _values(post[sites.CORR_CHOL], "effect", "effect_bis")
            R = L @ np.swapaxes(L, -1, -2)
        else:
            R = np.broadcast_to(np.eye(E), sample_shape + (E, E))
        within = tau[..., :, None] * R * tau[..., None, :]
    else:  # random_effects=False: no user deviations
        within = np.zeros(sample_shape + (E, E))
    model_cov = [str(c) for c in post["covariate"].values] if "covariate" in post.coords else []
    if model_cov and all(sites.group(b) in post for b, _ in blocks):
        names = list(data.covariate_names)
        cov = np.asarray(data.covariates, dtype=float)[:, [names.index(c) for c in model_cov]][_active_users(data)]
        Sc = np.atleast_2d(np.cov(cov, rowvar=False, ddof=0))
        B = np.concatenate([_values(post[sites.group(b)], "covariate", dims[b]) for b, _ in blocks], -1)
        between = np.einsum("cdpe,pq,cdqf->cdef", B, Sc, B)
    else:
        between = np.zeros_like(within)
    # centring of the worth block, and the per-effect scales s_e
    T = np.eye(E)
    scale = np.ones(E)
    feats = list(spec.feature_names(data))
    fidx = [list(data.feature_names).index(f) for f in feats]
    dx = np.asarray(data.xa, dtype=float)[:, fidx] - np.asarray(data.xb, dtype=float)[:, fidx]
    start, labels = 0, []
    for b, n in blocks:
        if b == sites.WORTH:
            T[start:start + n, start:start + n] -= 1.0 / n
            labels += [f"worth[{o}]" for o in post["option"].values]
        else:
            scale[start:start + n] = np.sqrt(np.mean(dx ** 2, axis=0))
            labels += [f"weight[{f}]" for f in post["feature"].values]
        start += n
    between_c = T @ between @ T
    within_c = T @ within @ T
    M = _difference_moments(data, blocks, dx)
    residual = math.pi ** 2 / 3 if getattr(spec, "link", "logit") == "logit" else 1.0
    per = np.stack([scale ** 2 * np.diagonal(between_c, axis1=-2, axis2=-1),
                    scale ** 2 * np.diagonal(within_c, axis1=-2, axis2=-1),
                    np.full(sample_shape + (E,), residual)], -1)  # (C, D, E, 3)
    overall = np.stack([np.einsum("cdef,ef->cd", between, M), np.einsum("cdef,ef->cd", within, M),
                        np.full(sample_shape, residual)], -1)[:, :, None, :]
    var = np.concatenate([per, overall], axis=2)
    coords = {"chain": post["chain"].values, "draw": post["draw"].values,
              "effect": np.asarray(labels + ["overall"]), "source": np.asarray(SOURCES)}
    vdims = ("chain", "draw", "effect", "source")
    ds = xr.Dataset({"variance": (vdims, var), "share": (vdims, var / var.sum(-1, keepdims=True))}, coords=coords)
    ds.attrs = {"family": family, "ci_prob": config.CI_PROB, "residual": residual,
                "scale": "reward difference of a comparison (see variance_shares docstring)"}
    return ds


def _difference_moments(data, blocks, dx) -> np.ndarray:
    """M = mean over comparisons of Delta_n Delta_n^T for the varying blocks (worth: e_a - e_b; weight: dx)."""
    N = max(int(data.n_comparisons), 1)
    a, b = np.asarray(data.a), np.asarray(data.b)
    parts = []
    for name, n in blocks:
        if name == sites.WORTH:
            D = np.zeros((N, n))
            rows = np.arange(N)
            D[rows, a] += 1.0
            D[rows, b] -= 1.0
            parts.append(D)
        else:
            parts.append(dx)
    Delta = np.concatenate(parts, axis=1)
    return Delta.T @ Delta / N


# ------------------------------------------------------------------------------------------------
# membership by group (LatentTypes)
# ------------------------------------------------------------------------------------------------
def membership_by_group(fit, by: str, levels=None, *, bins=None, ci_prob: float | None = None) -> xr.DataArray:
    r"""Mean posterior type-membership probability in each group of users, per posterior draw.

    .. math:: \bar m_{gk} = \frac{1}{n_g} \sum_{u \in g} P(z_u = k \mid y_u, \phi)

    for each draw :math:`\phi`, from :meth:`Fit.membership(draws=True) <bayespref.Fit.membership>`;
    summarise with :func:`summary` for intervals. Rows sum to 1 over types.

    Parameters
    ----------
    fit : Fit
        A ``LatentTypes`` fit.
    by, levels, bins
        The groups, as in :func:`group_effects`.
    ci_prob : float
        Default interval mass of :func:`summary` and the plot.

    Returns
    -------
    xarray.DataArray (chain, draw, group, type), coordinate ``n_users`` on ``group``.

    Examples
    --------
    >>> mg = membership_by_group(fit, "gender")     # doctest: +SKIP
    >>> summary(mg)                               # doctest: +SKIP
    """
    ci_prob = config.ci_prob(ci_prob)
    family = _require(fit, _has_types, "membership_by_group")
    g = _Grouping(fit.data, by, levels, bins)
    mbar, types = _mean_membership(fit, g)
    post = fit.idata.posterior
    da = xr.DataArray(mbar, dims=("chain", "draw", "group", "type"),
                      coords={"chain": post["chain"].values, "draw": post["draw"].values,
                              "group": np.asarray(g.labels, dtype=str), "type": types}, name="membership")
    da = da.assign_coords(n_users=("group", g.n_users))
    da.attrs = {"by": str(by), "family": family, "ci_prob": float(ci_prob)}
    return da
