"""The result of inference: :class:`Fit` (posterior, predictions, persistence) and :func:`load_fit`."""

from __future__ import annotations

import hashlib
import json
import pathlib
import warnings

import arviz as az
import jax
import numpy as np
import pandas as pd
import xarray as xr
from numpyro.infer import Predictive

from bayespref import __version__, config
from bayespref._io import atomic_file
from bayespref.data.comparisons import Comparisons
from bayespref.data.rankings import Rankings
from bayespref.errors import (
    BayesprefWarning,
    ConvergenceWarning,
    DataError,
    FitError,
    ModelError,
    SeparationWarning,
)
from bayespref.inference import convergence as _convergence
from bayespref.inference import rank_diagnostics
from bayespref.inference.engine import as_key, latent_sites
from bayespref.intervals import interval_table
from bayespref.models import CustomModel, ModelSpec, as_spec, sites, spec_from_dict
from bayespref.models.mixture import separation
from bayespref.models.plackett_luce import ranking_data
from bayespref.plots import forest

_META_GROUP = "bayespref"
#: format of the integrity record (attribute ``integrity`` of the ``bayespref`` group)
_INTEGRITY_FORMAT = "bayespref.integrity/1"


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
        """Posterior summary (mean, sd, interval, ESS, R-hat) of the model's main parameters.

        For NUTS fits the column ``flag`` names the convergence rules a parameter breaks ("R-hat",
        "bulk ESS", "tail ESS": R-hat above ``config.RHAT_MAX``, ESS below ``config.min_ess(chains)``,
        400 for 4 chains), empty when it breaks none (:func:`bayespref.inference.convergence.flag_rows`).
        """
        ci_prob = config.ci_prob(ci_prob)
        var_names = var_names or self.model.summary_vars(self.sizes)
        kind = "all" if self.info.get("method") == "nuts" else "stats"
        # one variable at a time: arviz 1.3 mislabels rows of 2-D variables that share a dim with
        # another variable in the same call
        table = pd.concat([az.summary(self.idata, var_names=[v], ci_prob=ci_prob, kind=kind) for v in var_names])
        if kind == "all" and {"r_hat", "ess_bulk"} <= set(table.columns):
            table["flag"] = _convergence.flag_rows(table.astype({"r_hat": float, "ess_bulk": float}),
                                                   int(self.idata.posterior.sizes["chain"]))
        return table

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
        rhat, bulk, tail = rank_diagnostics.diagnostics(post)
        out["max_rhat"] = _extreme(rhat, max)
        out["min_ess_bulk"] = _extreme(bulk, min)
        out["min_ess_tail"] = _extreme(tail, min)
        if "sample_stats" in self.idata.children and "diverging" in self.idata.sample_stats:
            out["divergences"] = int(self.idata.sample_stats["diverging"].sum())
        return out

    def _quick_check(self) -> dict:
        """The automatic check after NUTS (:func:`bayespref.inference.convergence.quick_check`) on at
        most ``config.AUTO_CHECK_USERS`` users."""
        return _convergence.quick_check(self, max_users=config.AUTO_CHECK_USERS)

    def _warn_convergence(self, check: dict, stacklevel: int):
        """Warn when ``check`` (:meth:`_quick_check`) finds R-hat, bulk ESS or divergences breaking the
        rules, naming the parameters and the remedy; the numbers, the flagged parameters and the
        remedy's settings go to ``info["convergence_check"]``."""
        users = config.AUTO_CHECK_USERS
        keep = ("max_rhat", "min_ess_bulk", "min_ess_tail", "divergences", "remedy")
        self.info["convergence_check"] = {**{k: check[k] for k in keep}, "n_flagged": len(check["flagged"]),
                                          "flagged": check["flagged"][:50],
                                          "users_checked": min(users, self.sizes.get("n_users", 0))}
        if check["message"]:
            partial = (f" (checked on {users} of {self.sizes.get('n_users')} users; fit.convergence() checks all)"
                       if self.sizes.get("n_users", 0) > users else "")
            warnings.warn(check["message"].removesuffix(".") + partial + ".", ConvergenceWarning, stacklevel=stacklevel)

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
        names = latent_sites(fn, self.model.arrays(self.data))
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
        if ranking_data(data):
            p = xr.DataArray(np.asarray(out[sites.P_FIRST]), dims=("chain", "draw", "ranking", "slot"))
            return p if return_draws else self._first_choice_table(data, p, ci_prob)
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
        For rankings: ``p_first`` (chain, draw, ranking, slot), P(the item in the slot is chosen first).
        """
        data, out, keep = self._predict_sites(new, seed, user_covariates, max_draws)
        post = self.idata.posterior
        coords = {"chain": post["chain"].values, "draw": post["draw"].values[keep]}
        if ranking_data(data):
            return xr.Dataset({sites.P_FIRST: (("chain", "draw", "ranking", "slot"), np.asarray(out[sites.P_FIRST]))},
                              coords=coords)
        dims = ("chain", "draw", "comparison")
        return xr.Dataset({name: (dims, np.asarray(out[name])) for name in (sites.P_A, sites.P_TIE) if name in out},
                          coords=coords)

    def _predict_sites(self, new, seed, user_covariates, max_draws=None):
        """The encoded comparisons, the prediction sites (P_A, P_TIE) drawn for them, and the
        positions of the posterior draws used (along ``draw``)."""
        if new is None:
            data = self.data
        elif ranking_data(self.data):
            if not (hasattr(new, "obs_dim") and new.options.equals(self.data.options)
                    and new.users.equals(self.data.users)):
                raise DataError("A fit of rankings predicts rankings or pairs over the training options and users: "
                                "pass a subset of the training data (fit.data.subset(rows)), its implied pairs "
                                "(fit.data.explode()), or none for the training rankings.")
            data = new
        elif isinstance(new, Comparisons):
            data = new
        else:
            data = self.data.encode(new, user_covariates=user_covariates)
        if ranking_data(data):
            pass
        elif self.model.uses_worths(self.data) and np.any((np.asarray(data.a) < 0) | (np.asarray(data.b) < 0)):
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
        pred = Predictive(fn, posterior_samples=samples, batch_ndims=2,
                          return_sites=[sites.P_A, sites.P_TIE, sites.P_FIRST])
        return data, pred(as_key(seed), arrays, predict=True), keep

    @staticmethod
    def _first_choice_table(data, p, ci_prob):
        """One row per shown item of each ranking: its option and P(chosen first) with an interval."""
        t = interval_table(p.stack(item=("ranking", "slot")), "item", ci_prob)
        items = np.asarray(data.items).ravel()
        shown = items >= 0
        table = pd.DataFrame({"ranking": np.repeat(np.asarray(data.ranking_ids), data.max_items),
                              "slot": np.tile(np.arange(data.max_items), data.n_rankings),
                              "option": np.asarray(data.options)[np.maximum(items, 0)]})
        for col in ("mean", "sd", "lower", "upper"):
            table[sites.P_FIRST if col == "mean" else f"{sites.P_FIRST}_{col}"] = t[col].to_numpy()
        return table[shown].reset_index(drop=True)

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
        dims = ("chain", "draw", *self.model.obs_dims(self.data))
        ds = xr.Dataset({sites.OBS: (dims, np.asarray(out[sites.OBS]))},
                        coords={"chain": post["chain"].values, "draw": post["draw"].values,
                                self.data.obs_dim: np.arange(self.data.n_obs)})
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
        first = self.data.subset([0])
        query = {**self.model.arrays(first, with_outcome=False), "history": hist}
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
        if ranking_data(self.data):
            raise DataError("Membership of new users from rankings is not offered yet: fit.membership() gives the "
                            "training users' membership.")
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
        """Write the fit to a NetCDF file (atomically: a failure or an interrupt leaves no partial file).

        Besides the DataTree, the file's ``bayespref`` group holds the model description, the data
        and the inference settings (attribute ``meta``) and SHA-256 hashes of them and of every
        coordinate's labels and every group's arrays (attribute ``integrity``), which
        :func:`load_fit` checks: a file edited after it was saved does not load.
        """
        path = pathlib.Path(path)
        meta = {
            "version": __version__,
            "spec": self.model.to_dict(),
            "data": self.data.to_json(),
            "info": self.info,
        }
        if isinstance(self.model, CustomModel):
            meta["spec"] = {"family": "custom"}
        meta_json = json.dumps(meta, default=_json_default)
        dt = self.idata.copy()
        integrity = {"format": _INTEGRITY_FORMAT, "algorithm": "sha256",
                     "parts": _integrity_parts(dt, json.loads(meta_json))}
        dt[_META_GROUP] = xr.DataTree(xr.Dataset(attrs={"meta": meta_json, "integrity": json.dumps(integrity)}))
        with atomic_file(path) as tmp:
            dt.to_netcdf(tmp, engine="h5netcdf")
        return path

    def __repr__(self):
        s = self.sizes
        return (f"<bayespref.Fit {self.model.family} by {self.info.get('method', '?')}: "
                f"{self.data.n_obs} {self.data.obs_dim}s, {s['n_options']} options, {s['n_users']} users>")

    # -- checks ------------------------------------------------------------------------------------
    def convergence(self, **kwargs) -> "_convergence.ConvergenceReport":
        """The convergence report (:func:`bayespref.checks.convergence`: text and HTML)."""
        return _convergence.convergence(self, **kwargs)


def load_fit(path, model=None, *, verify: bool = True) -> Fit:
    """Read a fit written by :meth:`Fit.save`.

    ``model`` is needed only for fits of a :class:`~bayespref.models.CustomModel` (functions are not
    saved). Raises :class:`~bayespref.FitError` for missing, truncated or foreign files, for a model
    description whose fields are not valid model arguments, and for a file changed since it was
    saved: the hashes stored at save (of the data, the labels of every coordinate, the model
    description, the inference settings and every group's arrays) are recomputed and compared, and
    the error names the parts that differ. ``verify=False`` turns that last error into a warning,
    for a file changed on purpose (save the loaded fit again to store new hashes). Files saved
    without hashes (by bayespref before they were added) load with a warning. The hashes reveal edits
    and damage, not a deliberate forgery: whoever can rewrite the file can rewrite them too.
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
    attrs = dict(dt[_META_GROUP].attrs)
    del dt[_META_GROUP]
    try:
        meta = json.loads(attrs["meta"])
        if not isinstance(meta, dict) or not isinstance(meta.get("spec"), dict) or not isinstance(meta.get("data"), str):
            raise ValueError("'spec' or 'data' is missing")
    except Exception as exc:
        raise FitError(f"{path}: the saved model description is damaged ({exc}). Re-run the fit.") from exc
    _verify(path, dt, meta, attrs.get("integrity"), verify)
    try:
        data = _data_from_json(meta["data"])
    except Exception as exc:
        raise FitError(f"{path}: the saved data are damaged ({exc}). Re-run the fit.") from exc
    if meta["spec"].get("family") == "custom":
        if model is None:
            raise FitError("This fit used a custom NumPyro model; pass it again: load_fit(path, model=...).")
        spec = as_spec(model)
    else:
        spec = _saved_spec(path, meta["spec"])
    return Fit(dt, spec, data, meta.get("info"))


# -- integrity of saved fits ---------------------------------------------------------------------------
def _sha256(*chunks) -> str:
    h = hashlib.sha256()
    for c in chunks:
        h.update(c)
    return h.hexdigest()


def _canonical(obj) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=_json_default).encode()


