"""Grid mode: the estimand over a grid of (gamma, delta), by vectorised variational fits calibrated
with exact NUTS anchors, or by NUTS refits at every point."""

from __future__ import annotations

import functools
import math
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import pandas as pd
from numpyro.infer import MCMC, NUTS, SVI

from bayespref import config
from bayespref.analyses.sensitivity.benchmarks import _benchmarks, _empty_benchmarks
from bayespref.analyses.sensitivity.estimands import _estimand_from
from bayespref.analyses.sensitivity.problem import _Problem
from bayespref.analyses.sensitivity.results import GridSensitivity
from bayespref.config import devices_for_chains
from bayespref.errors import ConvergenceWarning, FitError, ModelError
from bayespref.inference.elbo import OrderedELBO
from bayespref.inference.engine import GUIDES, SviSettings, as_key, compiled_init, guide_predictive, run_svi
from bayespref.inference.result import Fit


def _default_grid(ref: np.ndarray, null: float, kind: str, n: int, bench_gamma=(), bench_delta=()):
    m, s = float(np.mean(ref)), float(np.std(ref))
    if kind == "preference":  # gamma on the logit scale of the pair
        lo = max(min(m, 1 - 1e-3), 1e-3)
        size = abs(math.log(lo / (1 - lo)))
        sign = 1.0 if m >= null else -1.0
        gmax = max(3 * size, 1.0)
    else:
        sign = 1.0 if m >= null else -1.0
        gmax = max(3 * abs(m - null) + 3 * s, 0.5)
    gmax = max([gmax] + [1.2 * abs(g) for g in bench_gamma if np.isfinite(g)])
    dmax = max([4.0] + [1.2 * abs(d) for d in bench_delta if np.isfinite(d)])
    # a positive estimate is pulled towards the null by U with gamma > 0 and delta > 0 (U = 1 users
    # weigh the effect more and are more common among the exposed), a negative one by gamma < 0
    gamma = sign * np.linspace(0, gmax, n)
    return np.sort(gamma), np.linspace(0, dmax, n)


def _as_grid(values, name) -> np.ndarray:
    arr = np.unique(np.asarray(values, dtype=float).ravel())
    if arr.size == 0 or not np.all(np.isfinite(arr)):
        raise ModelError(f"{name} must be a non-empty list of finite numbers.")
    return arr


