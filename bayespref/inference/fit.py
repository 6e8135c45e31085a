"""The front door: :func:`fit` prepares the model once and hands it to the method's engine.

Each method is one engine function in :data:`METHODS` (``spec, prepared, seed, settings, options ->
(DataTree, info)``) with one settings class in :mod:`bayespref.inference.settings`; :func:`fit`
only validates, prepares the arrays and wraps the result in a :class:`~bayespref.Fit`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import sys
import warnings
from collections.abc import Mapping

import arviz as az
import jax
import numpy as np
import numpyro
import xarray as xr
from numpyro.infer import log_likelihood as _log_likelihood

from bayespref import config
from bayespref.data.comparisons import Comparisons
from bayespref.errors import ConvergenceWarning, DataError, ModelError
from bayespref.inference import sharding
from bayespref.inference.auto import announce, choose_method, choose_stream_method
from bayespref.inference.convergence import draw_on_reason
from bayespref.inference.engine import (
    as_key,
    draws_with_deterministics,
    empty_rows,
    init_from_draws,
    init_from_modes,
    mass_from_draws,
    run_nuts,
    run_svi,
    svi_draws,
)
from bayespref.inference.guides import HierarchicalGuide
from bayespref.inference.laplace import USER_DRAWS_MAX, run_laplace
from bayespref.inference.result import Fit
from bayespref.inference.settings import (
    SETTINGS,
    make_settings,
    resolve_draws,
    resolve_extend,
    resolve_target_accept,
)
from bayespref.models import FAMILIES, CustomModel, as_spec, sites
from bayespref.models.base import _labels
from bayespref.models.centring import weight as centring_weight
from bayespref.models.plackett_luce import is_rankings, ranking_data
from bayespref.validate import FLAG, OneOf
from bayespref.validate import seed as check_seed


@dataclasses.dataclass
class Prepared:
    """What every engine needs: the bound model, its arrays, sizes, and the DataTree's dims/coords."""

    spec: object
    data: Comparisons
    fn: object
    arrays: dict
    grouped: dict | None
    sizes: dict
    dims: dict
    coords: dict


