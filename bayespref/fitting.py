"""The front door: :func:`fit` runs inference and returns a :class:`Fit`; :func:`load_fit` reads one back."""

from __future__ import annotations

import json
import os
import pathlib
import tempfile
import warnings

import numpy as np
import pandas as pd

from . import _jax  # noqa: F401
import arviz as az
import jax
import xarray as xr
from numpyro.infer import Predictive

from . import __version__
from ._io import usual_mode
from .data import Comparisons
from .errors import ConvergenceWarning, DataError, FitError, ModelError, SeparationWarning
from .infer import (NutsSettings, SviSettings, as_key, draws_with_deterministics, init_from_draws, latent_sites,
                    mass_from_draws, run_nuts, run_svi, svi_draws)
from .models import CustomModel, ModelSpec, spec_from_dict

METHODS = ("nuts", "svi", "laplace")
_META_GROUP = "bayespref"

#: R-hat above this, bulk ESS per chain below ``ESS_PER_CHAIN`` or any divergence triggers a warning
RHAT_MAX = 1.01
ESS_PER_CHAIN = 100
#: users checked by the automatic convergence check after a NUTS fit (all population parameters are)
AUTO_CHECK_USERS = 500


def fit(model, data, method: str = "nuts", seed=0, *, chains: int = 4, warmup: int = 1000,
        draws: int = 1000, target_accept: float = 0.8, max_tree_depth: int = 10, dense_mass=False,
        steps: int = 20000, lr: float = 0.01, guide: str = "normal", batch_size: int | None = None,
        user_batch_size: int | None = None, tol: float = 1e-4, num_samples: int = 1000, posterior_predictive: bool = False,
        log_likelihood: bool = True, progress: bool = True, init: "Fit | None" = None,
        laplace_options: dict | None = None) -> "Fit":
    """Fit a preference model to paired comparisons.

    Parameters
    ----------
    model : ModelSpec or callable
        A family spec (:class:`~bayespref.BradleyTerry`, :class:`~bayespref.Hierarchical`, ...) or a
        NumPyro function following the model-function contract (:mod:`bayespref.models.base`).
    data : Comparisons
        The validated comparisons.
    method : {"nuts", "svi"}
        ``"nuts"``: NumPyro's NUTS, ``chains`` chains of ``warmup`` + ``draws`` iterations, run in
        parallel over devices (on a CPU, over virtual devices). The sampler is compiled once per
        model, data shape and settings and reused by later fits (``fit.info["sampler_reused"]``).
        ``dense_mass``: True adapts a dense mass matrix (default: diagonal); a list of tuples of
        site names, dense blocks over those sites. ``"svi"``: an autoguide (``guide`` in
        {"normal", "mvn", "lowrank", "laplace"}) fitted with Adam (``lr``) for at most ``steps``
        steps, optionally on minibatches of ``batch_size`` comparisons, stopping when the loss
        changes by less than ``tol`` (relative) between two checks; then ``num_samples`` draws.
        SVI intervals are approximate (a mean-field guide is too narrow for global parameters).
        ``guide="hierarchical"`` (Hierarchical only; :class:`bayespref.guides.HierarchicalGuide`):
        population parameters jointly Gaussian and each user's effects Gaussian given them, which
        keeps the coupling that the mean-field guide loses. ``user_batch_size``: each step uses
        that many users with all their comparisons (Hierarchical with user-varying features and
        no worths), for data with many users. The guide starts where NumPyro starts it; when no
        finite gradient is found there (e.g. 32 features), at the prior median
        (``fit.info["svi_init"]``). ``fit.info["svi_step_seconds"]``: time per step after the first
        (compiled) chunk. ``"laplace"`` (Hierarchical with user-varying feature weights, logit
        link, no ties; :mod:`bayespref.laplace`): each user's effects integrated out by an
        importance-corrected Laplace approximation, the global parameters fitted by L-BFGS on
        that marginal posterior and given a Gaussian at its mode; ``num_samples`` draws. For
        large data (e.g. 1M judgements of 20k users) it gives NUTS-like intervals for the globals
        in about a minute on a CPU; ``laplace_options`` sets
        :class:`bayespref.laplace.LaplaceSettings` (importance draws, covariance, ...).
    seed : int or jax PRNG key
        Same seed, same result.
    posterior_predictive : bool
        Also draw replicated outcomes (group ``posterior_predictive``).
    log_likelihood : bool
        Store the pointwise log-likelihood (group ``log_likelihood``, needed for LOO). It holds
        draws x comparisons values: for very large data (1M comparisons) pass False to save
        memory and time.
    progress : bool
        Show a progress bar.
    init : Fit, optional
        NUTS only: start the chains from draws of another fit of the same model and data (e.g. a
        quick ``method="svi"`` fit; one draw per chain, spread over its draws), instead of NumPyro's
        random initialisation. With a diagonal mass matrix (``dense_mass=False``) and at least 20
        draws in ``init``, warm-up also starts from that fit's posterior variances (on the
        unconstrained scale) instead of the identity (``fit.info["init_mass_matrix"]``), which
        shortens its first, most expensive window; warm-up still runs in full and re-adapts step
        size and mass matrix.

    Returns
    -------
    Fit
        Holds the ArviZ ``DataTree`` (``fit.idata``), the spec and the data.

    Examples
    --------
    >>> import bayespref as bp
    >>> data = bp.load_dataset("citations").comparisons()
    >>> result = bp.fit(bp.BradleyTerry(), data, seed=1, progress=False)   # doctest: +SKIP
    >>> result.summary()                                                    # doctest: +SKIP
    """
    spec = _as_spec(model)
    if not isinstance(data, Comparisons):
        raise DataError(
            f"fit() needs a bayespref.Comparisons as `data`, got {type(data).__name__}. Build one with "
            "bayespref.Comparisons.from_frame(df, a=..., b=..., outcome=...)."
        )
    if method not in METHODS:
        raise ModelError(f"method={method!r} is unknown; use one of {METHODS}.")
    spec.check(data)
    fn = spec.bind(data)
    arrays = spec.arrays(data)
    sizes = spec.sizes(data)
    dims, coords = _dims_coords(spec, data, sizes, fn, arrays)
    # the sampler's log density may use the comparisons grouped by user (faster; same density)
    grouped = spec.by_user_arrays(data) if method == "nuts" or batch_size is None else None
    sampler_arrays = arrays if grouped is None else {**arrays, "by_user": grouped}
    if init is not None and method != "nuts":
        raise ModelError(f"init=... starts NUTS chains; it is not used with method={method!r}.")
    if laplace_options is not None and method != "laplace":
        raise ModelError(f"laplace_options=... sets method='laplace'; it is not used with method={method!r}.")
    if method == "nuts":
        start = imm = None
        # users' effects in partially centred coordinates where the model gives a weight (same posterior)
        centring = spec.centring_weight(data)
        if centring is not None:
            sampler_arrays = {**sampler_arrays, "centring": jax.numpy.asarray(centring)}
        if init is not None:
            if not isinstance(init, Fit):
                raise ModelError(f"init must be a bayespref Fit (e.g. from method='svi'), got {type(init).__name__}.")
            if init.model != spec or init.data.n_comparisons != data.n_comparisons:
                raise ModelError("init: the given fit is of another model or data; start from a fit of the same "
                                 "model on the same comparisons.")
            post = init.idata.posterior
            if centring is not None:
                post = spec.centred_draws(post, sampler_arrays, sizes)
            start = init_from_draws(fn, sampler_arrays, post, chains)
            if dense_mass is False:
                imm = mass_from_draws(fn, sampler_arrays, post)
        run = run_nuts(fn, sampler_arrays, seed, NutsSettings(chains=chains, warmup=warmup, draws=draws,
                                                      target_accept=target_accept,
                                                      max_tree_depth=max_tree_depth, dense_mass=dense_mass,
                                                      progress=progress, init=start,
                                                      inverse_mass_matrix=imm),
                       log_likelihood=log_likelihood)
        run.samples.pop("z_pc", None)  # the sampler's coordinates; the posterior keeps z and the effects
        dt = _nuts_datatree(run, arrays, dims, coords)
        extra = {"method": "nuts", "chains": chains, "warmup": warmup, "draws": draws,
                 "target_accept": target_accept, "max_tree_depth": max_tree_depth, "dense_mass": str(dense_mass),
                 "sampler_reused": bool(run.cached), "init_mass_matrix": imm is not None,
                 "centring": None if centring is None else float(spec.centring),
                 "compile_s": round(run.compile_s, 3), "warmup_s": round(run.warmup_s, 3),
                 "sampling_s": round(run.sampling_s, 3)}
    elif method == "laplace":
        from .laplace import LaplaceSettings, run_laplace

        if batch_size is not None or user_batch_size is not None:
            raise ModelError("method='laplace' uses all comparisons at once; drop batch_size/user_batch_size.")
        try:
            settings = LaplaceSettings(num_samples=num_samples, **(laplace_options or {}))
        except TypeError as err:
            raise ModelError(f"laplace_options: {err}; see bayespref.laplace.LaplaceSettings.") from err
        latent, extra = run_laplace(spec, data, arrays, grouped, sizes, seed, settings)
        draws_ = draws_with_deterministics(fn, arrays, latent)
        dt = _svi_datatree(fn, arrays, draws_, dims, coords, log_likelihood)
        extra = {"method": "laplace", "num_samples": num_samples, **extra}
        if not extra["laplace_converged"]:
            warnings.warn(f"method='laplace': L-BFGS stopped without converging ({extra['laplace_message']}); "
                          "the intervals may be off. Compare with method='nuts' on a subset.",
                          ConvergenceWarning, stacklevel=2)
    else:
        if user_batch_size is not None and (grouped is None or batch_size is not None):
            raise ModelError(
                "user_batch_size needs a Hierarchical model with user-varying feature weights and no worths "
                "(and no batch_size); use batch_size=... to subsample comparisons instead.")
        svi_guide = guide
        if guide == "hierarchical":
            from .guides import HierarchicalGuide
            from .models.hierarchical import Hierarchical

            if not isinstance(spec, Hierarchical):
                raise ModelError(f"guide='hierarchical' is for Hierarchical models, not {spec.family}.")
            svi_guide = HierarchicalGuide(fn, spec, sizes)
        res = run_svi(fn, sampler_arrays, seed, SviSettings(steps=steps, lr=lr, guide=svi_guide,
                                                    batch_size=batch_size, user_batch_size=user_batch_size,
                                                    tol=tol, num_samples=num_samples, progress=progress))
        draws_ = svi_draws(fn, arrays, res, jax.random.fold_in(as_key(seed), 1), num_samples)
        dt = _svi_datatree(fn, arrays, draws_, dims, coords, log_likelihood)
        dt["svi"] = xr.DataTree(xr.Dataset({"loss": ("step", res.losses)}, attrs={"converged": int(res.converged)}))
        extra = {"method": "svi", "guide": guide, "steps": res.steps, "converged": bool(res.converged), "lr": lr,
                 "svi_step_seconds": res.step_seconds, "svi_init": res.init,
                 "batch_size": batch_size, "user_batch_size": user_batch_size, "num_samples": num_samples}
        if not res.converged:
            warnings.warn(
                f"SVI stopped at {res.steps} steps without meeting the convergence rule (tol={tol}). "
                "Increase steps=..., raise lr, or check fit.idata['svi'].loss.",
                ConvergenceWarning, stacklevel=2)
    dt = spec.postprocess(dt, data)
    result = Fit(dt, spec, data, extra)
    if posterior_predictive:
        result.add_posterior_predictive(seed=seed)
    if method == "nuts":
        result._warn_convergence()
    if spec.has_types and spec.n_types > 1:
        result._warn_separation()
    return result