def _plain(v):
    return v.decode("utf-8", "replace") if isinstance(v, bytes) else v


def _array_bytes(values) -> list:
    """The chunks hashed for one array: its dtype, shape and contents in a form that survives the
    round trip through NetCDF (little-endian numbers, one NaN, text as JSON)."""
    a = np.asarray(values)
    head = _canonical([a.dtype.kind, a.dtype.itemsize if a.dtype.kind not in "OSU" else 0, list(a.shape)])
    if a.dtype.kind in "OSU":
        return [head, _canonical([_plain(v) for v in a.ravel().tolist()])]
    if a.dtype.kind in "fc" and np.isnan(a).any():
        a = np.where(np.isnan(a), np.nan, a).astype(a.dtype)
    if a.dtype.kind in "mM":
        a = a.view(np.int64)
    a = np.ascontiguousarray(a.astype(a.dtype.newbyteorder("<"), copy=False))
    return [head, a.view(np.uint8).reshape(-1)]


def _nodes(dt):
    """(path, Dataset of the node's own variables) for every group of a DataTree but the meta group,
    in the order of their paths (NetCDF need not keep the order in which groups were written)."""
    nodes = {node.path.strip("/") or "/": node for node in dt.subtree}
    for path in sorted(nodes):
        if path.split("/")[0] != _META_GROUP:
            yield path, nodes[path].to_dataset(inherit=False)