def fit(model, data, method: str = "auto", seed=0, *, settings=None, init: "Fit | None" = None,
        posterior_predictive: bool = False, log_likelihood: bool = True, laplace_options: dict | None = None,
        **options) -> Fit:
    """Fit a preference model to paired comparisons.

    Parameters
    ----------
    model : ModelSpec or callable
        A family spec (:class:`~bayespref.BradleyTerry`, :class:`~bayespref.Hierarchical`, ...) or a
        NumPyro function following the model-function contract (:mod:`bayespref.models.base`).
    data : Comparisons or ParquetComparisons
        The validated comparisons; or, for ``method="svi"`` or ``"laplace"``, a Parquet dataset streamed
        from disk (:class:`~bayespref.data.readers.parquet_stream.ParquetComparisons`, see :func:`_fit_stream`).
    method : {"auto", "nuts", "svi", "laplace"}
        ``"auto"`` (default): chosen from the model, the data size and the options given
        (:mod:`bayespref.inference.auto`): NUTS up to 200,000 comparisons, above that Laplace where
        the model qualifies, else SVI; options of one method (``chains=2``, ``steps=5000``) select
        it. The choice and why are printed in one line (not with ``progress=False``) and kept in
        ``fit.info["method_reason"]``.
        ``"nuts"``: NumPyro's NUTS, ``chains`` chains of ``warmup`` + ``draws`` iterations, run in
        parallel over devices (on a CPU, over virtual devices). The sampler is compiled once per
        model, data shape and settings and reused by later fits (``fit.info["sampler_reused"]``).
        ``"svi"``: an autoguide (or ``guide="hierarchical"``, population parameters jointly Gaussian
        and each user's effects Gaussian given them) fitted with Adam, optionally on minibatches of
        comparisons (``batch_size``) or users (``user_batch_size``); SVI intervals are approximate.
        ``"laplace"`` (families that offer it: Hierarchical whose effects all vary by user, worths
        and/or feature weights, logit link, no ties; :mod:`bayespref.inference.laplace`): each
        user's effects integrated out by an
        importance-corrected Laplace approximation, the global parameters Gaussian at the mode of
        that marginal posterior; for large data (1M judgements of 20k users in about a minute on a CPU).
    seed : int or jax PRNG key
        A whole number from 0 to 2**32 - 1, or a key; same seed, same result.
    settings : NutsSettings, SviSettings or LaplaceSettings, optional
        The method's settings as one object (:mod:`bayespref.inference.settings`).
    **options
        The method's settings as keywords, e.g. ``chains=2, draws=500`` (NUTS), ``steps=5000,
        guide="mvn"`` (SVI), ``importance=16`` (Laplace); they override ``settings``. A setting of
        another method is refused with a :class:`~bayespref.ModelError`.
    init : Fit, optional
        NUTS only: start the chains from draws of another fit of the same model and data (e.g. a
        quick ``method="svi"`` fit; one draw per chain, spread over its draws). With a diagonal mass
        matrix and at least 20 draws in ``init``, warm-up also starts from that fit's posterior
        variances on the unconstrained scale (``fit.info["init_mass_matrix"]``); warm-up still runs
        in full and re-adapts step size and mass matrix.
    posterior_predictive : bool
        Also draw replicated outcomes (group ``posterior_predictive``).
    log_likelihood : bool
        Store the pointwise log-likelihood (group ``log_likelihood``, needed for LOO). It holds
        draws x comparisons values: for very large data (1M comparisons) pass False.
    laplace_options : dict, optional
        Deprecated spelling of the Laplace settings as keywords.

    Returns
    -------
    Fit
        Holds the ArviZ ``DataTree`` (``fit.idata``), the spec, the data and ``fit.info`` (the
        settings used and the run's timings).

    Examples
    --------
    >>> import bayespref as bp
    >>> data = bp.load_dataset("citations").comparisons()
    >>> result = bp.fit(bp.BradleyTerry(), data, seed=1, progress=False)   # doctest: +SKIP
    >>> result.summary()                                                    # doctest: +SKIP
    """
    config.ensure_jax()
    spec = as_spec(model)
    from bayespref.data.readers.parquet_stream import ParquetComparisons

    if isinstance(data, ParquetComparisons):
        reason = "method=... was given"
        if method == "auto":
            method, reason = choose_stream_method(settings, options)
            announce(method, reason, quiet=options.get("progress", getattr(settings, "progress", True)) is False)
        with sample_checks(spec):
            result = _fit_stream(spec, data, method, seed, settings, log_likelihood, posterior_predictive, init,
                                 options)
        result.info["method_reason"] = reason
        return result
    if not (isinstance(data, Comparisons) or ranking_data(data)):
        raise DataError(
            f"fit() needs a bayespref.Comparisons or bayespref.Rankings as `data`, got {type(data).__name__}. "
            "Build one with bayespref.Comparisons.from_frame(df, a=..., b=..., outcome=...) or "
            "bayespref.Rankings.from_long(df, ranking=..., option=..., rank=...)."
        )
    OneOf(("auto", *METHODS)).check("method", method)
    check_seed(seed)
    reason = None
    if method == "auto":
        method, reason = choose_method(spec, data, settings, options)
        announce(method, reason, quiet=options.get("progress", getattr(settings, "progress", True)) is False)
    FLAG.check("posterior_predictive", posterior_predictive)
    FLAG.check("log_likelihood", log_likelihood)
    if laplace_options is not None:
        if not isinstance(laplace_options, Mapping):
            raise ModelError(f"laplace_options={laplace_options!r} must be a dict of Laplace settings (deprecated: "
                             "pass them as keywords).")
        if method != "laplace":
            raise ModelError(f"laplace_options=... sets method='laplace'; it is not used with method={method!r}.")
        warnings.warn("laplace_options={...} is deprecated: pass the settings as keywords "
                      "(fit(..., method='laplace', importance=16)).", DeprecationWarning, stacklevel=2)
        options = {**laplace_options, **options}
    try:
        settings = make_settings(method, settings, **options)
    except ModelError as err:
        if laplace_options is None:
            raise
        raise ModelError(f"laplace_options: {err}") from None
    if method == "laplace" and ranking_data(data):
        raise ModelError("method='laplace' covers pairwise comparisons; fit rankings with method='nuts' or 'svi'.")
    if method not in spec.methods:
        raise ModelError(f"method={method!r} is not offered by {spec.family} (its methods: {spec.methods}); "
                         f"families that offer it: {_offering('methods', method)}.")
    if init is not None and method != "nuts":
        raise ModelError(f"init=... starts NUTS chains; it is not used with method={method!r}.")
    if init is not None and not isinstance(init, Fit):
        raise ModelError(f"init must be a bayespref Fit (e.g. from method='svi'), got {type(init).__name__}.")
    spec.check(data)
    resolved = spec.resolved_defaults(data)
    extra = {"model_defaults": resolved} if resolved else {}
    if method == "nuts":
        settings, extra["target_accept_reason"] = resolve_target_accept(settings, spec, data)
        settings, extra["draws_reason"] = resolve_draws(settings, spec, data)
        settings = resolve_extend(settings, extra["draws_reason"])
    prepared = _prepare(spec, data, method, settings)
    with sample_checks(spec):
        dt, info = METHODS[method](prepared, seed, settings, init=init, log_likelihood=log_likelihood)
    info = {**extra, **info}
    draw_more = info.pop(DRAW_MORE, None)
    dt = spec.postprocess(dt, data)
    result = Fit(dt, spec, data, {"method": method, "method_reason": reason or "method=... was given",
                                  **_settings_info(settings), **info})
    if method == "nuts":
        _check_nuts(result, draw_more, settings)
    if posterior_predictive:
        result.add_posterior_predictive(seed=seed)
    if spec.has_types and spec.n_types > 1:
        result._warn_separation()
    return result