def _as_spec(model) -> ModelSpec:
    if isinstance(model, ModelSpec):
        return model
    if isinstance(model, type) and issubclass(model, ModelSpec):
        return model()
    if callable(model):
        return CustomModel(model)
    raise ModelError(f"`model` must be a bayespref model spec or a NumPyro function, got {type(model).__name__}.")


def _dims_coords(spec, data, sizes, fn, arrays):
    dims = {k: v for k, v in spec.dims(sizes).items()}
    dims["y"] = ["comparison"]
    coords = spec.coords(data)
    effects = _effect_names(spec, data, sizes)
    if effects is not None and len(effects):
        coords["effect"] = effects
        coords["effect_bis"] = effects
    return dims, coords


def _effect_names(spec, data, sizes):
    blocks = spec.effect_blocks(sizes["n_options"], sizes["n_features"])
    if blocks is None:
        return None
    names = []
    for name, _ in blocks:
        labels = spec.coords(data)["option" if name == "worth" else "feature"]
        names += [f"{name}[{x}]" for x in labels]
    return np.asarray(names, dtype=str)


def _nuts_datatree(run, arrays, dims, coords):
    groups = {"posterior": run.samples, "sample_stats": run.stats, "observed_data": {"y": np.asarray(arrays["y"])}}
    if run.log_likelihood:
        groups["log_likelihood"] = run.log_likelihood
    return az.from_dict(groups, coords=coords, dims=dims)


