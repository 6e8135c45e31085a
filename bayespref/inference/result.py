"""The result of inference: :class:`Fit` (posterior, predictions, persistence) and :func:`load_fit`."""

from __future__ import annotations

import json
import os
import pathlib
import tempfile
import warnings

import arviz as az
import jax
import numpy as np
import pandas as pd
import xarray as xr
from numpyro.infer import Predictive

from bayespref import __version__, config
from bayespref._io import usual_mode
from bayespref.data.comparisons import Comparisons
from bayespref.errors import ConvergenceWarning, DataError, FitError, ModelError, SeparationWarning
from bayespref.inference import convergence as _convergence
from bayespref.inference.engine import as_key, latent_sites
from bayespref.intervals import interval_table
from bayespref.models import CustomModel, ModelSpec, as_spec, sites, spec_from_dict
from bayespref.models.mixture import separation
from bayespref.plots import forest

_META_GROUP = "bayespref"


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

    def summary(self, var_names=None, ci_prob: float | None = None) -> pd.DataFrame:
        """Posterior summary (mean, sd, interval, ESS, R-hat) of the model's main parameters."""
        ci_prob = config.ci_prob(ci_prob)
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
        names += [v for v in self.model.user_effect_sites(self.sizes).values() if v in self.idata.posterior]
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
        users = config.AUTO_CHECK_USERS
        d = self.diagnostics(max_users=users)
        self.info["convergence_check"] = {**d, "users_checked": min(users, self.sizes.get("n_users", 0))}
        problems = _convergence.quick_problems(d, int(self.idata.posterior.sizes["chain"]))
        if problems:
            warnings.warn(
                "Convergence problems: " + "; ".join(problems) + ". Try more warmup/draws "
                "(warmup=2000, draws=2000), target_accept=0.95 for divergences, stronger priors, or "
                "check fit.summary() for the parameters concerned"
                + (f" (checked on {users} of {self.sizes.get('n_users')} users; fit.diagnostics() checks "
                   "all)" if self.sizes.get("n_users", 0) > users else "") + ".",
                ConvergenceWarning, stacklevel=3)

    def _warn_separation(self, min_share: float = 0.05):
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

    def worths(self, reference=None, ci_prob: float | None = None, level: str = "population") -> pd.DataFrame:
        """Tidy table of option worths (log-worth scale), optionally relative to a reference option.

        For models with group effects on the worths (``Hierarchical`` with user covariates),
        ``level="population"`` (default) gives the worths of the average training user,
        :math:`\\mu + B^\\top \\bar c`, and ``level="baseline"`` the worths :math:`\\mu` of users
        whose covariates are all zero (every categorical covariate at its reference level).

        Columns: ``mean``, ``sd``, ``lower``, ``upper`` (equal-tailed ``ci_prob`` interval) and
        ``rank`` (1 = best by posterior mean).
        """
        ci_prob = config.ci_prob(ci_prob)
        post = self.idata.posterior
        if sites.WORTH not in post:
            raise ModelError("This model has no option worths (it uses features only).")
        if level not in ("population", "baseline"):
            raise ModelError(f"level={level!r}: use 'population' or 'baseline'.")
        w = post[sites.WORTH]
        if level == "population" and sites.GROUP_WORTH in post:
            names = list(self.data.covariate_names)
            cols = [names.index(c) for c in post["covariate"].values]
            seen = np.unique(np.asarray(self.data.user)[np.asarray(self.data.user) >= 0])  # users with data
            cbar = xr.DataArray(np.asarray(self.data.covariates)[seen][:, cols].mean(0), dims="covariate",
                                coords={"covariate": post["covariate"].values})
            w = w + (cbar * post[sites.GROUP_WORTH]).sum("covariate")
            w = w - w.mean("option")  # only differences are identified
        if reference is not None:
            labels = list(w["option"].values)
            if reference not in labels:
                raise DataError(f"reference={reference!r} is not an option; options: {labels}.")
            w = w - w.sel(option=reference)
        if "type" in w.dims:  # LatentTypes: one block per type
            return pd.concat({int(k): interval_table(w.sel(type=k), "option", ci_prob).assign(
                rank=lambda t: t["mean"].rank(ascending=False).astype(int)) for k in w["type"].values},
                names=["type"])
        return interval_table(w, "option", ci_prob).assign(rank=lambda t: t["mean"].rank(ascending=False).astype(int))

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

    def predict(self, new=None, ci_prob: float | None = None, seed=0, return_draws: bool = False, user_covariates=None):
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
        ci_prob = config.ci_prob(ci_prob)
        data, out, _ = self._predict_sites(new, seed, user_covariates)
        p_a = xr.DataArray(np.asarray(out[sites.P_A]), dims=("chain", "draw", "comparison"))
        if return_draws:
            return p_a
        return self._prediction_table(data, out, ci_prob)

    def predict_draws(self, new=None, seed=0, user_covariates=None, max_draws: int | None = None) -> xr.Dataset:
        """Posterior draws of the outcome probabilities of new (or the training) comparisons.

        ``new`` and ``user_covariates`` as in :meth:`predict`; ``max_draws``: use at most about this
        many posterior draws (every chain thinned evenly to ``ceil(max_draws / chains)`` draws).
        Returns an ``xarray.Dataset`` with ``p_a`` (chain, draw, comparison), P(a preferred), and,
        when the model has ties, ``p_tie``, P(no preference); P(b preferred) is ``1 - p_a - p_tie``.
        """
        _, out, keep = self._predict_sites(new, seed, user_covariates, max_draws)
        dims = ("chain", "draw", "comparison")
        post = self.idata.posterior
        coords = {"chain": post["chain"].values, "draw": post["draw"].values[keep]}
        return xr.Dataset({name: (dims, np.asarray(out[name])) for name in (sites.P_A, sites.P_TIE) if name in out},
                          coords=coords)

    def _predict_sites(self, new, seed, user_covariates, max_draws=None):
        """The encoded comparisons, the prediction sites (P_A, P_TIE) drawn for them, and the
        positions of the posterior draws used (along ``draw``)."""
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
        n_chains, n_draws = self.idata.posterior.sizes["chain"], self.idata.posterior.sizes["draw"]
        keep = np.arange(n_draws)
        if max_draws is not None and n_chains * n_draws > max_draws:
            keep = np.unique(np.linspace(0, n_draws - 1, -(-max_draws // n_chains)).round().astype(int))
            samples = {k: v[:, keep] for k, v in samples.items()}
        arrays = self.model.predict_arrays(self.data, data)
        pred = Predictive(fn, posterior_samples=samples, batch_ndims=2, return_sites=[sites.P_A, sites.P_TIE])
        return data, pred(as_key(seed), arrays, predict=True), keep

    @staticmethod
    def _prediction_table(data, out, ci_prob):
        table = data.frame.reset_index(drop=True).copy()
        for name in (sites.P_A, sites.P_TIE):
            if name not in out:
                continue
            da = xr.DataArray(np.asarray(out[name]), dims=("chain", "draw", "comparison"))
            t = interval_table(da, "comparison", ci_prob)
            table[name] = t["mean"].to_numpy()
            table[f"{name}_sd"] = t["sd"].to_numpy()
            table[f"{name}_lower"] = t["lower"].to_numpy()
            table[f"{name}_upper"] = t["upper"].to_numpy()
        return table

    def add_posterior_predictive(self, seed=0) -> "Fit":
        """Draw replicated outcome codes for the training comparisons (group ``posterior_predictive``)."""
        fn, samples = self._latent_samples()
        arrays = self.model.predict_arrays(self.data, self.data)
        out = Predictive(fn, posterior_samples=samples, batch_ndims=2, return_sites=[sites.OBS])(
            as_key(seed), arrays, predict=True)
        post = self.idata.posterior
        ds = xr.Dataset({sites.OBS: (("chain", "draw", "comparison"), np.asarray(out[sites.OBS]))},
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
        out, labels = self._history_sites(new, user_covariates, sites.MEMBERSHIP)
        da = _membership_array(out, labels)
        return da if draws else da.mean(("chain", "draw"))

    def user_log_likelihood(self, new=None, user_covariates=None) -> xr.DataArray:
        """log p(judgements of each user | parameters), types summed out: (chain, draw, user).

        For users not in the training data (``new``), this is the predictive density used by
        leave-users-out cross-validation (average it over draws on the probability scale).
        """
        out, labels = self._history_sites(new, user_covariates, sites.USER_LOG_LIK)
        return xr.DataArray(out, dims=("chain", "draw", "user"), coords={"user": labels})

    def _history_sites(self, new, user_covariates, site):
        hist, labels = self._history(new, user_covariates)
        fn, samples = self._latent_samples()
        query = {**self.model.arrays(self.data.subset([0]), with_outcome=False), "history": hist}
        out = Predictive(fn, posterior_samples=samples, batch_ndims=2, return_sites=[site])(
            jax.random.PRNGKey(0), query, predict=True)
        return np.asarray(out[site]), labels

    def few_shot(self, judgements, queries=None, user_covariates=None, ci_prob: float | None = None):
        """Type membership and predictions for (new) users from a handful of their judgements.

        The users' membership is their posterior given ``judgements`` under the fitted parameters
        (no refit); ``queries`` (comparisons of the same users, outcome optional) are predicted as
        the membership-weighted mixture of the types' predictions.

        Returns ``(membership, predictions)``: a DataArray (user, type) of posterior mean
        probabilities and, when ``queries`` are given, a DataFrame as from :meth:`predict`.
        """
        ci_prob = config.ci_prob(ci_prob)
        hist, labels = self._history(judgements, user_covariates)
        q = None if queries is None else self.data.encode(queries, user_covariates=user_covariates)
        arrays = {**self.model.arrays(self.data.subset([0]) if q is None else q, with_outcome=False), "history": hist}
        if q is not None:  # queries index the judgements' users (-1: a user without judgements)
            local = (pd.Index(labels).get_indexer(q.frame["user"].to_numpy()) if "user" in q.frame
                     else np.zeros(q.n_comparisons, dtype=int))
            arrays["user"] = jax.numpy.asarray(local, dtype=jax.numpy.int32)
        fn, samples = self._latent_samples()
        out = Predictive(fn, posterior_samples=samples, batch_ndims=2,
                         return_sites=[sites.MEMBERSHIP, sites.P_A, sites.P_TIE])(jax.random.PRNGKey(0), arrays,
                                                                                  predict=True)
        membership = _membership_array(np.asarray(out[sites.MEMBERSHIP]), labels).mean(("chain", "draw"))
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
    def plot_worths(self, reference=None, ci_prob: float | None = None, ax=None):
        """Forest plot of the worths; returns the matplotlib Figure."""
        ci_prob = config.ci_prob(ci_prob)
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

    # -- checks ------------------------------------------------------------------------------------
    def convergence(self, **kwargs) -> "_convergence.ConvergenceReport":
        """The convergence report (:func:`bayespref.checks.convergence`: text and HTML)."""
        return _convergence.convergence(self, **kwargs)


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
            spec = as_spec(model)
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
