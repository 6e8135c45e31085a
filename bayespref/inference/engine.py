"""Inference back ends: NUTS (NumPyro MCMC) and SVI (autoguides, minibatches, stopping rule).

Both return plain dicts of posterior draws shaped ``(chain, draw, ...)`` plus back-end extras;
:mod:`bayespref.fitting` turns them into an ArviZ ``DataTree``.
"""

from __future__ import annotations

import dataclasses
import time
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
from numpyro.infer import SVI, Predictive, autoguide, init_to_median

from bayespref import config
from bayespref.errors import FitError
from bayespref.inference import nuts as _nuts
from bayespref.inference import sharding
from bayespref.inference.elbo import OrderedELBO
from bayespref.inference.settings import DEFAULT_ACCEPT, DEFAULT_DRAWS, NutsSettings, SviSettings
from bayespref.validate import seed as check_seed

GUIDES = {
    "normal": autoguide.AutoNormal,
    "mvn": autoguide.AutoMultivariateNormal,
    "lowrank": autoguide.AutoLowRankMultivariateNormal,
    "laplace": autoguide.AutoLaplaceApproximation,
}


def as_key(seed):
    """A JAX PRNG key from a seed: a whole number in [0, 2**32) or a key (passed through). Anything
    else (None, a string, a float, a bool, a negative number) raises a ModelError naming ``seed``."""
    seed = check_seed(seed)
    if isinstance(seed, (int, np.integer)):
        return jax.random.PRNGKey(int(seed))
    return seed


def shapes_only(f, data):
    """``f(data)`` traced abstractly (``jax.eval_shape``): shapes and dtypes of its array results, and
    whatever it records on the way, without running it. A model run op by op compiles each of its
    operations on its first run in a process (about 6 s for a hierarchical model with ties on a cold
    cache); traced, it compiles nothing. Leaves of ``data`` that are not arrays stay as they are."""
    leaves, treedef = jax.tree.flatten(data)
    is_array = [isinstance(x, (np.ndarray, jax.Array)) for x in leaves]

    def g(arrays):
        it = iter(arrays)
        out = f(jax.tree.unflatten(treedef, [next(it) if a else x for x, a in zip(leaves, is_array)]))
        return out if out is not None else 0

    return jax.eval_shape(g, [x for x, a in zip(leaves, is_array) if a])


def latent_sites(fn, data, deterministic: bool = False) -> list[str]:
    """Names of the latent sample sites of a model (what must be kept to re-run it).

    With ``deterministic=True`` the deterministic sites are listed too.
    """
    def run(full):
        tr = numpyro.handlers.trace(numpyro.handlers.seed(fn, 0)).get_trace(full)
        return [n for n, s in tr.items() if (s["type"] == "sample" and not s["is_observed"])
                or (deterministic and s["type"] == "deterministic")]

    names = []
    try:
        shapes_only(lambda full: names.extend(run(full)), data)
    except jax.errors.JAXTypeError:  # a model that needs concrete values (e.g. a user's NumPyro function)
        names = run(data)
    return names


def run_nuts(fn, data, seed, settings: NutsSettings, log_likelihood: bool = True, init: dict | None = None,
             inverse_mass_matrix=None, resume=None) -> _nuts.NutsRun:
    """Run NUTS on ``fn(data)``; chains in parallel over devices when JAX has one per chain.

    The sampler is compiled once per model, data shape and settings and reused by later fits
    (:mod:`bayespref.inference.nuts`). ``init``: starting values per chain; ``inverse_mass_matrix``: warm-up's first mass matrix;
    ``resume``: ``run.state`` of an earlier run with the same arguments, to draw ``draws`` more per chain from there.
    """
    method, n_dev = config.devices_for_chains(settings.chains)
    if sharding.wanted(settings.devices):  # each chain spans the mesh: chains one after another
        method = settings.chain_method or "sequential"
    elif settings.chain_method is not None:
        method = settings.chain_method
    elif method == "sequential" and settings.chains > 1:
        warnings.warn(
            f"JAX sees {n_dev} CPU device(s) for {settings.chains} chains, so chains run one after another. "
            "Import bayespref before other JAX code (or set XLA_FLAGS=--xla_force_host_platform_device_count="
            f"{settings.chains}) to run them in parallel.",
            stacklevel=3,
        )
    if method not in ("parallel", "vectorized", "sequential"):
        raise FitError(f"chain_method={method!r} is unknown; use 'parallel', 'vectorized' or 'sequential'.")
    dense = settings.dense_mass
    if isinstance(dense, (list, tuple)):
        dense = [tuple(b) if isinstance(b, (list, tuple)) else (b,) for b in dense]
    elif not isinstance(dense, bool):
        raise FitError(f"dense_mass={dense!r}: use True, False or a list of tuples of site names.")
    return _nuts.sample(fn, data, as_key(seed), chains=settings.chains, warmup=settings.warmup,
                        draws=DEFAULT_DRAWS if settings.draws is None else settings.draws,
                        target_accept=DEFAULT_ACCEPT if settings.target_accept is None else settings.target_accept,
                        max_tree_depth=settings.max_tree_depth, dense_mass=dense, log_likelihood=log_likelihood,
                        init=init, inverse_mass_matrix=inverse_mass_matrix, resume=resume,
                        method=method, progress=settings.progress)