def _svi_datatree(fn, arrays, draws, dims, coords, with_log_likelihood):
    from numpyro.infer import log_likelihood

    groups = {"posterior": draws, "observed_data": {"y": np.asarray(arrays["y"])}}
    if with_log_likelihood:
        ll = log_likelihood(fn, {k: v for k, v in draws.items()}, arrays, batch_ndims=2)
        groups["log_likelihood"] = {k: np.asarray(v) for k, v in ll.items()}
    return az.from_dict(groups, coords=coords, dims=dims)


class Fit:
    """A fitted preference model: the ArviZ ``DataTree`` plus what is needed to predict and save.

    Attributes
    ----------
    idata : xarray.DataTree
        Groups ``posterior``, ``sample_stats`` (NUTS), ``log_likelihood``, ``observed_data``, and
        ``posterior_predictive`` when requested; dims ``option``, ``feature``, ``user``,
        ``covariate``, ``comparison`` carry the original labels.
    model : ModelSpec
    data : Comparisons
        The training data (label maps for new comparisons).
    info : dict
        Inference settings (method, chains, draws, ...).
    """

    def __init__(self, idata, model: ModelSpec, data: Comparisons, info: dict | None = None):
        self.idata = idata
        self.model = model
        self.data = data
        self.info = dict(info or {})

    # -- summaries ---------------------------------------------------------------------------------
    @property
    def sizes(self):
        return self.model.sizes(self.data)

    def summary(self, var_names=None, ci_prob: float = 0.9) -> pd.DataFrame:
        """Posterior summary (mean, sd, interval, ESS, R-hat) of the model's main parameters."""
        var_names = var_names or self.model.summary_vars(self.sizes)
        kind = "all" if self.info.get("method") == "nuts" else "stats"
        # one variable at a time: arviz 1.3 mislabels rows of 2-D variables that share a dim with
        # another variable in the same call
        return pd.concat([az.summary(self.idata, var_names=[v], ci_prob=ci_prob, kind=kind) for v in var_names])

    def diagnostics(self, max_users: int | None = None) -> dict:
        """Max R-hat, min bulk/tail ESS over the main parameters, and the number of divergences.

        The main parameters are the model's population parameters and every user's effects.
        ``max_users``: check at most this many users (evenly spaced over the user index) instead of
        all; ArviZ computes the diagnostics one parameter at a time (about 3 ms per parameter per
        1,000 draws for the three), so all 20,000 users x 8 features of a large fit take minutes.
        """
        names = [v for v in self.model.summary_vars(self.sizes) if v in self.idata.posterior]
        names += [v for v in ("user_worth", "user_weight") if v in self.idata.posterior]
        post = self.idata.posterior.dataset[names]
        n_users = post.sizes.get("user", 0)
        if max_users is not None and n_users > max_users:
            post = post.isel(user=np.linspace(0, n_users - 1, max_users).round().astype(int))
        out = {"max_rhat": float("nan"), "min_ess_bulk": float("nan"), "min_ess_tail": float("nan"),
               "divergences": 0}
        if self.info.get("method") != "nuts" or not names:
            return out
        out["max_rhat"] = _extreme(az.rhat(post), max)
        out["min_ess_bulk"] = _extreme(az.ess(post, method="bulk"), min)
        out["min_ess_tail"] = _extreme(az.ess(post, method="tail"), min)
        if "sample_stats" in self.idata.children and "diverging" in self.idata.sample_stats:
            out["divergences"] = int(self.idata.sample_stats["diverging"].sum())
        return out

    def _warn_convergence(self):
        d = self.diagnostics(max_users=AUTO_CHECK_USERS)
        self.info["convergence_check"] = {**d, "users_checked": min(AUTO_CHECK_USERS, self.sizes.get("n_users", 0))}
        chains = int(self.idata.posterior.sizes["chain"])
        problems = []
        if d["max_rhat"] > RHAT_MAX:
            problems.append(f"max R-hat {d['max_rhat']:.3f} > {RHAT_MAX}")
        if d["min_ess_bulk"] < ESS_PER_CHAIN * chains:
            problems.append(f"min bulk ESS {d['min_ess_bulk']:.0f} < {ESS_PER_CHAIN * chains}")
        if d["divergences"]:
            problems.append(f"{d['divergences']} divergent transitions")
        if problems:
            warnings.warn(
                "Convergence problems: " + "; ".join(problems) + ". Try more warmup/draws "
                "(warmup=2000, draws=2000), target_accept=0.95 for divergences, stronger priors, or "
                "check fit.summary() for the parameters concerned"
                + (f" (checked on {AUTO_CHECK_USERS} of {self.sizes.get('n_users')} users; fit.diagnostics() checks "
                   "all)" if self.sizes.get("n_users", 0) > AUTO_CHECK_USERS else "") + ".",
                ConvergenceWarning, stacklevel=3)

    def _warn_separation(self, min_share: float = 0.05):
        from .mixture import separation

        sep = separation(self.membership(), self.idata, min_share=min_share)
        empty = sep[sep["share"] < min_share]
        if len(empty):
            warnings.warn(
                f"Latent types {list(empty.index)} are nearly empty (shares {empty['share'].round(3).tolist()}): "
                f"the data support fewer than {len(sep)} types (see bayespref.selection.compare_k).",
                SeparationWarning, stacklevel=3)
        bad = sep[(sep["share"] >= min_share) & ~sep["separated"]]
        if len(bad):
            warnings.warn(
                f"Latent types {list(bad.index)} are not well separated (membership certainty "
                f"{bad['certainty'].round(2).tolist()}, distance to the nearest type "
                f"{bad['distance'].round(1).tolist()}); their summaries mix. Consider fewer types "
                "(bayespref.selection.compare_k) or more judgements per user.",
                SeparationWarning, stacklevel=3)

    def worths(self, reference=None, ci_prob: float = 0.9, level: str = "population") -> pd.DataFrame:
        """Tidy table of option worths (log-worth scale), optionally relative to a reference option.

        For models with group effects on the worths (``Hierarchical`` with user covariates),
        ``level="population"`` (default) gives the worths of the average training user,
        :math:`\\mu + B^\\top \\bar c`, and ``level="baseline"`` the worths :math:`\\mu` of users
        whose covariates are all zero (every categorical covariate at its reference level).

        Columns: ``mean``, ``sd``, ``lower``, ``upper`` (equal-tailed ``ci_prob`` interval) and
        ``rank`` (1 = best by posterior mean).
        """
        post = self.idata.posterior
        if "worth" not in post:
            raise ModelError("This model has no option worths (it uses features only).")
        if level not in ("population", "baseline"):
            raise ModelError(f"level={level!r}: use 'population' or 'baseline'.")
        w = post["worth"]
        if level == "population" and "group_worth" in post:
            names = list(self.data.covariate_names)
            cols = [names.index(c) for c in post["covariate"].values]
            seen = np.unique(np.asarray(self.data.user)[np.asarray(self.data.user) >= 0])  # users with data
            cbar = xr.DataArray(np.asarray(self.data.covariates)[seen][:, cols].mean(0), dims="covariate",
                                coords={"covariate": post["covariate"].values})
            w = w + (cbar * post["group_worth"]).sum("covariate")
            w = w - w.mean("option")  # only differences are identified
        if reference is not None:
            labels = list(w["option"].values)
            if reference not in labels:
                raise DataError(f"reference={reference!r} is not an option; options: {labels}.")
            w = w - w.sel(option=reference)
        if "type" in w.dims:  # LatentTypes: one block per type
            return pd.concat({int(k): _tidy(w.sel(type=k), "option", ci_prob).assign(
                rank=lambda t: t["mean"].rank(ascending=False).astype(int)) for k in w["type"].values},
                names=["type"])
        return _tidy(w, "option", ci_prob).assign(rank=lambda t: t["mean"].rank(ascending=False).astype(int))

    # -- prediction ----------------------------------------------------------------------------------
    def _latent_samples(self):
        fn = self.model.bind(self.data)
        arrays = self.model.arrays(self.data)
        names = latent_sites(fn, arrays)
        post = self.idata.posterior
        missing = [n for n in names if n not in post]
        if missing:
            raise FitError(f"The posterior lacks the latent variables {missing}; the fit is incomplete.")
        return fn, {n: np.asarray(post[n].values) for n in names}

    def predict(self, new=None, ci_prob: float = 0.9, seed=0, return_draws: bool = False, user_covariates=None):
        """P(a preferred) with intervals for new (or the training) comparisons.

        Parameters
        ----------
        new : DataFrame or Comparisons, optional
            New comparisons in the training frame's column layout (outcome optional). Users not in
            the training data are predicted at the population level (see the model's docstring);
            options must be known unless the model uses features only.
        ci_prob : float
            Probability mass of the equal-tailed interval.
        return_draws : bool
            Return the draws as an ``xarray.DataArray`` (chain, draw, comparison) instead.
        user_covariates : DataFrame, optional
            Covariates of new users (indexed by user id), for models with group effects.

        Returns
        -------
        pandas.DataFrame
            The comparisons with ``p_a`` (posterior mean), ``p_a_sd``, ``p_a_lower``, ``p_a_upper``
            (and ``p_tie`` with ties).
        """
        if new is None:
            data = self.data
        elif isinstance(new, Comparisons):
            data = new
        else:
            data = self.data.encode(new, user_covariates=user_covariates)
        if self.model.uses_worths(self.data) and np.any((np.asarray(data.a) < 0) | (np.asarray(data.b) < 0)):
            raise DataError(
                "The new comparisons involve options the model never saw, and it estimates a worth per "
                "option, so they cannot be predicted. Fit a features-only model (worths=False) to "
                "predict unseen options.")
        fn, samples = self._latent_samples()
        arrays = self.model.predict_arrays(self.data, data)
        pred = Predictive(fn, posterior_samples=samples, batch_ndims=2, return_sites=["p_a", "p_tie"])
        out = pred(as_key(seed), arrays, predict=True)
        p_a = xr.DataArray(np.asarray(out["p_a"]), dims=("chain", "draw", "comparison"))
        if return_draws:
            return p_a
        return self._prediction_table(data, out, ci_prob)

    @staticmethod
    def _prediction_table(data, out, ci_prob):
        table = data.frame.reset_index(drop=True).copy()
        for name in ("p_a", "p_tie"):
            if name not in out:
                continue
            da = xr.DataArray(np.asarray(out[name]), dims=("chain", "draw", "comparison"))
            t = _tidy(da, "comparison", ci_prob)
            table[name] = t["mean"].to_numpy()
            table[f"{name}_sd"] = t["sd"].to_numpy()
            table[f"{name}_lower"] = t["lower"].to_numpy()
            table[f"{name}_upper"] = t["upper"].to_numpy()
        return table

    def add_posterior_predictive(self, seed=0) -> "Fit":
        """Draw replicated outcome codes for the training comparisons (group ``posterior_predictive``)."""
        fn, samples = self._latent_samples()
        arrays = self.model.predict_arrays(self.data, self.data)
        out = Predictive(fn, posterior_samples=samples, batch_ndims=2, return_sites=["y"])(
            as_key(seed), arrays, predict=True)
        post = self.idata.posterior
        ds = xr.Dataset({"y": (("chain", "draw", "comparison"), np.asarray(out["y"]))},
                        coords={"chain": post["chain"].values, "draw": post["draw"].values,
                                "comparison": np.arange(self.data.n_comparisons)})
        self.idata["posterior_predictive"] = xr.DataTree(ds)
        return self

    # -- latent types -------------------------------------------------------------------------------
    def membership(self, new=None, user_covariates=None, draws: bool = False) -> xr.DataArray:
        """Posterior type-membership probabilities per user (``LatentTypes`` fits).

        Parameters
        ----------
        new : DataFrame or Comparisons, optional
            Judgements of users (new or known) in the training frame's column layout; their
            membership is inferred from these judgements alone, with the fitted parameters (no
            refit). Default: the training users and their training judgements.
        user_covariates : DataFrame, optional
            Covariates of new users, for membership models with covariates.
        draws : bool
            Return (chain, draw, user, type) draws instead of the posterior mean (user, type).

        Returns
        -------
        xarray.DataArray with dims (user, type), user coords the original labels.
        """
        out, labels = self._history_sites(new, user_covariates, "membership")
        da = _membership_array(out, labels)
        return da if draws else da.mean(("chain", "draw"))

    def user_log_likelihood(self, new=None, user_covariates=None) -> xr.DataArray:
        """log p(judgements of each user | parameters), types summed out: (chain, draw, user).

        For users not in the training data (``new``), this is the predictive density used by
        leave-users-out cross-validation (average it over draws on the probability scale).
        """
        out, labels = self._history_sites(new, user_covariates, "user_log_lik")
        return xr.DataArray(out, dims=("chain", "draw", "user"), coords={"user": labels})

    def _history_sites(self, new, user_covariates, site):
        hist, labels = self._history(new, user_covariates)
        fn, samples = self._latent_samples()
        query = {**self.model.arrays(self.data.subset([0]), with_outcome=False), "history": hist}
        out = Predictive(fn, posterior_samples=samples, batch_ndims=2, return_sites=[site])(
            jax.random.PRNGKey(0), query, predict=True)
        return np.asarray(out[site]), labels

    def few_shot(self, judgements, queries=None, user_covariates=None, ci_prob: float = 0.9):
        """Type membership and predictions for (new) users from a handful of their judgements.

        The users' membership is their posterior given ``judgements`` under the fitted parameters
        (no refit); ``queries`` (comparisons of the same users, outcome optional) are predicted as
        the membership-weighted mixture of the types' predictions.

        Returns ``(membership, predictions)``: a DataArray (user, type) of posterior mean
        probabilities and, when ``queries`` are given, a DataFrame as from :meth:`predict`.
        """
        hist, labels = self._history(judgements, user_covariates)
        q = None if queries is None else self.data.encode(queries, user_covariates=user_covariates)
        arrays = {**self.model.arrays(self.data.subset([0]) if q is None else q, with_outcome=False), "history": hist}
        if q is not None:  # queries index the judgements' users (-1: a user without judgements)
            local = (pd.Index(labels).get_indexer(q.frame["user"].to_numpy()) if "user" in q.frame
                     else np.zeros(q.n_comparisons, dtype=int))
            arrays["user"] = jax.numpy.asarray(local, dtype=jax.numpy.int32)
        fn, samples = self._latent_samples()
        out = Predictive(fn, posterior_samples=samples, batch_ndims=2,
                         return_sites=["membership", "p_a", "p_tie"])(jax.random.PRNGKey(0), arrays, predict=True)
        membership = _membership_array(np.asarray(out["membership"]), labels).mean(("chain", "draw"))
        return membership, None if q is None else self._prediction_table(q, out, ci_prob)

    def _history(self, new, user_covariates):
        """History arrays (judgements with users indexed locally) and the users' labels."""
        spec = self.model
        if not spec.has_types:
            raise ModelError(f"{spec.family} has no user types; membership needs a LatentTypes fit.")
        if new is None:
            return spec.history_arrays(self.data), np.asarray(self.data.users)
        data = new if isinstance(new, Comparisons) else self.data.encode(new, user_covariates=user_covariates)
        if np.any(np.asarray(data.y) < 0):
            raise DataError("Membership needs the outcomes of the judgements (an outcome column).")
        if "user" not in data.frame:
            raise DataError("Membership needs a user column in the judgements.")
        codes, labels = pd.factorize(data.frame["user"].to_numpy())
        first = np.unique(codes, return_index=True)[1]
        arr = spec.arrays(data)
        cov = np.asarray(data.comparison_covariates)[first][:, [list(data.covariate_names).index(c)
                                                                 for c in spec.covariate_names(data)]]
        hist = {k: arr[k] for k in ("a", "b", "y", "xa", "xb")}
        hist["user"] = jax.numpy.asarray(codes, dtype=jax.numpy.int32)
        hist["covariates"] = jax.numpy.asarray(cov.reshape(len(labels), -1))
        hist["train_user"] = jax.numpy.asarray(self.data.users.get_indexer(labels), dtype=jax.numpy.int32)
        return hist, np.asarray(labels)

    # -- plots -------------------------------------------------------------------------------------
    def plot_worths(self, reference=None, ci_prob: float = 0.9, ax=None):
        """Forest plot of the worths; returns the matplotlib Figure."""
        from .plots import forest

        return forest(self.worths(reference=reference, ci_prob=ci_prob), ax=ax,
                      xlabel="log-worth" + (f" relative to {reference}" if reference is not None else ""))

    # -- persistence -------------------------------------------------------------------------------
    def save(self, path) -> pathlib.Path:
        """Write the fit to a NetCDF file (atomically: a failure leaves no partial file)."""
        path = pathlib.Path(path)
        meta = {
            "version": __version__,
            "spec": self.model.to_dict(),
            "data": self.data.to_json(),
            "info": self.info,
        }
        if isinstance(self.model, CustomModel):
            meta["spec"] = {"family": "custom"}
        dt = self.idata.copy()
        dt[_META_GROUP] = xr.DataTree(xr.Dataset(attrs={"meta": json.dumps(meta, default=_json_default)}))
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        usual_mode(tmp)
        try:
            dt.to_netcdf(tmp, engine="h5netcdf")
            os.replace(tmp, path)
        except BaseException:
            pathlib.Path(tmp).unlink(missing_ok=True)
            raise
        return path

    def __repr__(self):
        s = self.sizes
        return (f"<bayespref.Fit {self.model.family} by {self.info.get('method', '?')}: "
                f"{self.data.n_comparisons} comparisons, {s['n_options']} options, {s['n_users']} users>")

    # -- checks (bayespref.checks) -------------------------------------------------------------------
    def check(self, by=None, seed=0) -> dict:
        """All posterior predictive checks of :mod:`bayespref.checks` (a dict name -> PPCheck)."""
        from .checks import check_all

        return check_all(self, by=by, seed=seed)

    def convergence(self, **kwargs):
        """The convergence report of :func:`bayespref.checks.convergence` (text and HTML)."""
        from .checks import convergence

        return convergence(self, **kwargs)