#: the key under which the NUTS engine hands :func:`fit` its function that draws on (not kept in ``fit.info``)
DRAW_MORE = "_draw_more"


def _check_nuts(result: Fit, draw_more, settings) -> None:
    """The automatic convergence check after NUTS (warns, :meth:`Fit._warn_convergence`), drawing on
    first, up to ``settings.extend`` times, while more draws of the same chains can mend what it finds
    (:func:`~bayespref.inference.convergence.draw_on_reason`); ``fit.info`` records ``extensions``, their
    reasons, the draws per chain in all and the sampling time."""
    check = result._quick_check()
    draws, reasons = settings.draws, []
    while draw_more is not None and len(reasons) < settings.extend:
        have = draws * (len(reasons) + 1)  # draws per chain so far
        why = draw_on_reason(check, settings.chains, have, draws)
        if not why:
            break
        reasons.append(f"{why} after {have:,} draws per chain")
        if settings.progress:
            print(f"bayespref.fit: {reasons[-1]}; drawing {draws:,} more per chain from where the chains stopped "
                  "(extend=0 turns this off).", file=sys.stderr)
        dt, seconds = draw_more()
        result.idata = result.model.postprocess(dt, result.data)
        result.info["draws"] = have + draws
        result.info["sampling_s"] = round(result.info["sampling_s"] + seconds, 3)
        check = result._quick_check()
    result.info["extensions"] = len(reasons)
    result.info["extension_reasons"] = reasons
    result._warn_convergence(check, stacklevel=4)   # the warning points at the caller of bp.fit