def grid(fit, estimand, gamma=None, delta=None, *, exposure=None, prevalence: float = 0.5,
         ci_prob: float | None = None, method: str = "svi", steps: int = 3000, warm_steps: int = 5000,
         lr: float = 0.01, num_samples: int = 1000, chunk: int = 16, n_grid: int = 11, guide: str = "normal",
         anchors: tuple[int, int] | None = (2, 3),
         benchmark: bool = True, seed=0, progress: bool = False, nuts: dict | None = None) -> GridSensitivity:
    r"""The estimand over a grid of sensitivity parameters (γ, δ).

    Parameters
    ----------
    fit : Fit
        A fit of :class:`~bayespref.BradleyTerry` (with users), :class:`~bayespref.Hierarchical` or
        :class:`~bayespref.LatentTypes` (logit link), the reference: γ = 0.
    estimand : Estimand
        From :func:`group_contrast`, :func:`feature_effect` or :func:`preference`.
    gamma, delta : sequence of float, optional
        Grid values (log odds ratios). Default: ``n_grid`` values each, from 0 towards the direction
        that moves the estimate to its null (γ up to about three times the estimate, δ up to 4, both
        extended to cover the observed covariates' benchmarks).
    exposure : str or pandas.Series, optional
        What U is tied to: a user covariate column or a Series of per-user values. Default: see the
        estimand.
    prevalence : float
        P(U = 1) for a user of average exposure.
    ci_prob : float
        Probability of the equal-tailed intervals.
    method : {"svi", "nuts"}
        ``"svi"`` (default): all grid points at once (below). ``"nuts"``: a NUTS refit per point
        (``nuts``: settings for :func:`bayespref.fit`-like runs, default 2 chains x 500 + 500).
    steps, warm_steps, lr, num_samples, chunk, guide : SVI settings
        Adam steps per grid point (the last third averaged), steps of the warm-start fit at γ = 0,
        learning rate, draws per point, grid points per vectorised batch (memory), and the
        autoguide ("normal" or "lowrank"). A point whose estimand still moved by more than 1 % of
        its SD (relative to the reference fit's) between the two halves of the averaged steps is
        counted in ``info["unsettled"]`` (``info["drift_sd"]`` per point) and gives a
        ``ConvergenceWarning``: raise ``steps``. On a linear-Gaussian design with a closed-form
        answer (``tests/analyses/test_sensitivity.py``), 1,500 steps left errors up to 0.19 SD,
        3,000 up to 0.03 and 6,000 0.001.
    anchors : (int, int) or None
        Exact NUTS refits at this many γ values (spread over the grid, the largest included) times
        this many δ values (the smallest and largest included), which calibrate the fast grid (see
        Notes). None: none (the variational transport alone).
    benchmark : bool
        Measure the observed covariates' (γ, δ) (:meth:`GridSensitivity.benchmarks`).

    Notes
    -----
    **How the fast mode works.** With :math:`q_{\gamma\delta}` the variational posterior at a grid
    point and :math:`q_0` at γ = 0 (all fitted together, from the same start and with the same
    random numbers), the reference fit's posterior draws :math:`\psi^{(s)}` of the estimand are
    transported to each point by location and scale,

    .. math::

        \psi^{(s)}_{\gamma\delta} = \bar\psi + (m_{\gamma\delta} - m_0)
            + (\psi^{(s)} - \bar\psi)\, \frac{s_{\gamma\delta}}{s_0},

    where m and s are the mean and SD of the estimand under q. The variational fits thus supply how
    confounding moves and stretches the posterior (which mean-field SVI gets right far more often
    than absolute widths), and the reference posterior supplies its shape and width.

    Mean-field SVI under-shifts when confounding is strong enough that users' U becomes
    identifiable from their own judgements (each user's posterior is then bimodal and the guide
    keeps one mode). The ``anchors`` measure this: at a few grid points the augmented model is
    refitted exactly by NUTS, and the discrepancy (difference of means, log ratio of SDs, zero at
    γ = 0) is interpolated bilinearly in (|γ|, δ) and applied to the whole grid. The measured
    discrepancies are in ``info["anchors"]`` (``discrepancy_sd``: in posterior SDs); a warning is
    given when any exceeds 0.25 SD, since the interpolation between anchors is then coarse. Use
    ``method="nuts"`` to refit the points that matter exactly.

    Returns
    -------
    GridSensitivity
    """
    ci_prob = config.ci_prob(ci_prob)

    if not isinstance(fit, Fit):
        raise FitError(f"grid() needs a bayespref Fit (from bayespref.fit), got {type(fit).__name__}.")
    if method not in ("svi", "nuts"):
        raise ModelError(f"method={method!r}: use 'svi' or 'nuts'.")
    if not 0 < ci_prob < 1:
        raise ModelError(f"ci_prob={ci_prob}: use a probability in (0, 1).")
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < MIN_STEPS:
        raise ModelError(f"steps={steps!r}: use a whole number of at least {MIN_STEPS} (the last third of the steps "
                         "is averaged, in two halves that the drift check compares).")
    est = _estimand_from(estimand)
    prob = _Problem(fit, est, exposure=exposure, prevalence=prevalence)
    ref = prob.reference_draws()
    bench = _benchmarks(prob) if benchmark else _empty_benchmarks()
    if gamma is None or delta is None:
        g0, d0 = _default_grid(ref, est.null, est.kind, n_grid, bench["gamma"].to_numpy(), bench["delta"].to_numpy())
        gamma = g0 if gamma is None else gamma
        delta = d0 if delta is None else delta
    gamma, delta = _as_grid(gamma, "gamma"), _as_grid(delta, "delta")
    G, D = np.meshgrid(gamma, delta, indexing="ij")
    points = np.column_stack([G.ravel(), D.ravel()])
    nuts = {"chains": 2, "warmup": 500, "draws": 500, **(nuts or {})}
    if method == "svi":
        draws, info = _grid_svi(prob, points, ref, steps=steps, warm_steps=warm_steps, lr=lr, guide=guide,
                                num_samples=num_samples, chunk=chunk, seed=seed, progress=progress)
        if anchors:
            draws, info = _calibrate(prob, gamma, delta, draws, ref, info, anchors, seed=seed, progress=progress,
                                     nuts=nuts)
    else:
        draws, info = _grid_nuts(prob, points, seed=seed, progress=progress, **nuts)
    draws = draws.reshape(len(gamma), len(delta), -1)
    return GridSensitivity(prob, est, gamma, delta, draws, ref, ci_prob, method, info, bench)


