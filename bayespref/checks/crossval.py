r"""Cross-validation for preference models: PSIS-LOO with exact refits, and grouped K-fold.

**Units.** A held-out unit is a comparison, a user or a prompt; its score is the log predictive
density of all its judgements *jointly*,

.. math::

    \mathrm{elpd}_u = \log \frac{1}{S} \sum_{s=1}^S \prod_{n \in u} p(y_n \mid \theta^{(s)}),

with :math:`\theta^{(s)}` posterior draws of a fit that did not see unit u. For a held-out user,
the user's own effects (``Hierarchical`` deviations, ``LatentTypes`` deviations) are not in the
training posterior; NumPyro samples them from their prior given the population parameters (the
data subsets keep every user's index, and a user without judgements has posterior = prior), so
the estimate integrates over a new user's effects by Monte Carlo, one draw per posterior draw
(the same estimator as :func:`bayespref.selection.compare_k`). ``LatentTypes`` sums its types out
per user (factor ``user_ll``), so its units are users.

**Cheap refits.** K-fold and the exact refits of :func:`loo` do not subset the data: they fit the
full data with the held-out judgements' likelihood masked (an effect handler on the observation
site), so every refit has the same shapes and NUTS is compiled once and reused (bayespref's NUTS
driver caches the compiled sampler by model and data shape; chains run in parallel over devices as
in :func:`bayespref.fit`).

:func:`loo`
    PSIS-LOO (``arviz_stats.loo``) per comparison or per user, with Pareto-k diagnostics; units
    whose k exceeds the threshold are refitted exactly (``arviz_stats.reloo``) when there are at
    most ``max_refits`` of them, otherwise a warning suggests :func:`kfold`.
:func:`kfold`
    leave-users-out, leave-prompts-out or comparison K-fold.
:func:`heldout_log_likelihood`
    the per-draw joint log-likelihood of held-out units under a fit.
"""

from __future__ import annotations

import warnings

import arviz as az
import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import pandas as pd
import xarray as xr
from arviz_stats import SamplingWrapper
from arviz_stats.utils import ELPDDataLOOKFold

from bayespref.checks._draws import _require_fit
from bayespref.errors import DataError, FitError, ModelError
from bayespref.inference import fit as fit_fn
from bayespref.inference.engine import NutsSettings, as_key, latent_sites, run_nuts
from bayespref.inference.fit import sample_checks
from bayespref.models import sites


def log_mean_exp(x):
    """log of the mean of exp(x) over axis 0, stably."""
    m = x.max(0)
    return m + np.log(np.mean(np.exp(x - m), axis=0))


def kfold_elpd(e_u, labels, n_samples, folds, dim="user"):
    """K-fold elpd (ArviZ's ELPDDataLOOKFold) from the pointwise elpds ``e_u`` of the units ``labels``."""
    n = len(e_u)
    return ELPDDataLOOKFold(elpd=float(e_u.sum()), se=float(np.sqrt(n) * np.std(e_u, ddof=1)), p=float("nan"),
                            n_samples=int(n_samples), n_data_points=n, scale="log", warning=False, good_k=None,
                            elpd_i=xr.DataArray(e_u, dims=dim, coords={dim: labels}), n_folds=int(folds))


OBS_UNITS = ("comparison", "ranking")
UNITS = (*OBS_UNITS, "user", "prompt")
BY = {"users": "user", "prompts": "prompt", "comparisons": "comparison", "rankings": "ranking"}
OBS_SITES = (sites.OBS, sites.USER_LL)


# ---------------------------------------------------------------------------------------------
# masked observation: the same shapes for every refit
# ---------------------------------------------------------------------------------------------
class _MaskObs(numpyro.primitives.Messenger):
    """Mask the likelihood of the observation sites (``y`` per comparison, ``user_ll`` per user)."""

    def __init__(self, fn, comparison_mask, user_mask):
        self.comparison_mask = comparison_mask
        self.user_mask = user_mask
        super().__init__(fn)

    def process_message(self, msg):
        if msg["type"] == "sample" and msg["is_observed"] and msg["name"] in OBS_SITES:
            m = self.comparison_mask if msg["name"] == sites.OBS else self.user_mask
            msg["fn"] = msg["fn"].mask(m)