def _fit_stream(spec, source, method, seed, settings, log_likelihood, posterior_predictive, init, options) -> Fit:
    """SVI or Laplace on a Parquet dataset streamed in chunks of whole users.

    Covers :class:`~bayespref.Hierarchical` with user random effects in the grouped layout the stream
    yields: user-varying worths and / or feature weights, pooled worths, user covariates, Davidson
    ties and the position effect. ``method="svi"``
    (:func:`~bayespref.inference.engine.run_svi_stream`): ``user_batch_size`` users per step and
    ``chunk_users`` users held in memory. ``method="laplace"``
    (:func:`~bayespref.inference.laplace.run_laplace_stream`, the models of the in-memory Laplace
    method, :func:`~bayespref.inference.laplace.check_supported`): every L-BFGS
    evaluation of the globals is one pass over the chunks of ``chunk_users`` users. The returned
    :class:`Fit` holds draws of the population sites (``worth``, ``weight``, ``sd_*``, ``group_*``, ...)
    and, when users x effects x draws is at most 2e7, of ``z`` and the users' effects; no
    log-likelihood or observed-data groups. ``fit.data`` is the :class:`ParquetComparisons` itself:
    sizes, options, users and features, enough for ``summary()``, ``repr`` and ``fit.info``;
    anything that needs the comparisons in memory (``predict()`` on the training data,
    ``add_posterior_predictive``, ``save``, LOO) raises a :class:`~bayespref.DataError` saying so.
    """
    from bayespref.models.hierarchical import Hierarchical

    if method not in ("svi", "laplace"):
        raise ModelError(f"method={method!r} needs the comparisons in memory; a ParquetComparisons (streamed from "
                         "disk) is fitted with method='laplace' or method='svi' only (the latter with user_batch_size=...). "
                         "For NUTS load the rows into a bayespref.Comparisons.")
    if init is not None or posterior_predictive:
        raise ModelError("init= and posterior_predictive=True need the comparisons in memory; not available for a "
                         "ParquetComparisons.")
    check_seed(seed)
    settings = make_settings(method, settings, **options)
    if not isinstance(spec, Hierarchical) or not spec.random_effects:
        raise ModelError("A ParquetComparisons is fitted in the grouped layout, by users: Hierarchical with user "
                         f"random effects (user-varying worths and / or feature weights); got {spec!r}.")
    spec.check(source)
    if tuple(spec.feature_names(source)) != tuple(source.features):
        raise ModelError("A ParquetComparisons fit uses all the features the reader was given: choose the "
                         "features with ParquetComparisons(features=[...]).")
    sizes = spec.sizes(source)
    fn = spec.bind(source)
    pop = _stream_user_arrays(spec, source)
    keys = ("y", "mask") + (("dx",) if sizes["n_features"] else ()) + (("a", "b") if spec.uses_worths(source) else ())
    if method == "svi":
        draws, info, extra = _stream_svi(spec, source, fn, sizes, seed, settings, pop, keys)
    else:
        draws, info, extra = _stream_laplace(spec, source, fn, sizes, seed, settings, pop, keys)
    dims = dict(spec.dims(sizes))
    coords = spec.coords(source, obs=False)
    effects = _effect_names(spec, source, sizes)
    coords["effect"] = coords["effect_bis"] = effects
    dt = az.from_dict({"posterior": draws}, coords=coords, dims=dims)
    for name, group in extra.items():
        dt[name] = group
    return Fit(dt, spec, source, {"method": method, **_settings_info(settings), **info,
                                  "user_draws": sites.Z in draws})


def _stream_user_arrays(spec, source) -> dict:
    """The model's user-level arrays of a stream, held in memory: the covariates it uses (users, P) and,
    with ``interactions``, the group effects' mask."""
    cov = np.asarray(source.covariate_design, np.float32)[:, spec.covariate_columns(source)]
    out = {"covariates": jax.numpy.asarray(cov)}
    if spec.interactions:
        out["group_mask"] = jax.numpy.asarray(spec.group_mask(source))
    return out


def _stream_svi(spec, source, fn, sizes, seed, settings, pop, keys):
    from bayespref.inference.engine import run_svi_stream, svi_stream_draws

    ubs = settings.user_batch_size
    if ubs is None or not (0 < ubs < source.n_users):
        raise ModelError(f"user_batch_size={ubs!r}: a streamed fit takes minibatches of users; give "
                         f"user_batch_size between 1 and n_users - 1 = {source.n_users - 1}.")
    if settings.batch_size is not None or sharding.wanted(settings.devices):
        raise ModelError("A ParquetComparisons fit subsamples users (user_batch_size), on one device: leave "
                         "batch_size and devices unset.")
    chunk_users = settings.chunk_users or max(ubs, min(source.n_users, 20_000))
    if chunk_users < ubs:
        raise ModelError(f"chunk_users={chunk_users} is below user_batch_size={ubs}: a minibatch is drawn "
                         "from the chunk in memory.")
    nf = sizes["n_features"]
    run_settings = settings
    if isinstance(settings.guide, str) and settings.guide == "hierarchical":
        run_settings = dataclasses.replace(settings, guide=HierarchicalGuide(fn, spec, sizes))
    elif settings.guide != "normal":
        raise ModelError(f"guide={settings.guide!r}: a streamed fit needs per-user guide parameters indexed by "
                         "user: use guide='normal' or 'hierarchical'.")
    res = run_svi_stream(fn, source, source.n_users, seed, run_settings, chunk_users, pop, keys)
    blocks = spec.effect_blocks(sizes["n_options"], nf)
    population = spec.summary_vars(sizes) + ([sites.CORR_CHOL] if spec.resolved_correlated(blocks) else [])
    user_sites = [sites.Z] + [sites.user(name) for name, _ in blocks]
    draws = svi_stream_draws(fn, res, source.n_users, jax.random.fold_in(as_key(seed), 1), settings.num_samples,
                             population, user_sites, pop)
    loss = xr.DataTree(xr.Dataset({"loss": ("step", res.losses)}, attrs={"converged": int(res.converged)}))
    info = {"chunk_users": chunk_users, "streamed": True, "steps": res.steps, "max_steps": settings.steps,
            "converged": bool(res.converged), "svi_step_seconds": res.step_seconds, "epochs": res.epochs}
    if not res.converged:
        warnings.warn(f"SVI stopped at {res.steps} steps without meeting the convergence rule (tol={settings.tol}). "
                      "Increase steps=..., raise lr, or check fit.idata['svi'].loss.", ConvergenceWarning, stacklevel=4)
    return draws, info, {"svi": loss}