#: a grid point's fit counts as still moving when its estimand's mean moved, relative to the reference
#: fit's (gamma = 0), by more than this share of its SD between the two halves of the averaging window
#: (``info["drift_sd"]``; both halves' draws from the same random numbers)
DRIFT_SD = 0.01
#: fewest Adam steps per grid point: two halves of at least one step in the averaged last third
MIN_STEPS = 6


def _grid_svi(prob: _Problem, points, ref, *, steps, warm_steps, lr, guide, num_samples, chunk, seed, progress):
    """Variational fits of the augmented model at every point, by continuation in gamma.

    The gamma values are visited outwards from 0 (each sign separately); all delta values of one
    gamma are fitted at once (``jax.vmap``, compiled once), each starting from the fit at the
    previous gamma and the same delta (the first from the fit at gamma = 0). Following the
    solution path keeps each fit in the posterior mode that connects to the fitted model as the
    confounding strengthens, and costs the same as independent warm starts.
    """

    if guide not in ("normal", "lowrank"):
        raise FitError(f"guide={guide!r}: use 'normal' or 'lowrank'.")
    model = prob.model()
    data = prob.arrays
    key = as_key(seed)
    k_warm, k_init, k_run, k_draw = jax.random.split(key, 4)
    # warm start: the augmented model at gamma = 0 is the fitted model
    warm = run_svi(functools.partial(model, gamma=0.0, delta=0.0), data, k_warm,
                   SviSettings(steps=warm_steps, lr=lr, guide=guide, progress=progress))
    auto = GUIDES[guide](model)
    svi = SVI(model, auto, numpyro.optim.Adam(lr), OrderedELBO())
    state0 = compiled_init(svi, k_init, data, gamma=0.0, delta=0.0)  # one program, not op by op
    if state0 is None:
        raise FitError("The augmented model has no finite loss at the fitted model's start; lower lr=..., or use "
                       "method='nuts'.")
    n_avg = max(steps // 3, 2)
    half = n_avg // 2
    value = prob.value_fn()
    sites = prob.sites()

    def estimand(params, g, d):
        """Draws of the estimand under the guide at ``params`` (through the model, not the guide's
        sample_posterior, whose set-up, compiled, holds tracers); the same key for every call, so
        two calls differ by their parameters only (common random numbers)."""
        post = guide_predictive(model, auto, params, num_samples, sites)(k_draw, data, gamma=g, delta=d)
        return jax.vmap(lambda s: value(s, g, d))(post)  # post holds exactly the estimand's sites

    def one(g, d, params0, data):
        st0 = state0._replace(optim_state=svi.optim.init(params0), rng_key=k_run)

        def step(carry, t):
            st, early, late = carry
            st, loss = svi.update(st, data, gamma=g, delta=d)
            # Polyak averages over the two halves of the last n_avg steps
            w1 = ((t >= steps - n_avg) & (t < steps - n_avg + half)).astype(jnp.float32)
            w2 = (t >= steps - n_avg + half).astype(jnp.float32)
            p = svi.get_params(st)
            early = jax.tree.map(lambda a, x: a + w1 * x, early, p)
            late = jax.tree.map(lambda a, x: a + w2 * x, late, p)
            return (st, early, late), loss

        zero = jax.tree.map(jnp.zeros_like, params0)
        (st, early, late), _ = jax.lax.scan(step, (st0, zero, zero), jnp.arange(steps))
        # the whole window's average, and each half's (one traced draw, vectorised over the three)
        three = jax.tree.map(lambda a, b: jnp.stack([(a + b) / n_avg, a / half, b / (n_avg - half)]), early, late)
        vals = jax.vmap(lambda p: estimand(p, g, d))(three)                  # (3, num_samples)
        # how far the estimand's mean moved between the two halves of the averaging window
        drift = jnp.mean(vals[2]) - jnp.mean(vals[1])
        return (jnp.mean(vals[0]), jnp.std(vals[0]), drift), svi.get_params(st)

    batch = jax.jit(jax.vmap(one, in_axes=(None, 0, 0, None)))  # compiled once
    deltas = np.unique(points[:, 1]).astype(np.float32)
    size = min(chunk, len(deltas))
    n_pad = -len(deltas) % size
    dpad = np.r_[deltas, np.repeat(deltas[-1:], n_pad)]

    def stage(g, params):
        """Fit gamma = g at every delta (chunks of ``size``), each from its own start."""
        outs, news = [], []
        for i in range(0, len(dpad), size):
            p = jax.tree.map(functools.partial(_rows, start=i, size=size), params)
            o, new = batch(jnp.float32(g), jnp.asarray(dpad[i:i + size]), p, data)
            outs.append([np.asarray(x) for x in o])
            news.append(new)
        stats = [np.concatenate([o[j] for o in outs]) for j in range(3)]
        return stats, jax.tree.map(lambda *xs: jnp.concatenate(xs), *news)

    start = jax.tree.map(lambda x: jnp.broadcast_to(x, (len(dpad),) + x.shape), warm.params)
    ref_stats, _ = stage(0.0, start)
    m0, s0 = float(ref_stats[0][0]), max(float(ref_stats[1][0]), 1e-12)
    results = {}
    gammas = np.unique(points[:, 0])
    for branch in (np.sort(gammas[gammas > 0]), np.sort(gammas[gammas < 0])[::-1]):
        params = start
        for g in branch:
            stats, params = stage(float(g), params)
            for j, d in enumerate(deltas):
                results[(float(g), float(d))] = [x[j] for x in stats]
    for j, d in enumerate(deltas):
        results[(0.0, float(d))] = [x[j] for x in ref_stats]
    m, s, drift = (np.array([results[(float(g), float(np.float32(d)))][k] for g, d in points]) for k in range(3))
    if not np.all(np.isfinite(m)) or not np.all(np.isfinite(s)):
        raise FitError("The variational fits over the grid returned NaN; lower lr=..., or use method='nuts'.")
    # a fit still moving: its estimand's mean moved, against the reference fit's (gamma = 0: the grid
    # carries m - m0, so a drift common to all points cancels), by more than DRIFT_SD of its SD
    drift_sd = np.abs(drift - float(ref_stats[2][0])) / np.maximum(s, 1e-12)
    bad = drift_sd > DRIFT_SD
    rbar = ref.mean()
    draws = rbar + (m - m0)[:, None] + (ref - rbar)[None, :] * (s / s0)[:, None]
    info = {"svi_mean": m, "svi_sd": s, "svi_ref_mean": m0, "svi_ref_sd": s0,
            "warm_converged": bool(warm.converged), "steps": steps, "warm_steps": int(warm.steps),
            "unsettled": int(np.sum(bad)), "drift_sd": drift_sd}
    if np.any(bad):
        warnings.warn(f"The variational fits of {int(np.sum(bad))} of {len(bad)} grid points were still moving at "
                      f"the end: the estimand's mean moved by up to {drift_sd.max():.2f} of its SD between the two "
                      f"halves of the last {n_avg} steps (at most {DRIFT_SD} expected); raise steps=... (or check a "
                      "few points with method='nuts').", ConvergenceWarning, stacklevel=3)
    return draws, info


def _rows(x, start, size):
    return x[start:start + size]


def _anchor_values(values: np.ndarray, k: int, skip_first: bool) -> np.ndarray:
    """k grid values spread over the grid (by |value|), the largest included."""
    v = values[np.argsort(np.abs(values))]
    if skip_first:
        idx = np.round(np.linspace(0, len(v) - 1, k + 1)).astype(int)[1:]
    else:
        idx = np.round(np.linspace(0, len(v) - 1, k)).astype(int)
    return np.unique(v[idx])


def _calibrate(prob, gamma, delta, draws, ref, info, anchors, *, seed, progress, nuts):
    """Correct the transported grid with exact NUTS refits at a few anchor points.

    At each anchor the discrepancy between NUTS and the transported draws (difference of means,
    log ratio of SDs) is measured; it is zero at gamma = 0 (where the transport is the identity) and
    interpolated bilinearly in (|gamma|, delta) between anchors; the draws are then moved and
    rescaled by it. At the anchors the result has the refit's mean and SD.
    """
    from scipy.interpolate import RegularGridInterpolator

    ng, nd = (int(x) for x in anchors)
    ga = _anchor_values(gamma, max(ng, 1), skip_first=True)
    ga = ga[ga != 0]
    da = _anchor_values(delta, max(nd, 1), skip_first=False)
    if ga.size == 0:
        return draws, info
    pts = np.array([(g, d) for g in ga for d in da])
    exact, ninfo = _grid_nuts(prob, pts, seed=jax.random.fold_in(as_key(seed), 7), progress=progress, **nuts)
    G, D = np.meshgrid(gamma, delta, indexing="ij")
    flat = np.column_stack([G.ravel(), D.ravel()])
    dm = np.zeros((ga.size, da.size))
    dl = np.zeros_like(dm)
    rows = []
    for i, (g, d) in enumerate(pts):
        k = int(np.nonzero((flat[:, 0] == g) & (flat[:, 1] == d))[0][0])
        tm, ts = draws[k].mean(), draws[k].std(ddof=1)
        em, es = exact[i].mean(), exact[i].std(ddof=1)
        a, b = np.nonzero(ga == g)[0][0], np.nonzero(da == d)[0][0]
        dm[a, b], dl[a, b] = em - tm, math.log(es / ts)
        rows.append({"gamma": g, "delta": d, "fast_mean": tm, "fast_sd": ts, "nuts_mean": em, "nuts_sd": es,
                     "discrepancy_sd": (em - tm) / es})
    # gamma = 0 row: no discrepancy; interpolate in |gamma|
    ag = np.abs(ga)
    order = np.argsort(ag)
    xg = np.r_[0.0, ag[order]]
    dm = np.vstack([np.zeros(da.size), dm[order]])
    dl = np.vstack([np.zeros(da.size), dl[order]])
    kw = {"method": "linear", "bounds_error": False, "fill_value": None}
    q = np.column_stack([np.abs(flat[:, 0]), flat[:, 1]])
    if da.size == 1:
        shift = np.interp(q[:, 0], xg, dm[:, 0])
        logscale = np.interp(q[:, 0], xg, dl[:, 0])
    else:
        shift = RegularGridInterpolator((xg, da), dm, **kw)(q)
        logscale = RegularGridInterpolator((xg, da), dl, **kw)(q)
    mean = draws.mean(1, keepdims=True)
    out = mean + shift[:, None] + (draws - mean) * np.exp(logscale)[:, None]
    info = {**info, "anchors": pd.DataFrame(rows), "anchor_nuts": ninfo}
    worst = max(abs(r["discrepancy_sd"]) for r in rows)
    if worst > 0.25:
        warnings.warn(f"The fast grid was off by up to {worst:.2f} posterior SD at the NUTS anchors (strong "
                      "confounding); it has been corrected there, but between anchors the correction is "
                      "interpolated. Refit the points that matter with method='nuts' or add anchors.",
                      ConvergenceWarning, stacklevel=3)
    return out, info


def _grid_nuts(prob: _Problem, points, *, seed, progress, chains=2, warmup=500, draws=500, target_accept=0.8):
    """NUTS refits of the augmented model at each point (compiled once, data carry (gamma, delta))."""

    model = prob.model()
    method, _ = devices_for_chains(chains)

    def fixed(data):
        model(data, gamma=data["sens_gamma"], delta=data["sens_delta"])

    mcmc = MCMC(NUTS(fixed, target_accept_prob=target_accept), num_warmup=warmup, num_samples=draws,
                num_chains=chains, chain_method=method, progress_bar=progress, jit_model_args=True)
    out, n_div = [], 0
    for i, (g, d) in enumerate(points):
        data = {**prob.arrays, "sens_gamma": jnp.float32(g), "sens_delta": jnp.float32(d)}
        mcmc.run(jax.random.fold_in(as_key(seed), i), data, extra_fields=("diverging",))
        samples = {k: v for k, v in mcmc.get_samples().items() if k in prob.sites()}
        out.append(np.asarray(prob.draws_value(samples, float(g), float(d))))
        n_div += int(np.sum(mcmc.get_extra_fields()["diverging"]))
    if n_div:
        warnings.warn(f"{n_div} divergent transitions over the NUTS refits; raise target_accept.",
                      ConvergenceWarning, stacklevel=3)
    return np.stack(out), {"chains": chains, "warmup": warmup, "draws": draws, "divergences": n_div}