def _masked(fn):
    def model(data, **kwargs):
        data = dict(data)
        cm, um = data.pop("_keep_comparison"), data.pop("_keep_user")
        with _MaskObs(None, cm, um):
            return fn(data, **kwargs)

    return model


class _Refitter:
    """NUTS on the full data with some units' likelihood masked; compiled once, reused per refit."""

    def __init__(self, fit, seed=0, **settings):
        self.fit = fit
        self.fn = fit.model.bind(fit.data)
        self.arrays = fit.model.arrays(fit.data)
        info = fit.info
        chains = settings.get("chains", info.get("chains", 4))
        # one masked model function per refitter: bayespref's NUTS driver caches the compiled sampler
        # by function and data shape, so every refit after the first reuses it
        self.masked = _masked(self.fn)
        self.settings = NutsSettings(
            chains=chains, warmup=settings.get("warmup", info.get("warmup", 1000)),
            draws=settings.get("draws", info.get("draws", 1000)),
            target_accept=settings.get("target_accept", info.get("target_accept", 0.8)),
            max_tree_depth=settings.get("max_tree_depth", info.get("max_tree_depth", 10)),
            chain_method=settings.get("chain_method"), progress=False)
        self.names = latent_sites(self.fn, self.arrays)
        self.key = as_key(seed)
        self.n_runs = 0

    def run(self, keep_comparison: np.ndarray) -> dict:
        """Posterior draws (chain, draw, ...) given only the comparisons where ``keep_comparison``."""
        u = np.asarray(self.fit.data.user)
        U = self.fit.data.n_users
        held_users = np.zeros(U, bool)
        held_users[u[~keep_comparison]] = True
        keep_user = ~held_users
        arrays = {**self.arrays, "_keep_comparison": jnp.asarray(keep_comparison),
                  "_keep_user": jnp.asarray(keep_user)}
        self.key, sub = jax.random.split(self.key)
        with sample_checks(self.fit.model):
            run = run_nuts(self.masked, arrays, sub, self.settings, log_likelihood=False)
        self.n_runs += 1
        return {k: run.samples[k] for k in self.names}


# ---------------------------------------------------------------------------------------------
# held-out log-likelihood
# ---------------------------------------------------------------------------------------------
def _obs_ids(data) -> np.ndarray:
    return np.asarray(data.comparison_ids if data.obs_dim == "comparison" else data.ranking_ids)


def _unit_codes(data, unit):
    if unit == data.obs_dim:
        return np.arange(data.n_obs), data.n_obs, _obs_ids(data)
    if unit in OBS_UNITS:
        raise DataError(f"unit={unit!r}: the data hold {data.obs_dim}s; use unit={data.obs_dim!r}.")
    if unit == "user":
        if "user" not in data.frame:
            raise DataError("unit 'user' needs a user column (Comparisons.from_frame(..., user=...)).")
        return np.asarray(data.user), data.n_users, np.asarray(data.users)
    if unit == "prompt":
        if data.prompt is None:
            raise DataError("unit 'prompt' needs a prompt column (Comparisons.from_frame(..., prompt=...)).")
        return np.asarray(data.prompt), data.n_prompts, np.asarray(data.prompts)
    raise DataError(f"unit={unit!r}: use one of {UNITS}.")


