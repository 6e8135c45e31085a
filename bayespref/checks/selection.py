r"""Choosing the number of latent user types K of :class:`~bayespref.LatentTypes`.

Two routes, both per user (the exchangeable unit of a latent-type model: all judgements of a user
share one type, so leaving out single judgements would not test the type structure):

:func:`compare_k`
    fits ``LatentTypes(n_types=K)`` for K = 1..``k_max`` and estimates each model's expected log
    predictive density for a *new user's* judgements (elpd), either by PSIS-LOO over users
    (``by="loo"``, ``az.loo`` on the per-user factor ``user_ll``: cheap, one fit per K) or by
    leave-users-out K-fold cross-validation (``by="users"``: ``folds`` fits per K, each scoring
    its held-out users with :meth:`Fit.user_log_likelihood`; exact, no importance sampling).
    K is chosen by the **one-standard-error rule**: the smallest K whose elpd is within one
    standard error of the best, where the standard error is that of the *paired* difference to
    the best model over users (``dse``; the SEs of the elpds themselves are dominated by
    between-user variation that is common to all K and would make the rule far too lenient).
    Reported with how sure the choice is (see :class:`KSelection`).

:func:`sparse_k`
    the overfitted-mixture route (Rousseau & Mengersen 2011): one fit with ``k_max`` types and a
    sparse Dirichlet prior on the type shares (concentration 0.05, well below half the number of
    type-specific parameters), under which the posterior empties the types the data do not need.
    Reports the types whose posterior mean share exceeds a threshold and the posterior
    distribution of the number of types whose share exceeds it.

Measures of certainty (:func:`compare_k`)
-----------------------------------------
``elpd_diff``, ``dse``, ``z``
    the difference to the best K (>= 0), the SE of that difference paired over users
    (:math:`\sqrt{U}\,\mathrm{sd}_u(e_{best,u} - e_{K,u})`) and its z-score.
``p_worse``
    ArviZ's normal-approximation probability that K predicts worse than the best.
``weight``
    stacking weight (Yao et al. 2018, from ``az.compare``): the weights of the mixture of the K
    models' predictive distributions that predicts held-out users best. With nested mixtures
    (K = 3 can imitate K = 2) the weight spreads over the adequate K; it says which K are needed
    rather than which one is true.
``weight_bb``
    pseudo-BMA+ weight (``az.compare(method="bb-pseudo-bma")``): Akaike-type weights
    :math:`\propto \exp(\widehat{elpd}_K)` averaged over Bayesian-bootstrap resamples of the users.
``p_select``
    the probability that the selection rule picks this K: the one-SE rule applied to 2000
    Bayesian-bootstrap resamples of the per-user elpds (Dirichlet(1, ..., 1) weights on users,
    elpds and paired SEs recomputed with those weights), the share of resamples that pick K.
    This is the number the summary sentence uses: >= 0.9 "clear", >= 0.7 "fairly clear",
    below that "uncertain".

All of these treat the users as a sample from a population and the per-user elpds as exact; they
do not include the Monte Carlo error of the fits nor, for LOO, the error of PSIS for users whose
Pareto k exceeds ArviZ's threshold (counted in ``n_high_k``; if there are many, prefer
``by="users"``).
"""

from __future__ import annotations

import dataclasses
import warnings

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr

from bayespref import config, errors
from bayespref.checks.crossval import kfold_elpd, log_mean_exp
from bayespref.data.comparisons import Comparisons
from bayespref.errors import ConvergenceWarning, DataError, ModelError
from bayespref.inference import METHODS, Fit, fit
from bayespref.intervals import interval_bounds
from bayespref.models import LatentTypes, sites

BY = ("loo", "users")
#: Bayesian-bootstrap resamples for ``p_select``
N_BOOT = 2000
_MAX_TYPES = 7  # LatentTypes matches labels over all K! permutations