@dataclasses.dataclass
class SviResult:
    guide: object
    params: dict
    losses: np.ndarray
    converged: bool
    steps: int
    #: wall seconds per step after the first chunk (which holds the compilation); NaN with one chunk
    step_seconds: float = float("nan")
    #: where the guide started: "random" (NumPyro's default) or "prior median" (the fallback)
    init: str = "random"


def init_from_draws(fn, data, posterior, chains: int) -> dict:
    """Unconstrained NUTS starting values, one per chain, taken from another fit's draws.

    ``posterior`` maps each latent site to draws shaped (chain, draw, ...) (an ArviZ posterior);
    the starts are ``chains`` draws spread evenly over the flattened draws.
    """
    from numpyro.infer.util import unconstrain_fn

    sites = latent_sites(fn, data)
    missing = [s for s in sites if s not in posterior]
    if missing:
        raise FitError(f"init: the given fit has no draws of {missing}; start from a fit of the same model "
                       "and data.")
    params = {}
    for s in sites:
        v = np.asarray(posterior[s])
        v = v.reshape((-1,) + v.shape[2:])
        idx = np.linspace(0, v.shape[0] - 1, chains).round().astype(int)
        params[s] = jnp.asarray(v[idx], dtype=jnp.float32)
    try:
        return jax.vmap(lambda p: unconstrain_fn(fn, (data,), {}, p))(params)
    except (TypeError, ValueError) as err:
        raise FitError(f"init: the given fit's draws do not fit this model's parameters ({err}). Start from "
                       "a fit of the same model and data.") from err


#: compiled mode searches, by model, data shapes and settings (reused by later fits of the same shapes)
_MODE_PROGRAMS: dict = {}


def _mode_programs(fn, data, proto, starts, max_iter):
    """(search, hessian): jitted BFGS from ``starts`` points at once, and the potential's Hessian,
    with the data as an argument so that later fits of data of the same shapes reuse them."""
    from jax.flatten_util import ravel_pytree
    from jax.scipy.optimize import minimize
    from numpyro.infer.util import potential_energy

    key = (_nuts._fn_key(fn), _nuts._signature(data), _nuts._signature(proto), starts, max_iter)
    if key not in _MODE_PROGRAMS:
        _, unravel = ravel_pytree(proto)

        def f(x, data_):
            return potential_energy(fn, (data_,), {}, unravel(x))

        def search(x0, data_):
            return jax.vmap(lambda x: minimize(lambda y: f(y, data_), x, method="BFGS",
                                               options={"maxiter": max_iter}))(x0)

        _MODE_PROGRAMS[key] = (jax.jit(search), jax.jit(jax.hessian(f)), unravel)
    return _MODE_PROGRAMS[key]