def _pointwise_loglik(fit, samples, unit):
    """Per-draw log-likelihood per unit of the fit's data (all of it): (chain, draw, n_units) numpy."""
    fn = fit.model.bind(fit.data)
    arrays = fit.model.arrays(fit.data)
    ll = numpyro.infer.log_likelihood(fn, samples, arrays, batch_ndims=2, parallel=True)
    if sites.OBS in ll:
        v = np.asarray(ll[sites.OBS], dtype=float)
        codes, n, _ = _unit_codes(fit.data, unit)
        if unit == fit.data.obs_dim:
            return v
        out = np.zeros(v.shape[:2] + (n,))
        np.add.at(out, (slice(None), slice(None), codes), v)  # segment sum over the last axis
        return out
    if sites.USER_LL in ll:
        if unit != "user":
            raise ModelError(f"{fit.model.family} has a likelihood per user (types summed out); use unit='user' "
                             "(by='users' or loo(unit='user')).")
        return np.asarray(ll[sites.USER_LL], dtype=float)
    raise ModelError("The model has no observation site 'y' or 'user_ll'; cannot compute its log-likelihood.")


def heldout_log_likelihood(fit, test, unit: str = "user") -> xr.DataArray:
    """log p(judgements of each held-out unit | draw), (chain, draw, unit), under ``fit``.

    ``test`` must be a subset of the same :class:`~bayespref.Comparisons` as the fit's data (so
    labels match; e.g. from ``data.kfold`` or ``data.split_by_user``). Units of ``test`` unseen in
    training get their own effects from the prior (see the module docstring).
    """
    fit = _require_fit(fit)
    if list(test.options) != list(fit.data.options) or list(test.users) != list(fit.data.users):
        raise DataError("test must come from the same Comparisons as the fit's data (data.kfold, "
                        "data.split_by_user, data.subset), so that option and user labels match.")
    fn, samples = fit._latent_samples()
    arrays = fit.model.arrays(test)
    ll = numpyro.infer.log_likelihood(fn, samples, arrays, batch_ndims=2, parallel=True)
    codes, n, labels = _unit_codes(test, unit)
    present = np.unique(codes)
    if sites.OBS in ll:
        v = np.asarray(ll[sites.OBS], dtype=float)
        out = np.zeros(v.shape[:2] + (n,))
        np.add.at(out, (slice(None), slice(None), codes), v)
        out = out[..., present] if unit != test.obs_dim else v
    else:
        if unit != "user":
            raise ModelError(f"{fit.model.family} has a likelihood per user; use unit='user'.")
        out = np.asarray(ll[sites.USER_LL], dtype=float)[..., present]
    dim = unit
    lab = labels[present] if unit != test.obs_dim else labels
    return xr.DataArray(out, dims=("chain", "draw", dim), coords={dim: lab})


# ---------------------------------------------------------------------------------------------
# LOO
# ---------------------------------------------------------------------------------------------
def _has_comparison_ll(fit):
    return "log_likelihood" in fit.idata.children and sites.OBS in fit.idata.log_likelihood


def _unit_tree(fit, unit):
    """A DataTree with posterior and the log-likelihood per ``unit`` (variable ``ll``)."""
    if "log_likelihood" not in fit.idata.children:
        raise FitError("The fit has no log_likelihood group; refit with bp.fit(..., log_likelihood=True).")
    ll = fit.idata.log_likelihood.dataset
    codes, n, labels = _unit_codes(fit.data, unit)
    if sites.OBS in ll:
        v = ll[sites.OBS].transpose("chain", "draw", ...).values.astype(float)
        if unit == fit.data.obs_dim:
            out, present = v, np.arange(n)
        else:
            out = np.zeros(v.shape[:2] + (n,))
            np.add.at(out, (slice(None), slice(None), codes), v)
            present = np.unique(codes)
            out = out[..., present]
    elif sites.USER_LL in ll:
        if unit != "user":
            raise ModelError(f"{fit.model.family} has a likelihood per user (types summed out); use unit='user'.")
        present = np.unique(codes)
        out = ll[sites.USER_LL].transpose("chain", "draw", "user").values.astype(float)[..., present]
    else:
        raise ModelError("The log_likelihood group has neither 'y' nor 'user_ll'.")
    post = fit.idata.posterior
    da = xr.DataArray(out, dims=("chain", "draw", unit),
                      coords={"chain": post["chain"].values, "draw": post["draw"].values, unit: labels[present]})
    dt = xr.DataTree.from_dict({"posterior": post.dataset, "log_likelihood": xr.Dataset({"ll": da})})
    return dt, present