# ---------------------------------------------------------------------------------------------
# results
# ---------------------------------------------------------------------------------------------
@dataclasses.dataclass
class KSelection:
    """The result of :func:`compare_k`.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per K (index ``n_types``), columns ``elpd``, ``se``, ``elpd_diff``, ``dse``,
        ``z``, ``p_worse``, ``p`` (effective number of parameters, LOO only), ``n_high_k`` (users
        with Pareto k above ArviZ's threshold, LOO only), ``weight`` (stacking), ``weight_bb``
        (pseudo-BMA+), ``p_select``, ``within_1se``, ``chosen``, ``fit_warnings`` (convergence
        and type-separation warnings raised by the fits of that K, counted rather than shown:
        overfitted K mix poorly and have overlapping or near-empty types by nature, which changes
        their elpd little). See the module docstring.
    k : int
        The chosen K (one-standard-error rule).
    message : str
        The choice in a sentence or three, with how sure it is.
    by, method : str
        ``"loo"`` or ``"users"``; ``"nuts"`` or ``"svi"``.
    pointwise : xarray.DataArray
        Per-user elpd, dims (``n_types``, ``user``).
    fits : dict
        ``{K: Fit}`` on the full data (``by="loo"`` only; empty for cross-validation).
    """

    table: pd.DataFrame
    k: int
    message: str
    by: str
    method: str
    pointwise: xr.DataArray
    fits: dict = dataclasses.field(default_factory=dict, repr=False)

    def __repr__(self):
        cols = ["elpd", "se", "elpd_diff", "dse", "z", "weight", "p_select", "chosen"]
        return f"<KSelection by {self.by}, {self.method}>\n{self.message}\n{self.table[cols].round(3).to_string()}"


@dataclasses.dataclass
class SparseK:
    """The result of :func:`sparse_k`.

    Attributes
    ----------
    n_types : int
        Number of non-empty types: types whose posterior mean share exceeds ``threshold``.
    table : pandas.DataFrame
        One row per type (index ``type``, largest first): ``share`` (posterior mean), ``sd``,
        ``lower``/``upper`` (90% equal-tailed), ``p_occupied`` (P(share > threshold)),
        ``n_users`` (users whose most probable type it is), ``non_empty``.
    distribution : pandas.Series
        Posterior probability that exactly n types have share > threshold, n = 0..k_max (index
        ``n_types``), computed per draw.
    threshold : float
    fit : Fit
        The overfitted fit.
    message : str
    """

    n_types: int
    table: pd.DataFrame
    distribution: pd.Series
    threshold: float
    fit: Fit = dataclasses.field(repr=False)
    message: str = ""

    def __repr__(self):
        return f"<SparseK>\n{self.message}\n{self.table.round(3).to_string()}"