def load_fit(path, model=None) -> Fit:
    """Read a fit written by :meth:`Fit.save`.

    ``model`` is needed only for fits of a :class:`~bayespref.models.CustomModel` (functions are not
    saved). Raises :class:`~bayespref.FitError` for missing, truncated or foreign files.
    """
    path = pathlib.Path(path)
    if not path.exists():
        raise FitError(f"No saved fit at {path}.")
    try:
        with xr.open_datatree(path, engine="h5netcdf") as f:
            dt = f.load()
    except Exception as exc:  # corrupt or not NetCDF
        raise FitError(f"{path} is not a readable bayespref fit (NetCDF could not be read: {exc}). "
                       "Re-run the fit and save it again.") from exc
    if _META_GROUP not in dt.children or "meta" not in dt[_META_GROUP].attrs:
        raise FitError(f"{path} is a NetCDF file but not a bayespref fit (no '{_META_GROUP}' group). "
                       "Save fits with Fit.save().")
    try:
        meta = json.loads(dt[_META_GROUP].attrs["meta"])
        data = Comparisons.from_json(meta["data"])
        if meta["spec"].get("family") == "custom":
            if model is None:
                raise FitError("This fit used a custom NumPyro model; pass it again: load_fit(path, model=...).")
            spec = _as_spec(model)
        else:
            spec = spec_from_dict(meta["spec"])
    except FitError:
        raise
    except Exception as exc:
        raise FitError(f"{path}: the saved model description is damaged ({exc}). Re-run the fit.") from exc
    del dt[_META_GROUP]
    return Fit(dt, spec, data, meta.get("info"))