class _Wrapper(SamplingWrapper):
    """arviz_stats.reloo adapter: refit without one unit (masked likelihood), score it exactly."""

    def __init__(self, fit, unit, present, refitter, idata_orig):
        super().__init__(model=fit, idata_orig=idata_orig)
        self.fit, self.unit, self.present, self.refitter = fit, unit, present, refitter
        self.codes = _unit_codes(fit.data, unit)[0]

    def sel_observations(self, idx):
        target = self.present[int(idx)]
        held = self.codes == target
        return ~held, held

    def sample(self, modified_observed_data):
        return self.refitter.run(np.asarray(modified_observed_data))

    def get_inference_data(self, fitted_model):
        return fitted_model

    def log_likelihood__i(self, excluded_obs, idata__i):
        v = _pointwise_loglik(self.fit, idata__i, self.fit.data.obs_dim if sites.OBS in _obs_names(self.fit) else "user")
        if sites.OBS in _obs_names(self.fit):
            v = v[..., np.asarray(excluded_obs)].sum(-1)
        else:
            u = np.unique(np.asarray(self.fit.data.user)[np.asarray(excluded_obs)])
            v = v[..., u].sum(-1)
        return xr.DataArray(v[..., None], dims=("chain", "draw", "__held__"))


def _obs_names(fit):
    return set(fit.idata.log_likelihood.dataset.data_vars) if "log_likelihood" in fit.idata.children else set()


def loo(fit, unit: str | None = None, refit: bool = True, max_refits: int = 10, k_threshold: float | None = None,
        seed: int = 0, **nuts_settings):
    r"""PSIS-LOO per comparison or per user, with exact refits where Pareto k is too large.

    .. math:: \mathrm{elpd}_{loo} = \sum_i \log p(y_i \mid y_{-i})

    estimated by Pareto-smoothed importance sampling (``arviz_stats.loo``); ``pareto_k`` of the
    result says how reliable each unit's estimate is. Units with k above ``k_threshold`` (ArviZ's
    default, min(1 - 1/log10(S), 0.7)) are refitted without that unit and scored exactly
    (``arviz_stats.reloo``), NUTS compiled once for all refits, when there are at most
    ``max_refits`` of them and ``refit`` is True; otherwise a warning names them.

    Parameters
    ----------
    fit : Fit
        A NUTS fit with a ``log_likelihood`` group.
    unit : {"comparison", "user"} or None
        None: per comparison when the model has a per-comparison likelihood, else per user.
    nuts_settings : dict
        Override the refits' NUTS settings (``chains``, ``warmup``, ``draws``, ``target_accept``);
        default: the fit's own.

    Returns
    -------
    arviz_stats ELPDDataLOO
        Pointwise (``elpd_i``, ``pareto_k`` over the unit dim), with ``n_refits`` set.
    """
    fit = _require_fit(fit)
    if fit.info.get("method") != "nuts":
        raise FitError("loo needs a NUTS fit (PSIS weights from SVI draws are not posterior draws); "
                       "refit with method='nuts' or use kfold.")
    obs = fit.data.obs_dim
    if unit is None:
        unit = obs if _has_comparison_ll(fit) else "user"
    if unit not in (obs, "user"):
        raise DataError(f"unit={unit!r}: LOO is per {obs!r} or per 'user' (prompts: use kfold(by='prompts')).")
    dt, present = _unit_tree(fit, unit)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*[Pp]areto.*")
        res = az.loo(dt, var_name="ll", pointwise=True)
    S = dt.posterior.sizes["chain"] * dt.posterior.sizes["draw"]
    thr = min(1 - 1 / np.log10(S), 0.7) if k_threshold is None else float(k_threshold)
    bad = np.where(np.asarray(res.pareto_k) > thr)[0]
    res.n_refits = 0
    res.k_threshold = thr
    if len(bad) and refit and len(bad) <= max_refits:
        refitter = _Refitter(fit, seed=seed, **nuts_settings)
        wrapper = _Wrapper(fit, unit, present, refitter, dt)
        res = az.reloo(wrapper, loo_orig=res, var_name="ll", k_threshold=thr, pointwise=True)
        res.n_refits = refitter.n_runs
        res.k_threshold = thr
    elif len(bad):
        labels = np.asarray(res.pareto_k[unit].values)[bad]
        warnings.warn(f"{len(bad)} {unit}(s) have Pareto k > {thr:.2f} ({list(labels[:5])}"
                      f"{' ...' if len(bad) > 5 else ''}): their PSIS-LOO estimates are unreliable"
                      + ("" if not refit else f" and exceed max_refits={max_refits}")
                      + ". Use kfold(fit, by='users') for an exact estimate, or raise max_refits.",
                      UserWarning, stacklevel=2)
    return res