# ---------------------------------------------------------------------------------------------
# compare_k
# ---------------------------------------------------------------------------------------------
def compare_k(data, k_max: int = 4, by: str = "loo", folds: int = 5, method: str = "nuts", seed: int = 0,
              model_kwargs: dict | None = None, **fit_kwargs) -> KSelection:
    """Compare LatentTypes models with K = 1..k_max types and choose K.

    Parameters
    ----------
    data : Comparisons
        Judgements with a user column (at least two users with judgements).
    k_max : int
        Largest K tried (2..7).
    by : {"loo", "users"}
        ``"loo"``: PSIS-LOO over users from one fit per K (``az.loo(fit.idata, var_name="user_ll")``).
        ``"users"``: leave-users-out cross-validation with ``folds`` folds
        (:meth:`Comparisons.kfold(by="user") <bayespref.Comparisons.kfold>`, split by ``seed``); each
        held-out user's elpd is the log of the posterior-mean density of their judgements,
        ``log mean_s p(y_u | theta_s)`` (types summed out, :meth:`Fit.user_log_likelihood`).
    folds : int
        Number of folds for ``by="users"`` (2..number of users).
    method : {"nuts", "svi"}
        Inference for every fit (see :func:`bayespref.fit`). With SVI, LOO treats the guide's
        draws as the posterior (approximate).
    seed : int
        Seed of every fit and of the fold split.
    model_kwargs : dict, optional
        Further arguments of :class:`~bayespref.LatentTypes` (not ``n_types``), e.g.
        ``{"user_deviations": True}`` or ``{"covariates": False}``.
    **fit_kwargs
        Passed to :func:`bayespref.fit` (``chains``, ``warmup``, ``draws``, ``steps``, ...);
        ``progress`` defaults to False.

    Returns
    -------
    KSelection
        ``.table`` (pandas, one row per K), ``.k`` (the chosen K), ``.message`` (the choice and
        how sure it is), ``.pointwise`` (per-user elpd) and, for LOO, ``.fits``.

    Notes
    -----
    The rule: let K* maximise the elpd; choose the smallest K with
    ``elpd[K*] - elpd[K] <= dse[K]``, ``dse`` the SE of the difference paired over users.
    Ties in favour of fewer types follow the usual parsimony argument: a K that predicts held-out
    users as well as the best within noise needs no more types. See the module docstring for the
    certainty measures.

    Examples
    --------
    >>> import bayespref as bp
    >>> data = bp.simulate.latent_types(n_users=120, n_types=2, seed=1).comparisons()
    >>> sel = bp.selection.compare_k(data, k_max=3, method="svi")      # doctest: +SKIP
    >>> sel.k, sel.message                                            # doctest: +SKIP
    """
    k_max = _check_common(data, k_max, method, model_kwargs)
    if by not in BY:
        raise ModelError(f"by={by!r} is unknown; use 'loo' (PSIS-LOO over users) or 'users' "
                         "(leave-users-out cross-validation).")
    present = _present_users(data)
    if by == "users":
        if isinstance(folds, bool) or not isinstance(folds, (int, np.integer)) or not 2 <= folds <= len(present):
            raise ModelError(f"folds={folds!r}: use an integer from 2 to the number of users with judgements "
                             f"({len(present)}).")
    mk = dict(model_kwargs or {})
    fk = {"progress": False, **fit_kwargs}
    Ks = list(range(1, k_max + 1))
    labels = np.asarray(data.users)[present]
    n_warn = {}
    fits = {}
    if by == "loo":
        elpds = {}
        for K in Ks:
            f, n_warn[K] = _fit_quiet(LatentTypes(n_types=K, **mk), data, method, seed, fk)
            fits[K] = f
            elpds[K] = _loo_users(f, present)
    else:
        fold_list = _user_folds(data, folds, seed)
        ll = {K: np.full(len(data.users), np.nan) for K in Ks}
        n_samples = 0
        for K in Ks:
            n_warn[K] = 0
            for train, test in fold_list:
                # train keeps every user label; held-out users have no judgements there, so they add
                # nothing to the likelihood (with user_deviations their deviations are prior draws,
                # which user_log_likelihood then integrates over: a new user's predictive density)
                f, w = _fit_quiet(LatentTypes(n_types=K, **mk), train, method, seed, fk)
                n_warn[K] += w
                lu = f.user_log_likelihood(test)
                vals = lu.transpose("chain", "draw", "user").values
                S = vals.shape[0] * vals.shape[1]
                n_samples = S
                idx = data.users.get_indexer(lu["user"].values)
                ll[K][idx] = log_mean_exp(vals.reshape(S, -1))
                del f
        elpds = {K: kfold_elpd(ll[K][present], labels, n_samples, folds) for K in Ks}
    pointwise = xr.DataArray(np.stack([elpds[K].elpd_i.values for K in Ks]), dims=("n_types", "user"),
                             coords={"n_types": Ks, "user": labels})
    table, k = _table(elpds, pointwise, n_warn, by)
    message = _message(table, pointwise, k, by, method)
    return KSelection(table=table, k=k, message=message, by=by, method=method, pointwise=pointwise, fits=fits)


def _check_common(data, k_max, method, model_kwargs):
    if not isinstance(data, Comparisons):
        raise DataError(f"`data` must be a bayespref.Comparisons, got {type(data).__name__}.")
    if isinstance(k_max, bool) or not isinstance(k_max, (int, np.integer)) or not 2 <= k_max <= _MAX_TYPES:
        raise ModelError(f"k_max={k_max!r}: use an integer from 2 to {_MAX_TYPES}.")
    if method not in METHODS:
        raise ModelError(f"method={method!r} is unknown; use one of {METHODS}.")
    if model_kwargs is not None and not isinstance(model_kwargs, dict):
        raise ModelError("model_kwargs must be a dict of LatentTypes arguments.")
    if model_kwargs and "n_types" in model_kwargs:
        raise ModelError("model_kwargs must not set n_types: it is what is being chosen (k_max sets the range).")
    try:  # fail before any fitting on arguments LatentTypes does not take
        LatentTypes(n_types=1, **(model_kwargs or {}))
    except TypeError as exc:
        raise ModelError(f"model_kwargs: {exc}; see help(bayespref.LatentTypes).") from exc
    if "user" not in data.frame or len(_present_users(data)) < 2:
        raise DataError("Choosing the number of user types needs judgements of at least two users "
                        "(Comparisons.from_frame(..., user=...)).")
    return int(k_max)