def _stream_laplace(spec, source, fn, sizes, seed, settings, pop, keys):
    from bayespref.inference.laplace import run_laplace_stream

    U = source.n_users
    if sharding.wanted(settings.devices):
        raise ModelError("A ParquetComparisons fit streams its user chunks through one device: leave devices unset "
                         "(devices=N splits comparisons held in memory, a bayespref.Comparisons).")
    chunk_users = settings.chunk_users or min(U, 20_000)
    latent, info = run_laplace_stream(spec, source, sizes, seed, settings, chunk_users, pop)
    draws = latent
    if sites.Z in latent:  # the users' effects from z, with every user's (empty) rows: the draws need no data
        empty = {**pop, "by_user": empty_rows(U, keys, sizes["n_features"])}
        draws = draws_with_deterministics(fn, empty, latent)
    if not info["laplace_converged"]:
        warnings.warn(f"method='laplace': L-BFGS stopped without converging ({info['laplace_message']}); "
                      "the intervals may be off. Compare with method='nuts' on a subset.",
                      ConvergenceWarning, stacklevel=4)
    info.pop("user_draws", None)
    return draws, info, {}


def _offering(capability: str, value: str) -> str:
    names = [name for name, cls in FAMILIES.items() if value in getattr(cls, capability)]
    return ", ".join(names) if names else "none"


def sample_checks(spec):
    """NumPyro's checks of each sample's support, off while a bayespref family is fitted.

    NumPyro (0.22 and later) validates by default: every ``log_prob`` is masked by a check that its
    value lies in the support (finite reals, the outcome codes, a zero sum), read when the density is
    traced, so each gradient makes an extra pass over every array. bayespref checks its data before a
    fit (:mod:`bayespref.data.validation`) and the samplers' parameters lie in their supports by
    construction (NumPyro's transforms), so for its own families the checks can only cost; a
    user's NumPyro function (:class:`~bayespref.models.CustomModel`) keeps them.
    """
    if isinstance(spec, CustomModel):
        return contextlib.nullcontext()
    return numpyro.validation_enabled(False)


def _prepare(spec, data, method, settings) -> Prepared:
    fn = spec.bind(data)
    arrays = spec.arrays(data)
    sizes = spec.sizes(data)
    dims = dict(spec.dims(sizes))
    dims[sites.OBS] = spec.obs_dims(data)
    coords = spec.coords(data)
    if "tie_order" in coords:  # rankings with ties of three or more items: one prevalence per tie size
        dims[sites.LOG_TIE] = ["tie_order"]
    effects = _effect_names(spec, data, sizes)
    if effects is not None and len(effects):
        coords["effect"] = effects
        coords["effect_bis"] = effects
    # the sampler's log density may use the comparisons grouped by user (faster; same density)
    grouped = spec.by_user_arrays(data) if getattr(settings, "batch_size", None) is None else None
    if grouped is None and (getattr(settings, "user_batch_size", None) is not None or method == "laplace"):
        # minibatches of users, and the Laplace method's per-user integrals, need each user's
        # comparisons in one row, whatever the padding costs
        grouped = spec.by_user_arrays(data, max_padding=float("inf"))
    return Prepared(spec, data, fn, arrays, grouped, sizes, dims, coords)