# ---------------------------------------------------------------------------------------------
# K-fold
# ---------------------------------------------------------------------------------------------
def _held(data, test, unit):
    """Codes (in ``data``) of the units of the subset ``test``, sorted."""
    if unit == data.obs_dim:
        return np.sort(pd.Index(_obs_ids(data)).get_indexer(_obs_ids(test)))
    return np.unique(_unit_codes(test, unit)[0])


def kfold(fit, by: str = "users", folds: int = 5, seed: int = 0, **nuts_settings):
    r"""Grouped K-fold cross-validation: leave users, prompts or comparisons out.

    The units (users, prompts or comparisons) are split into ``folds`` groups
    (:meth:`Comparisons.kfold`); for each, the model is refitted without them and scores them with
    the joint log predictive density of each unit (module docstring). For SVI fits each fold is a
    new SVI fit on the training subset; for NUTS fits the held-out likelihood is masked, so one
    compiled sampler serves every fold.

    Returns
    -------
    arviz_stats ELPDDataLOOKFold
        ``elpd``, ``se``, pointwise ``elpd_i`` over the unit dim (``user``, ``prompt`` or
        ``comparison``), ``n_folds``.
    """
    fit = _require_fit(fit)
    if by not in BY:
        raise DataError(f"by={by!r}: use one of {sorted(BY)}.")
    unit = BY[by]
    data = fit.data
    codes, n, labels = _unit_codes(data, unit)
    splits = data.kfold(by=unit, k=int(folds), seed=seed)
    if unit != "user" and sites.USER_LL in _obs_names(fit):
        raise ModelError(f"{fit.model.family} has a likelihood per user (types summed out); "
                         "cross-validate it by='users'.")
    e = np.full(n, np.nan)
    present = np.unique(codes)
    method = fit.info.get("method", "nuts")
    if method == "nuts":
        refitter = _Refitter(fit, seed=seed, **nuts_settings)
        S = None
        for _, test in splits:
            held_units = _held(data, test, unit)
            keep = ~np.isin(codes, held_units)
            samples = refitter.run(keep)
            v = _pointwise_loglik(fit, samples, unit)  # (C, D, n)
            S = v.shape[0] * v.shape[1]
            e[held_units] = log_mean_exp(v.reshape(S, -1)[:, held_units])
    else:
        info = fit.info
        S = None
        for train, test in splits:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                kw = ({} if method == "laplace" else
                      {"guide": info.get("guide", "normal"), "lr": info.get("lr", 0.01)})
                f = fit_fn(fit.model, train, method="laplace" if method == "laplace" else "svi", seed=seed,
                           progress=False, num_samples=info.get("num_samples", 1000), **kw)
            lu = heldout_log_likelihood(f, test, unit)
            v = lu.transpose("chain", "draw", unit).values
            S = v.shape[0] * v.shape[1]
            e[_held(data, test, unit)] = log_mean_exp(v.reshape(S, -1))
    e = e[present]
    return kfold_elpd(e, labels[present], S, folds, dim=unit)