def _integrity_parts(dt, meta: dict) -> dict:
    """SHA-256 hashes of a fit's parts: ``model`` (the model description), ``settings`` (the
    inference settings), ``data`` (per field of the serialised Comparisons), ``labels`` (per
    coordinate name, over every group) and ``arrays`` (per group: every data variable)."""
    data = {}
    for key, value in json.loads(meta["data"]).items():
        if isinstance(value, dict) and value:
            data.update({f"{key}.{k}": _sha256(_canonical(v)) for k, v in value.items()})
        else:
            data[key] = _sha256(_canonical(value))
    labels: dict[str, list] = {}
    arrays = {}
    for group, ds in _nodes(dt):
        for name in sorted(ds.coords, key=str):
            labels.setdefault(str(name), []).extend([group.encode(), *_array_bytes(ds.coords[name].values)])
        chunks = []
        for name in sorted(ds.data_vars, key=str):
            var = ds[name]
            chunks += [_canonical([str(name), [str(d) for d in var.dims]]), *_array_bytes(var.values)]
        arrays[group] = _sha256(*chunks)
    return {"model": _sha256(_canonical(meta["spec"])), "settings": _sha256(_canonical(meta.get("info"))),
            "data": data, "labels": {k: _sha256(*v) for k, v in labels.items()}, "arrays": arrays}