def _membership_array(draws: np.ndarray, labels) -> xr.DataArray:
    """Membership draws (chain, draw, user, type) labelled with the users' labels."""
    return xr.DataArray(draws, dims=("chain", "draw", "user", "type"),
                        coords={"user": labels, "type": np.arange(draws.shape[-1])})


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    raise TypeError(f"{type(o).__name__} is not JSON serialisable")


def _extreme(tree, how):
    ds = tree.dataset if hasattr(tree, "dataset") else tree
    vals = [float(np.nanmax(v.values) if how is max else np.nanmin(v.values)) for v in ds.data_vars.values()]
    return how(vals) if vals else float("nan")


def _tidy(da: xr.DataArray, dim: str, ci_prob: float) -> pd.DataFrame:
    """mean / sd / equal-tailed interval over (chain, draw) for each entry of ``dim``."""
    lo, hi = (1 - ci_prob) / 2, 1 - (1 - ci_prob) / 2
    flat = da.stack(sample=("chain", "draw"))
    q = flat.quantile([lo, hi], dim="sample")
    return pd.DataFrame({
        "mean": flat.mean("sample").values,
        "sd": flat.std("sample", ddof=1).values,
        "lower": q.sel(quantile=lo).values,
        "upper": q.sel(quantile=hi).values,
    }, index=pd.Index(da[dim].values, name=dim))