def init_from_modes(fn, data, key, chains: int, starts: int = 8, max_iter: int = 300) -> dict:
    r"""NUTS starting values at the best posterior mode found from several random starts.

    For posteriors with several modes (mixtures such as :class:`~bayespref.LatentTypes`), chains
    started at random settle in different modes; some are label permutations of each other (which
    relabelling fixes) and some are poorer local modes (which it cannot), and warm-up spends most of
    its time finding its way. Here the potential (minus the log posterior density on the unconstrained
    scale) is minimised by BFGS from ``starts`` points drawn uniformly in (-2, 2) (NumPyro's
    ``init_to_uniform`` box), all starts at once (``vmap``), and the lowest mode kept. Each chain then
    starts at a draw of the Laplace approximation there, :math:`N(\hat x, \operatorname{diag}(H^{-1}))`
    with H the Hessian of the potential (the mode clipped to the box +-10), so the chains are spread
    at the posterior's own scale, and warm-up starts from that diagonal as its inverse mass matrix.
    The search is compiled once per model and data shapes (and reused, like the sampler).

    Returns ``{"init": per-chain unconstrained values, "inverse_mass_matrix": (P,), "info": {...}}``;
    ``info`` holds the number of starts, how many converged (gradient norm below 1e-3; float32 line
    searches often stop just short of it, and the lowest point found is used either way), the best
    and worst final potentials and
    the number of distinct modes (potentials more than 0.5 apart).
    """
    from jax.flatten_util import ravel_pytree
    from numpyro.infer.util import unconstrain_fn

    k_starts, k_jitter = jax.random.split(key)
    def unconstrained(full):  # only the shapes matter: traced, not run (see shapes_only)
        tr = numpyro.handlers.trace(numpyro.handlers.seed(fn, 0)).get_trace(full)
        values = {n: site["value"] for n, site in tr.items() if site["type"] == "sample" and not site["is_observed"]}
        return unconstrain_fn(fn, (full,), {}, values)

    proto = shapes_only(unconstrained, data)
    proto = {n: jnp.zeros(proto[n].shape, proto[n].dtype) for n in sorted(proto)}
    flat0, _ = ravel_pytree(proto)
    search, hessian, unravel = _mode_programs(fn, data, proto, starts, max_iter)
    x0 = jax.random.uniform(k_starts, (starts, flat0.shape[0]), minval=-2.0, maxval=2.0, dtype=flat0.dtype)
    res = search(x0, data)
    fun = np.asarray(res.fun)
    fun = np.where(np.isfinite(fun), fun, np.inf)
    if not np.isfinite(fun).any():
        raise FitError("init_modes: every start ended at a non-finite log density; fit with init_modes=0 "
                       "(NumPyro's default initialisation) and report the model.")
    best = int(np.argmin(fun))
    x_hat = jnp.clip(res.x[best], -10.0, 10.0)
    var = None
    if x_hat.shape[0] <= 2000:
        d = jnp.diagonal(jnp.linalg.pinv(hessian(x_hat, data), hermitian=True))
        if bool(jnp.all(jnp.isfinite(d)) & jnp.all(d > 0)):
            var = jnp.clip(d, 1e-6, 100.0)
    if var is None:
        d = jnp.diagonal(res.hess_inv[best])
        var = jnp.clip(jnp.where(jnp.isfinite(d) & (d > 0), d, 1.0), 1e-6, 100.0)
    z = jax.random.normal(k_jitter, (chains, x_hat.shape[0]), dtype=x_hat.dtype)
    init = jax.vmap(unravel)(x_hat + z * jnp.sqrt(var))
    finite = np.sort(fun[np.isfinite(fun)])
    info = {"starts": int(starts), "converged": int(np.sum(np.asarray(res.success))),
            "best_potential": float(fun[best]), "worst_potential": float(finite[-1]),
            "modes": int(1 + np.sum(np.diff(finite) > 0.5))}
    return {"init": init, "inverse_mass_matrix": var, "info": info}


#: fewest draws from which :func:`mass_from_draws` estimates a starting mass matrix
MIN_MASS_DRAWS = 20


def mass_from_draws(fn, data, posterior, max_draws: int = 400):
    """A starting diagonal inverse mass matrix for NUTS: the variances of another fit's draws.

    The draws are mapped to the unconstrained space, flattened in sorted site order (NumPyro's order
    for a mass matrix over all sites) and their per-coordinate variance returned, floored at 1e-8.
    Returns None when the fit has fewer than :data:`MIN_MASS_DRAWS` draws (too few for a variance).
    Warm-up from the identity spends its first window on trees as long as the ratio of the largest
    to the smallest posterior scale; a start at the right scales removes most of that cost.
    """
    from jax.flatten_util import ravel_pytree
    from numpyro.infer.util import unconstrain_fn

    sites = sorted(latent_sites(fn, data))
    flat = {}
    for s in sites:
        v = np.asarray(posterior[s])
        flat[s] = v.reshape((-1,) + v.shape[2:])
    n = min(len(v) for v in flat.values())
    if n < MIN_MASS_DRAWS:
        return None
    idx = np.linspace(0, n - 1, min(n, max_draws)).round().astype(int)
    params = {s: jnp.asarray(v[idx], dtype=jnp.float32) for s, v in flat.items()}

    def one(p):
        u = unconstrain_fn(fn, (data,), {}, p)
        return ravel_pytree(tuple(u[s] for s in sites))[0]

    u = jax.lax.map(one, params, batch_size=50)
    return jnp.maximum(jnp.var(u, axis=0), 1e-8)