def _settings_info(settings) -> dict:
    out = {}
    for f in dataclasses.fields(settings):
        v = getattr(settings, f.name)
        out[f.name] = v if v is None or isinstance(v, (bool, int, float, str)) else str(v)
    out.pop("progress", None)
    return out


def _effect_names(spec, data, sizes):
    blocks = spec.effect_blocks(sizes["n_options"], sizes["n_features"])
    if blocks is None:
        return None
    names = []
    for name, _ in blocks:
        labels = data.options if name == sites.WORTH else spec.feature_names(data)
        names += [f"{name}[{x}]" for x in _labels(labels)]
    return np.asarray(names, dtype=str)


def _datatree(p: Prepared, posterior, extra_groups=None, with_log_likelihood=True, pointwise=None):
    observed = p.arrays["level" if is_rankings(p.arrays) else "y"]
    groups = {"posterior": posterior, "observed_data": {sites.OBS: np.asarray(observed)}, **(extra_groups or {})}
    if pointwise:
        groups["log_likelihood"] = pointwise
    elif with_log_likelihood and pointwise is None:
        ll = _log_likelihood(p.fn, dict(posterior), p.arrays, batch_ndims=2)
        groups["log_likelihood"] = {k: np.asarray(v) for k, v in ll.items()}
    return az.from_dict(groups, coords=p.coords, dims=p.dims)


# -- engines ---------------------------------------------------------------------------------------
def _nuts(p: Prepared, seed, settings, *, init=None, log_likelihood=True):
    spec = p.spec
    arrays = p.arrays if p.grouped is None else {**p.arrays, "by_user": p.grouped}
    # users' effects in partially centred coordinates where the model gives a weight (same posterior)
    choice = spec.centring_choice(p.data)
    centring = centring_weight(choice)
    if centring is not None:
        arrays = {**arrays, "centring": jax.numpy.asarray(centring)}
    if sharding.wanted(settings.devices):  # one chain's log density over several devices
        arrays = sharding.shard(spec, p.data, arrays, settings.devices)
    start = imm = None
    if init is not None:
        if not isinstance(init, Fit):
            raise ModelError(f"init must be a bayespref Fit (e.g. from method='svi'), got {type(init).__name__}.")
        same_shapes = init.sizes == p.sizes and all(
            getattr(init.data, k).equals(getattr(p.data, k)) for k in ("options", "users"))
        if init.model != spec or not same_shapes:
            raise ModelError("init: the given fit is of another model, or of data with other options, users, "
                             "features or covariates; start from a fit of the same model whose parameters have "
                             "the same shapes and labels (the judgements themselves may differ, e.g. a warm "
                             "start after new judgements).")
        post = init.idata.posterior
        if centring is not None:
            post = spec.centred_draws(post, arrays, p.sizes)
        start = init_from_draws(p.fn, arrays, post, settings.chains)
        if settings.dense_mass is False:
            imm = mass_from_draws(p.fn, arrays, post)
    modes = None
    n_modes = settings.init_modes if settings.init_modes is not None else (8 if spec.multimodal() else 0)
    if init is None and n_modes:
        found = init_from_modes(p.fn, arrays, jax.random.fold_in(as_key(seed), 7), settings.chains, n_modes)
        start, modes = found["init"], found["info"]
        if settings.dense_mass is False:
            imm = found["inverse_mass_matrix"]
    run = run_nuts(p.fn, arrays, seed, settings, log_likelihood=log_likelihood, init=start,
                   inverse_mass_matrix=imm)
    runs = [run]

    def tree():
        def joined(part):
            return {k: np.concatenate([getattr(r, part)[k] for r in runs], axis=1) for k in getattr(run, part)}
        # the sampler's coordinates are left out; the posterior keeps the model's own
        samples = {k: v for k, v in joined("samples").items() if k not in spec.sampler_sites}
        return _datatree(p, samples, {"sample_stats": joined("stats")}, pointwise=joined("log_likelihood"))

    def draw_more():
        """``settings.draws`` more draws per chain from where the chains stopped: (tree of all draws, seconds)."""
        runs.append(run_nuts(p.fn, arrays, seed, settings, log_likelihood=log_likelihood, init=start,
                             inverse_mass_matrix=imm, resume=runs[-1].state))
        return tree(), runs[-1].sampling_s

    dt = tree()
    info = {"sampler_reused": bool(run.cached), "init_mass_matrix": imm is not None,
            "centring": None if choice is None else choice["centring"],
            "centring_choice": choice,
            "init_modes": modes,
            "compile_s": round(run.compile_s, 3), "warmup_s": round(run.warmup_s, 3),
            "sampling_s": round(run.sampling_s, 3), DRAW_MORE: draw_more}
    return dt, info