def _changed_parts(stored: dict, now: dict) -> list[str]:
    """What differs between two sets of hashes, in words."""
    changed = []
    for part, what in (("model", "the model description"), ("settings", "the inference settings")):
        if stored.get(part) != now[part]:
            changed.append(f"{what} (sha256 {str(stored.get(part))[:12]} at save, {now[part][:12]} now)")
    words = {"labels": lambda k: f"the {k} labels (coordinate {k!r})", "data": lambda k: f"the data's field {k!r}",
             "arrays": lambda k: f"the arrays of group {k!r}"}
    for part in ("labels", "data", "arrays"):
        old, new = stored.get(part) or {}, now[part]
        for key in sorted(set(old) | set(new)):
            if key not in new:
                changed.append(f"{words[part](key)} (removed)")
            elif key not in old:
                changed.append(f"{words[part](key)} (added)")
            elif old[key] != new[key]:
                changed.append(f"{words[part](key)} (sha256 {old[key][:12]} at save, {new[key][:12]} now)")
    return changed


def _verify(path, dt, meta: dict, integrity, verify: bool) -> None:
    """Compare the hashes stored at save with the file's content (see :func:`load_fit`)."""
    if integrity is None:
        warnings.warn(f"{path} was saved without integrity hashes (by an older bayespref): it loads, but "
                      "changes made to it since it was saved cannot be detected. Save it again to add them.",
                      BayesprefWarning, stacklevel=3)
        return
    try:
        record = json.loads(integrity)
        if record.get("format") != _INTEGRITY_FORMAT:
            raise ValueError(f"unknown format {record.get('format')!r}")
        stored = record["parts"]
    except Exception as exc:
        raise FitError(f"{path}: the saved fit's integrity record is damaged ({exc}). Re-run the fit.") from exc
    try:
        now = _integrity_parts(dt, meta)
    except Exception as exc:  # e.g. the data are no longer JSON
        raise FitError(f"{path}: the saved fit is damaged ({type(exc).__name__}: {exc}). Re-run the fit.") from exc
    changed = _changed_parts(stored, now)
    if not changed:
        return
    text = (f"{path}: the saved fit changed since it was saved; these parts no longer match the hashes stored "
            f"at save: {'; '.join(changed)}")
    if not verify:
        warnings.warn(text + ". Loaded anyway (verify=False).", BayesprefWarning, stacklevel=3)
        return
    problem = _spec_problem(meta["spec"])
    raise FitError(text + (f". The model description is also invalid: {problem}" if problem else "")
                   + ". Re-fit, or, if the change was intended, load it with load_fit(path, verify=False) and "
                   "save it again.")


def _spec_problem(d: dict) -> str | None:
    """Why a saved model description is not valid model arguments (naming the field), or None."""
    if d.get("family") == "custom":
        return None
    try:
        spec_from_dict(d)
    except (ModelError, TypeError, ValueError) as exc:
        return str(exc).rstrip(".")
    return None


def _saved_spec(path, d: dict) -> ModelSpec:
    """The spec of a saved model description (:func:`~bayespref.models.spec_from_dict`, whose spec
    constructor checks every field like a new model's arguments); a :class:`FitError` naming the
    field when one is not valid."""
    try:
        return spec_from_dict(d)
    except (ModelError, TypeError, ValueError) as exc:
        raise FitError(f"{path}: the saved model description is invalid: {str(exc).rstrip('.')}. The file was "
                       "edited or damaged; re-run the fit.") from exc


def _membership_array(draws: np.ndarray, labels) -> xr.DataArray:
    """Membership draws (chain, draw, user, type) labelled with the users' labels."""
    return xr.DataArray(draws, dims=("chain", "draw", "user", "type"),
                        coords={"user": labels, "type": np.arange(draws.shape[-1])})


def _data_from_json(text: str):
    """The saved data: a ``Comparisons``, or a ``Rankings`` (whose JSON names its ``obs_dim``)."""
    if json.loads(text).get("obs_dim") == "ranking":
        return Rankings.from_json(text)
    return Comparisons.from_json(text)


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    raise TypeError(f"{type(o).__name__} is not JSON serialisable")


def _extreme(tree, how):
    ds = tree.dataset if hasattr(tree, "dataset") else tree
    vals = [float(np.nanmax(v.values) if how is max else np.nanmin(v.values)) for v in ds.data_vars.values()]
    return how(vals) if vals else float("nan")