def _make_guide(fn, guide, n_users=None, **kw):
    """The autoguide named ``guide`` (a callable passes through). With ``n_users`` (users subsampled),
    the mean-field guide's user plate takes the step's ``user_batch``: without it the autoguide draws
    its own random users, and the per-user guide parameters are paired with another user's data."""
    if callable(guide):
        return guide
    if guide not in GUIDES:
        raise FitError(f"guide={guide!r} is unknown; choose from {sorted(GUIDES)} or 'hierarchical'.")
    if n_users is not None and guide == "normal":
        from bayespref.models.base import user_plate

        kw["create_plates"] = lambda *a, user_batch=None, **k: user_plate(n_users, user_batch, dim=-1)
    return GUIDES[guide](fn, **kw)


def run_svi(fn, data, seed, settings: SviSettings) -> SviResult:
    """Fit ``fn(data)`` by SVI with an autoguide and the stopping rule of :class:`SviSettings`."""
    n = int(data["items" if "level" in data else "a"].shape[0])  # comparisons, or rankings
    bs = settings.batch_size
    if bs is not None and not (0 < bs < n):
        bs = None
    n_users = int(data["covariates"].shape[0])
    ubs = settings.user_batch_size
    if ubs is not None and not (0 < ubs < n_users):
        ubs = None
    guide = _make_guide(fn, settings.guide, n_users if ubs is not None else None)

    def make_svi(g):
        return SVI(fn, g, numpyro.optim.Adam(settings.lr), OrderedELBO())

    svi = make_svi(guide)
    key_init, key_run = jax.random.split(as_key(seed))
    # users (with all their comparisons) or comparisons drawn with replacement each step; the model's
    # subsampled plates scale the likelihood (and the users' terms) by U/B or N/B
    kw = {} if ubs is None else {"user_batch": jnp.arange(ubs)}
    init_kw = dict(batch=None if bs is None else jnp.arange(bs), **kw)
    start = "random"
    state = compiled_init(svi, key_init, data, **init_kw)
    if state is None:
        if callable(settings.guide):
            raise FitError("SVI found no starting point with a finite loss for the guide given. Standardise the "
                           "option features, or use method='nuts'.")
        # NumPyro's default start, uniform(-2, 2) on the unconstrained scale, can give logits too
        # extreme for a finite gradient (e.g. 32 features); start from the prior median instead
        guide = _make_guide(fn, settings.guide, n_users if ubs is not None else None,
                            init_loc_fn=init_to_median(num_samples=15))
        svi = make_svi(guide)
        start = "prior median"
        state = compiled_init(svi, key_init, data, **init_kw)
        if state is None:
            raise FitError("SVI found no starting point with a finite log density and gradient, neither at "
                           "random nor at the prior median. Standardise the option features, or use "
                           "method='nuts'.")

    def step(data_, carry, k):
        st, psum = carry
        batch = None if bs is None else jax.random.randint(k, (bs,), 0, n)
        kw = {} if ubs is None else {"user_batch": jax.random.randint(k, (ubs,), 0, n_users)}
        st, loss = svi.update(st, data_, batch=batch, **kw)
        p = svi.get_params(st)
        psum = jax.tree.map(jnp.add, psum, p)
        return (st, psum), loss

    @jax.jit
    def chunk(st, keys, data_):
        # the data are an argument (not constants of the program): their sharding over devices is kept
        zero = jax.tree.map(jnp.zeros_like, svi.get_params(st))
        (st, psum), losses = jax.lax.scan(lambda c, k: step(data_, c, k), (st, zero), keys)
        return st, psum, losses

    every = max(10, int(settings.check_every))
    n_chunks = max(1, -(-settings.steps // every))
    losses, prev, calm, converged = [], None, 0, False
    bar = _nuts.progress_bar(n_chunks * every, settings.progress, desc="SVI", unit="step")
    psum = None
    t_first = None
    for _ in range(n_chunks):
        key_run, sub = jax.random.split(key_run)
        state, psum, chunk_losses = chunk(state, jax.random.split(sub, every), data)
        chunk_losses = sharding.gather(chunk_losses)  # waits for the chunk
        t_first = time.perf_counter() if t_first is None else t_first
        if not np.all(np.isfinite(chunk_losses)):
            raise FitError(
                "SVI loss became NaN/inf. Lower the learning rate (lr=...), standardise the features, "
                "or use method='nuts'."
            )
        losses.append(chunk_losses)
        cur = float(np.mean(chunk_losses))
        if bar is not None:
            bar.update(every)
            bar.set_postfix(loss=f"{cur:.4g}")
        if prev is not None:
            calm = calm + 1 if _plateau(prev, chunk_losses, settings.tol) else 0
            if calm >= 2:
                converged = True
                break
        prev = chunk_losses
    if bar is not None:
        bar.close()
    # on this host as numpy arrays (gathered from every device and process of a sharded fit)
    params = sharding.gather(jax.tree.map(lambda s: s / every, psum))
    timed = (len(losses) - 1) * every
    step_s = (time.perf_counter() - t_first) / timed if timed else float("nan")
    return SviResult(guide=guide, params=params, losses=np.concatenate(losses), converged=converged,
                     steps=int(sum(len(c) for c in losses)), step_seconds=step_s, init=start)


def _plateau(prev: np.ndarray, cur: np.ndarray, tol: float) -> bool:
    """True when the mean loss fell by less than ``tol`` (relative) or by less than its noise.

    The noise is two standard errors of the difference of the two chunk means, with the chunk's
    effective size taken as a tenth of its length (successive SVI losses are autocorrelated). With
    minibatches or a one-sample ELBO, this ends the run once the trend is lost in the noise.
    """
    m_prev, m_cur = float(np.mean(prev)), float(np.mean(cur))
    n_eff = max(len(cur) / 10.0, 1.0)
    se = float(np.sqrt((np.var(prev) + np.var(cur)) / n_eff))
    scale = max(abs(m_cur), 1.0)
    # the noise floor may excuse a decrease of at most 10 tol (relative), so noisy minibatch losses
    # cannot stop a run that is still clearly improving
    return (m_prev - m_cur) <= max(tol * scale, min(2.0 * se, 10 * tol * scale))


def draws_with_deterministics(fn, data, latent: dict, chunk: int = 100) -> dict:
    """Add the deterministic sites to latent draws shaped (1, S, ...), S draws in chunks of ``chunk``.

    The model is run once per draw (vectorised over a chunk), so memory stays at ``chunk`` draws of
    the model's per-comparison intermediates.
    """
    sites = latent_sites(fn, data, deterministic=True)
    flat = {k: np.asarray(v)[0] for k, v in latent.items()}
    n = len(next(iter(flat.values())))
    @jax.jit  # compiled once for all full chunks (op by op, the model's small operations each compile)
    def run(samples, data_):
        return Predictive(fn, posterior_samples=samples, return_sites=sites)(jax.random.PRNGKey(0), data_)

    parts = []
    for lo in range(0, n, chunk):
        parts.append({k: np.asarray(v) for k, v in run({k: v[lo:lo + chunk] for k, v in flat.items()}, data).items()})
    return {k: np.concatenate([p[k] for p in parts])[None] for k in sites}


def guide_predictive(fn, guide, params: dict, num_samples: int, return_sites) -> Predictive:
    """``Predictive(fn, guide=guide, params=params, ...)`` whose draws leave out the guide's parameters.

    NumPyro's ``Predictive`` takes every site of the guide's trace as a draw, ``param`` sites included,
    each broadcast to ``num_samples`` copies before the model runs: with per-user guide parameters
    (users x effects, four of them in :class:`~bayespref.inference.guides.HierarchicalGuide`) that is
    4 x users x effects x draws floats (2.6 GB at 200,000 users, 4 effects and 200 draws), even when
    the draws need one user. Here the parameters are substituted inside a handler that hides them, so
    only the guide's sample sites are drawn; the draws are the same (same keys, same values).
    """
    hidden = numpyro.handlers.block(numpyro.handlers.substitute(guide, data=params),
                                    hide_fn=lambda site: site["type"] == "param")
    return Predictive(fn, guide=hidden, num_samples=num_samples, return_sites=return_sites)


def svi_draws(fn, data, res: SviResult, seed, num_samples: int) -> dict:
    """Posterior draws from the fitted guide, shaped (1, num_samples, ...), deterministic sites included."""
    sites = latent_sites(fn, data, deterministic=True)
    pred = guide_predictive(fn, res.guide, res.params, num_samples, sites)
    out = pred(as_key(seed), data)
    return {k: np.asarray(out[k])[None] for k in sites}



#: draws of the users' effects are kept when users x effects x draws stays below this (else population only)
STREAM_USER_DRAWS = 20_000_000


def _stream_step_data(pop, chunk, idx):
    """One step's model arrays: the user-level arrays ``pop`` (every user's covariates, indexed by global
    id in the model) and the batch's rows of the chunk (grouped layout: the chunk's keys but ``users``)."""
    return {**pop, "by_user": {k: v[idx] for k, v in chunk.items() if k != "users"}}


def empty_rows(n_users: int, keys, n_features: int) -> dict:
    """Every user's rows in the grouped layout with one empty (masked) slot: what draws of the users'
    effects need from the data (none of it)."""
    shapes = {"dx": (n_users, n_features, 1), "y": (n_users, 1), "mask": (n_users, 1), "a": (n_users, 1),
              "b": (n_users, 1)}
    dtypes = {"dx": jnp.float32, "mask": bool}
    return {k: jnp.zeros(shapes[k], dtypes.get(k, jnp.int32)) for k in keys}


def compiled_init(svi, key, data, **kw):
    """``svi.init`` as one compiled program, or None when its start has no finite loss.

    Run eagerly, the guide's set-up (the autoguide's search for a starting point, the model traced op by
    op) compiled some 500 small programs: 24 s of a 39 s streamed fit of 900 judgements, against 6 s
    compiled (same state). Compiled, NumPyro cannot raise its own error for an invalid start, so the
    loss at the start is checked here (the callers raise, or retry from another start)."""
    def init(k, d, kw_):
        st = svi.init(k, d, **kw_)
        return st, svi.evaluate(st, d, **kw_)

    state, loss = jax.jit(init)(key, data, kw)
    return state if np.isfinite(float(loss)) else None


def run_svi_stream(fn, source, n_users: int, seed, settings: SviSettings, chunk_users: int, pop: dict,
                   keys: tuple) -> SviResult:
    r"""SVI on comparisons streamed in user-aligned chunks (a Parquet dataset), whole table never in memory.

    ``source.chunks(users=chunk_users)`` (:class:`~bayespref.data.readers.parquet_stream.ParquetComparisons`)
    yields chunks of whole users in the grouped layout. One epoch visits the chunks in turn; within a
    chunk the users are shuffled and cut into minibatches of ``settings.user_batch_size`` (the last
    one topped up with users drawn again from the chunk), one SVI step each. The model's user plate
    is subsampled with the batch's **global** user ids and scaled by U/B with U = ``n_users``, so
    each step's ELBO is an unbiased estimate over the chunk and an epoch's gradients sum to the full
    data's; the per-user guide parameters (U x effects) stay in memory, indexed by global id. The
    steps of a chunk run in one compiled ``lax.scan``. The stopping rule of :func:`run_svi` compares
    the mean loss of successive windows of whole epochs (at least ``check_every`` steps each); the
    parameters returned are the average over the last window, whole epochs, so the drift towards the
    users of the chunk in hand averages out. At most ``settings.steps`` steps. ``pop`` holds the
    user-level model arrays (covariates of every user), ``keys`` the grouped arrays the model reads
    (``y``, ``mask`` and ``dx`` and / or ``a``, ``b``).
    """
    ubs = int(settings.user_batch_size)
    guide = _make_guide(fn, settings.guide, n_users)
    svi = SVI(fn, guide, numpyro.optim.Adam(settings.lr), OrderedELBO())
    rng = np.random.default_rng(int(jax.random.randint(as_key(seed), (), 0, 2 ** 31 - 1)))
    key_init = jax.random.fold_in(as_key(seed), 7)

    @jax.jit
    def run_chunk(st, psum, chunk, order):
        def body(carry, idx):
            s, ps = carry
            s, loss = svi.update(s, _stream_step_data(pop, chunk, idx), user_batch=chunk["users"][idx])
            return (s, jax.tree.map(jnp.add, ps, svi.get_params(s))), loss
        (st, psum), losses = jax.lax.scan(body, (st, psum), order)
        return st, psum, losses

    state, first = None, None
    losses, prev, calm, converged, steps = [], None, 0, False, 0
    window, psum, n_window, per_check = [], None, 0, None
    timed, n_timed, epoch = 0.0, 0, 0
    while steps < settings.steps and not converged:
        n_epoch = 0
        for raw in source.chunks(users=chunk_users):
            n_valid = int(np.sum(raw["users"] >= 0))
            if n_valid == 0:
                continue
            chunk = {k: jnp.asarray(raw[k] if k != "users" else raw[k].astype(np.int32)) for k in ("users",) + keys}
            if state is None:
                idx0 = jnp.arange(min(ubs, n_valid))
                first = (chunk, idx0)
                state = compiled_init(svi, key_init, _stream_step_data(pop, chunk, idx0), user_batch=chunk["users"][idx0])
                if state is None:
                    raise FitError("SVI found no starting point with a finite loss. Standardise the option "
                                   "features, or use method='laplace'.")
            k = min(-(-n_valid // ubs), settings.steps - steps)
            if k <= 0:
                break
            perm = rng.permutation(n_valid)
            extra = rng.choice(n_valid, size=k * ubs - n_valid, replace=False) if k * ubs > n_valid else []
            order = np.concatenate([perm, np.asarray(extra, dtype=perm.dtype)])[: k * ubs].reshape(k, ubs)
            if psum is None:
                psum = jax.tree.map(jnp.zeros_like, svi.get_params(state))
            t0 = time.perf_counter()
            state, psum, chunk_losses = run_chunk(state, psum, chunk, jnp.asarray(order, dtype=jnp.int32))
            chunk_losses = np.asarray(chunk_losses)
            if epoch > 0:  # the first epoch holds the compilations
                timed += time.perf_counter() - t0
                n_timed += k
            if not np.all(np.isfinite(chunk_losses)):
                raise FitError("SVI loss became NaN/inf. Lower the learning rate (lr=...), standardise the features.")
            window.append(chunk_losses)
            steps += k
            n_epoch += k
            n_window += k
            if steps >= settings.steps:
                break
        epoch += 1
        if per_check is None:  # whole epochs per check of the stopping rule: at least check_every steps
            per_check = max(1, -(-int(settings.check_every) // max(n_epoch, 1)))
        if epoch % per_check and steps < settings.steps:
            continue
        cur = np.concatenate(window)
        losses.append(cur)
        params = jax.tree.map(lambda s, n=n_window: np.asarray(s) / n, psum)  # Polyak average over the window
        if prev is not None and len(cur) == len(prev):
            calm = calm + 1 if _plateau(prev, cur, settings.tol) else 0
            converged = calm >= 2
        prev = cur
        window, psum, n_window = [], None, 0
    step_s = timed / n_timed if n_timed else float("nan")
    res = SviResult(guide=guide, params=params, losses=np.concatenate(losses), converged=converged,
                    steps=steps, step_seconds=step_s)
    res.first = first
    res.epochs = epoch
    return res


def svi_stream_draws(fn, res: SviResult, n_users: int, seed, num_samples: int, population: list[str],
                     user_sites: list[str], pop: dict) -> dict:
    """Draws of the population sites (and, when users x effects x draws is at most
    :data:`STREAM_USER_DRAWS`, of ``user_sites`` for every user), shaped (1, num_samples, ...)."""
    chunk, idx = res.first
    n_eff = int(np.asarray(res.params.get("user_loc", res.params.get("z_auto_loc", np.zeros((1, 1))))).shape[-1])
    if user_sites and n_users * n_eff * num_samples <= STREAM_USER_DRAWS:
        # every user at once, with empty comparisons (the draws need no data): batch = all users
        keys = [k for k in chunk if k != "users"]
        data = {**pop, "by_user": empty_rows(n_users, keys, chunk["dx"].shape[1] if "dx" in chunk else 0)}
        batch, sites = jnp.arange(n_users), population + user_sites
    else:
        # one user's rows suffice for the population sites (vectorised over draws, a batch of B users
        # would hold draws x B x slots x features floats)
        idx = idx[:1]
        data, batch, sites = _stream_step_data(pop, chunk, idx), chunk["users"][idx], population
    pred = guide_predictive(fn, res.guide, res.params, num_samples, sites)
    return {k: np.asarray(v)[None] for k, v in pred(as_key(seed), data, user_batch=batch).items()}