def _svi(p: Prepared, seed, settings, *, init=None, log_likelihood=True):
    spec = p.spec
    if settings.chunk_users is not None:
        raise ModelError("chunk_users sets the users held in memory when the data are streamed from disk (a "
                         "ParquetComparisons); these comparisons are in memory: leave it unset.")
    if settings.user_batch_size is not None and (p.grouped is None or settings.batch_size is not None):
        raise ModelError(
            "user_batch_size needs a model whose comparisons can be grouped by user (Hierarchical, on pairs "
            "with outcomes and users of not too unequal sizes) and no batch_size; use batch_size=... to "
            "subsample comparisons instead.")
    run_settings = settings
    if isinstance(settings.guide, str) and settings.guide == "hierarchical":
        if "hierarchical" not in spec.structured_guides:
            raise ModelError(f"guide='hierarchical' is not offered by {spec.family}; families that offer it: "
                             f"{_offering('structured_guides', 'hierarchical')}.")
        run_settings = dataclasses.replace(settings, guide=HierarchicalGuide(p.fn, spec, p.sizes))
    arrays = p.arrays if p.grouped is None else {**p.arrays, "by_user": p.grouped}
    if sharding.wanted(settings.devices):  # the log density over several devices (and hosts)
        arrays = sharding.shard(spec, p.data, arrays, settings.devices)
    res = run_svi(p.fn, arrays, seed, run_settings)
    draws = svi_draws(p.fn, p.arrays, res, jax.random.fold_in(as_key(seed), 1), settings.num_samples)
    dt = _datatree(p, draws, with_log_likelihood=log_likelihood)
    dt["svi"] = xr.DataTree(xr.Dataset({"loss": ("step", res.losses)}, attrs={"converged": int(res.converged)}))
    info = {"steps": res.steps, "max_steps": settings.steps, "converged": bool(res.converged), "svi_step_seconds": res.step_seconds,
            "svi_init": res.init}
    if not res.converged:
        warnings.warn(
            f"SVI stopped at {res.steps} steps without meeting the convergence rule (tol={settings.tol}). "
            "Increase steps=..., raise lr, or check fit.idata['svi'].loss.",
            ConvergenceWarning, stacklevel=3)
    return dt, info


def _laplace(p: Prepared, seed, settings, *, init=None, log_likelihood=True):
    if settings.chunk_users is not None:
        raise ModelError("chunk_users sets the users held in memory when the data are streamed from disk (a "
                         "ParquetComparisons); these comparisons are in memory: leave it unset.")
    latent, info = run_laplace(p.spec, p.data, p.arrays, p.grouped, p.sizes, seed, settings)
    if info["user_draws"]:
        draws = draws_with_deterministics(p.fn, p.arrays, latent)
    else:  # the population's draws only: the users' would not fit in memory
        draws, log_likelihood = latent, False
        if settings.progress:
            print(f"bayespref.fit: the users' draws and the log likelihood are left out ({p.sizes['n_users']:,} users "
                  f"x {info['user_effects']} effects x {settings.num_samples:,} draws > {USER_DRAWS_MAX:,} numbers); "
                  f"num_samples={info['user_draws_max_samples']} or fewer keeps them.", file=sys.stderr)
    dt = _datatree(p, draws, with_log_likelihood=log_likelihood)
    if not info["laplace_converged"]:
        warnings.warn(f"method='laplace': L-BFGS stopped without converging ({info['laplace_message']}); "
                      "the intervals may be off. Compare with method='nuts' on a subset.",
                      ConvergenceWarning, stacklevel=3)
    return dt, info


#: method name -> engine; each has its settings class in ``bayespref.inference.settings.SETTINGS``
METHODS = {"nuts": _nuts, "svi": _svi, "laplace": _laplace}
assert set(METHODS) == set(SETTINGS)