def _present_users(data) -> np.ndarray:
    """Indices (into data.users) of the users with at least one judgement, in label order."""
    u = np.asarray(data.user)
    return np.unique(u[u >= 0])


def _user_folds(data, folds, seed):
    """Leave-users-out folds over the users that have judgements."""
    return data.kfold(by="user", k=int(folds), seed=seed)


def _fit_quiet(spec, data, method, seed, fk):
    """Fit, counting (not showing) convergence and type-separation warnings.

    Overfitted K mix poorly and have overlapping or near-empty types by nature; that is what the
    comparison is about, so these warnings are counted in the table instead. Other warnings pass.
    """
    quiet = tuple(c for c in (ConvergenceWarning, getattr(errors, "SeparationWarning", None)) if c is not None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        f = fit(spec, data, method=method, seed=seed, **fk)
    n = 0
    for w in caught:
        if issubclass(w.category, quiet):
            n += 1
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return f, n


def _loo_users(f: Fit, present):
    ll = f.idata.log_likelihood.dataset
    if ll.sizes["user"] != len(present):
        dt = f.idata.copy()
        dt["log_likelihood"] = xr.DataTree(ll.isel(user=present))
    else:
        dt = f.idata
    with warnings.catch_warnings():
        # the Pareto-k warning is summarised in the table (n_high_k) and the message
        warnings.filterwarnings("ignore", message=".*[Pp]areto.*")
        return az.loo(dt, var_name=sites.USER_LL, pointwise=True)


def _rule(e, weights=None):
    """One-SE rule on per-user elpds ``e`` (..., K, U); optional user weights (..., U) summing to 1.

    With weights, elpd_K = U * sum_u w_u e_Ku and the paired SE is sqrt(U) times the weighted sd
    of the differences (equal weights give the plain estimates). Returns the chosen 0-based index
    over K, shape (...).
    """
    U = e.shape[-1]
    if weights is None:
        weights = np.full(e.shape[:-2] + (U,), 1.0 / U)
    w = weights[..., None, :]  # (..., 1, U)
    best = np.argmax(np.sum(w * e, -1), -1)  # (...)
    e_best = np.take_along_axis(e, best[..., None, None], axis=-2)  # (..., 1, U)
    d = e_best - e  # (..., K, U)
    dbar = np.sum(w * d, -1)  # (..., K)
    var = np.sum(w * (d - dbar[..., None]) ** 2, -1) * U / max(U - 1, 1)
    within = U * dbar <= np.sqrt(U * var) + 1e-9
    return np.argmax(within, -1)


def _bootstrap_picks(e, n_boot=N_BOOT, seed=20240611, chunk=250):
    """The one-SE rule's choice on ``n_boot`` Bayesian-bootstrap resamples of the users."""
    rng = np.random.default_rng(seed)
    U = e.shape[-1]
    out = []
    for start in range(0, n_boot, chunk):
        m = min(chunk, n_boot - start)
        w = rng.dirichlet(np.ones(U), size=m)
        out.append(_rule(np.broadcast_to(e, (m,) + e.shape), weights=w))
    return np.concatenate(out)


def _table(elpds: dict, pointwise: xr.DataArray, n_warn: dict, by: str):
    names = {K: f"K={K}" for K in elpds}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cmp = az.compare({names[K]: elpds[K] for K in elpds}, method="stacking", round_to="none")
        bb = az.compare({names[K]: elpds[K] for K in elpds}, method="bb-pseudo-bma", round_to="none")
    Ks = list(elpds)
    e = pointwise.values  # (K, U)
    U = e.shape[1]
    best = int(np.argmax(e.sum(1)))
    d = e[best] - e
    elpd_diff = d.sum(1)
    dse = np.sqrt(U) * np.std(d, axis=1, ddof=1)
    chosen = int(_rule(e))
    picks = _bootstrap_picks(e)
    p_select = np.bincount(picks, minlength=len(Ks)) / N_BOOT
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(dse > 0, elpd_diff / dse, 0.0)
    table = pd.DataFrame({
        "elpd": [elpds[K].elpd for K in Ks],
        "se": [elpds[K].se for K in Ks],
        "elpd_diff": elpd_diff,
        "dse": dse,
        "z": z,
        "p_worse": [0.0 if i == best else float(cmp.loc[names[K], "p_worse"]) for i, K in enumerate(Ks)],
        "p": [float(elpds[K].p) for K in Ks],
        "n_high_k": [_n_high_k(elpds[K]) if by == "loo" else 0 for K in Ks],
        "weight": [float(cmp.loc[names[K], "weight"]) for K in Ks],
        "weight_bb": [float(bb.loc[names[K], "weight"]) for K in Ks],
        "p_select": p_select,
        "within_1se": elpd_diff <= dse + 1e-9,
        "chosen": [i == chosen for i in range(len(Ks))],
        "fit_warnings": [n_warn[K] for K in Ks],
    }, index=pd.Index(Ks, name="n_types"))
    return table, Ks[chosen]


def _n_high_k(elpd) -> int:
    k = getattr(elpd, "pareto_k", None)
    if k is None:
        return 0
    good = elpd.good_k if elpd.good_k is not None else 0.7
    return int(np.sum(np.asarray(k) > good))


def _message(table, pointwise, k, by, method):
    how = ("PSIS-LOO over users" if by == "loo" else "leave-users-out cross-validation") + f" ({method})"
    row = table.loc[k]
    best = int(table["elpd"].idxmax())
    parts = [f"K = {k} chosen by the one-standard-error rule on {how}"
             + ("" if best == k else f" (the highest elpd is at K = {best}, {table.loc[k, 'elpd_diff']:.1f} "
                                     f"higher, within one SE {table.loc[k, 'dse']:.1f} of the paired difference)")
             + "."]
    e = pointwise
    if k > 1:
        d = (e.sel(n_types=k) - e.sel(n_types=k - 1)).values
        se = np.sqrt(d.size) * d.std(ddof=1)
        parts.append(f"K = {k - 1} predicts held-out users worse by {d.sum():.1f} (SE {se:.1f}, "
                     f"z = {d.sum() / se if se > 0 else np.inf:.1f}).")
    larger = [K for K in table.index if K > k]
    if larger:
        gains = []
        for K in larger:
            d = (e.sel(n_types=K) - e.sel(n_types=k)).values
            gains.append((d.sum(), np.sqrt(d.size) * d.std(ddof=1), K))
        g, s, K = max(gains)
        parts.append(f"More types gain at most {g:+.1f} (SE {s:.1f}, at K = {K})." if g > 0 else
                     f"More types do not predict better (best change {g:+.1f}, SE {s:.1f}, at K = {K}).")
    p = float(row["p_select"])
    word = "clear" if p >= 0.9 else ("fairly clear" if p >= 0.7 else "uncertain")
    alt = table["p_select"].drop(k)
    alt = alt[alt >= 0.05]
    tail = "" if alt.empty else " (otherwise " + ", ".join(f"K = {K}: {v:.0%}" for K, v in alt.items()) + ")"
    parts.append(f"The choice is {word}: the rule picks K = {k} in {p:.0%} of Bayesian-bootstrap resamples of "
                 f"the users{tail}; stacking weight {row['weight']:.2f}.")
    n_hk = int(table["n_high_k"].max())
    if by == "loo" and n_hk:
        parts.append(f"Up to {n_hk} users per model have Pareto k above ArviZ's threshold, so their LOO "
                     "estimates are unreliable; confirm with by='users'.")
    return " ".join(parts)


# ---------------------------------------------------------------------------------------------
# sparse_k
# ---------------------------------------------------------------------------------------------
def sparse_k(data, k_max: int = 5, concentration: float = 0.05, threshold: float = 0.05, method: str = "nuts",
             seed: int = 0, model_kwargs: dict | None = None, ci_prob: float | None = None, **fit_kwargs) -> SparseK:
    """Overfitted mixture: fit ``k_max`` types under a sparse Dirichlet prior and count the non-empty ones.

    Parameters
    ----------
    data : Comparisons
        Judgements with a user column.
    k_max : int
        Number of types fitted (2..7); should exceed the number expected.
    concentration : float
        Dirichlet concentration of the type shares. Small values (default 0.05; theory asks for
        less than half the number of type-specific parameters) make the posterior empty the
        types the data do not need; values >= 1 do not, and are refused.
    threshold : float
        A type is non-empty when its posterior mean share exceeds ``threshold`` (0 < t < 1).
    method, seed, **fit_kwargs
        As in :func:`bayespref.fit` (``progress`` defaults to False).
    model_kwargs : dict, optional
        Further :class:`~bayespref.LatentTypes` arguments. The membership model must be the
        Dirichlet one, so user covariates are not used (``covariates=False`` is set).

    Returns
    -------
    SparseK
        ``.n_types``, ``.table`` (per type), ``.distribution`` (posterior of the number of types
        with share > threshold, per draw), ``.fit``, ``.message``.

    Notes
    -----
    The count per draw is label-free. Empty types' worths are draws from their prior and their
    R-hat is meaningless, so convergence warnings of the fit are expected and not shown; the
    posterior of the number of types converges much faster than the empty types' parameters.
    With ``method="svi"`` the distribution comes from the guide (approximate, usually too sure).
    """
    ci_prob = config.ci_prob(ci_prob)
    k_max = _check_common(data, k_max, method, model_kwargs)
    if not np.isfinite(concentration) or not 0 < concentration < 1:
        raise ModelError(f"concentration={concentration!r}: a sparse prior needs 0 < concentration < 1 "
                         "(0.05 is the usual choice); use compare_k to compare K otherwise.")
    if not 0 < threshold < 1:
        raise ModelError(f"threshold={threshold!r}: use a share between 0 and 1 (e.g. 0.05).")
    mk = dict(model_kwargs or {})
    if mk.get("covariates") not in (None, False):
        raise ModelError("sparse_k uses the Dirichlet membership prior; covariate-dependent membership "
                         "has no sparse prior. Drop model_kwargs['covariates'] (or use compare_k).")
    if "concentration" in mk:
        raise ModelError("Pass the sparse prior's concentration as sparse_k(..., concentration=...), "
                         "not in model_kwargs.")
    mk["covariates"] = False
    spec = LatentTypes(n_types=k_max, concentration=float(concentration), **mk)
    fk = {"progress": False, **fit_kwargs}
    f, _ = _fit_quiet(spec, data, method, seed, fk)
    share = f.idata.posterior[sites.TYPE_SHARE].transpose("chain", "draw", "type")
    vals = share.values.reshape(-1, k_max)
    lower, upper = interval_bounds(vals, ci_prob, axis=0)
    assigned = np.asarray(f.membership().transpose("user", "type").values).argmax(1)
    present = _present_users(data)
    table = pd.DataFrame({
        "share": vals.mean(0),
        "sd": vals.std(0, ddof=1),
        "lower": lower,
        "upper": upper,
        "p_occupied": (vals > threshold).mean(0),
        "n_users": np.bincount(assigned[present], minlength=k_max),
    }, index=pd.Index(share["type"].values, name="type"))
    table["non_empty"] = table["share"] > threshold
    counts = (vals > threshold).sum(1)
    distribution = pd.Series(np.bincount(counts, minlength=k_max + 1) / len(counts),
                             index=pd.Index(range(k_max + 1), name="n_types"), name="probability")
    n = int(table["non_empty"].sum())
    mode = int(distribution.idxmax())
    pn = float(distribution.loc[n])
    word = "clear" if pn >= 0.9 else ("fairly clear" if pn >= 0.7 else "uncertain")
    others = distribution.drop(n)
    others = others[others >= 0.05]
    message = (f"{n} of {k_max} types are non-empty (posterior mean share > {threshold:g}) under a sparse "
               f"Dirichlet({concentration:g}) prior. Posterior P(number of types with share > {threshold:g} "
               f"= {n}) = {pn:.2f} ({word})"
               + ("" if others.empty else "; otherwise " + ", ".join(f"{i}: {v:.2f}" for i, v in others.items()))
               + (f"; the posterior mode is {mode}." if mode != n else ".")
               + (" Shares from SVI are approximate." if method == "svi" else ""))
    return SparseK(n_types=n, table=table, distribution=distribution, threshold=float(threshold), fit=f,
                   message=message)
