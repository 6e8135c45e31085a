"""A NUTS driver compiled once per model and data shape.

NumPyro's ``MCMC`` closes over the model's arguments, so every fit, even of the same model on data of
the same shape, traces and compiles the whole sampler again (seconds to tens of seconds, most of the
time of a small fit). Here the data are *arguments* of one jitted program that runs warm-up, sampling,
the transform to the constrained space and the pointwise log-likelihood for all chains (a host
callback notes when each chain ends its warm-up, so warm-up and sampling are timed apart). The compiled
program is kept in a small in-memory cache keyed by the model function, its static sizes, the shapes
and dtypes of the data and the sampler settings, so refits (cross-validation folds of equal size,
simulation-based calibration, repeated analyses) reuse it, and JAX's persistent compilation cache
(:func:`bayespref.config.setup_jax`) makes the first fit in a new process cheap too. The same program
also draws on from the chains' final states (``sample(..., resume=run.state)``: ``draws`` more per
chain, no warm-up), which :func:`bayespref.fit` uses when its convergence check asks for more draws.

The sampler itself is NumPyro's NUTS kernel (``NUTS.init`` / ``NUTS.sample``), run with
``lax.scan``, with one change to its warm-up: a diagonal mass matrix is estimated from the draws and
their gradients, and the step size settles for longer on the final one
(:mod:`bayespref.inference.adaptation`); chains run in parallel with ``pmap`` when there is a device per chain (virtual CPU
devices or several accelerators), vectorised with ``vmap`` on a single accelerator, and one after
another with ``lax.map`` otherwise.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import threading
import time

import jax
import jax.numpy as jnp
import numpy as np
from numpyro.infer import NUTS
from numpyro.infer.util import log_likelihood as _log_likelihood

from bayespref.inference import adaptation, sharding, uturn
from bayespref.models.base import SAMPLER_ONLY

#: number of compiled samplers kept (each holds an XLA executable)
CACHE_SIZE = 16
_CACHE: collections.OrderedDict = collections.OrderedDict()
_LOCK = threading.Lock()
#: how many times a sampler was built (traced and compiled); read by tests and benchmarks
BUILDS = {"count": 0}

FIELDS = ("diverging", "num_steps", "energy", "accept_prob", "potential_energy")


@dataclasses.dataclass
class NutsRun:
    """Draws of one NUTS run, as numpy arrays shaped ``(chain, draw, ...)``.

    ``samples``: constrained latent and deterministic sites; ``stats``: per-draw sampler statistics
    named as ArviZ names them; ``log_likelihood``: pointwise log-likelihood of the observed sites
    (empty when not requested); ``cached``: whether a compiled sampler was reused; ``warmup_s`` and
    ``sampling_s``: wall seconds of the two phases; ``compile_s``: seconds spent tracing and
    compiling the program (0 when cached); ``state``: the chains' final states, from which
    :func:`sample` can draw on (``resume=``).
    """

    samples: dict
    stats: dict
    log_likelihood: dict
    cached: bool
    compile_s: float = float("nan")
    warmup_s: float = float("nan")
    sampling_s: float = float("nan")
    #: the chains' final states (device arrays), for ``sample(..., resume=run.state)``
    state: object = None


def _signature(tree):
    leaves, treedef = jax.tree.flatten(tree)
    # the sharding too: a program compiled for arrays split over a device mesh serves only that layout
    return treedef, tuple((np.shape(x), np.dtype(getattr(x, "dtype", type(x))).str, bool(getattr(x, "weak_type", False)),
                           _sharding_key(x)) for x in leaves)


def _sharding_key(x):
    s = getattr(x, "sharding", None)
    if s is None or len(s.device_set) <= 1:
        return None
    return s


def _fn_key(fn):
    if isinstance(fn, functools.partial):
        return (_fn_key(fn.func), fn.args, tuple(sorted(fn.keywords.items())))
    if hasattr(fn, "__self__") and hasattr(fn, "__func__"):
        # a spec's bound method: equal specs (frozen dataclasses) share a sampler; Python compares
        # the instances of bound methods by identity, which would miss every new but equal spec
        return (fn.__func__, type(fn.__self__), fn.__self__)
    return fn


def _build(fn, chains, warmup, draws, target_accept, max_tree_depth, with_ll, method, progress, dense_mass,
           example):
    # ``imm``, when given, is the initial diagonal inverse mass matrix over all latent sites (flattened
    # in sorted site order, NumPyro's convention); an argument, so a new one does not recompile
    """One program for all chains: initialise (or resume), warm up, draw, constrain, log-likelihood.

    The program takes the chains' states and a flag ``resuming``: False runs ``warmup + draws``
    iterations from a fresh start (the states given are placeholders); True runs ``draws`` more
    iterations from the states given (a previous run's final states, warm-up over, so step size and
    mass matrix stay as adapted). Both are one compiled program, so drawing on costs no compilation.
    Returns ``(program, ids, template)``: ``template`` is a placeholder for the states.
    """
    BUILDS["count"] += 1
    every = max(1, (warmup + draws) // 50)

    def tick(i, chain_id):
        if progress:
            jax.lax.cond((i + 1) % every == 0, lambda: jax.debug.callback(_Host.advance, chain_id, every),
                         lambda: None)

    def make_kernel(init, imm):
        return NUTS(fn, target_accept_prob=target_accept, max_tree_depth=max_tree_depth,
                    dense_mass=list(dense_mass) if isinstance(dense_mass, tuple) else dense_mass,
                    inverse_mass_matrix=None if imm is None else {tuple(sorted(init)): imm})

    def one_chain(key, data, chain_id, init, imm, resume, resuming):
        kernel = make_kernel(init, imm)
        state = _resumed(kernel.init(key, warmup, init, model_args=(data,), model_kwargs={}), resume, resuming,
                         warmup + draws)

        def kept(st):
            return st.z, tuple(getattr(st, f) for f in FIELDS) + (st.adapt_state.step_size,)

        # one loop over warm-up and draws (NumPyro's kernel adapts while its own counter is below
        # ``warmup``), so the sampler's tree-building loop is compiled once, not once per phase; the
        # draws go into buffers (warm-up iterations write slot 0, which the first draw overwrites)
        buffers = jax.tree.map(lambda x: jnp.zeros((draws,) + x.shape, x.dtype),
                               jax.eval_shape(lambda st: kept(kernel.sample(st, (data,), {})), state))
        offset = jnp.where(resuming, warmup, 0)

        def step(k, carry):
            st, buf = carry
            i = k + offset
            tick(i, chain_id)
            st = kernel.sample(st, (data,), {})
            # the host notes when each chain ends its warm-up (the callback waits for that state)
            jax.lax.cond(i == warmup - 1, lambda: jax.debug.callback(_Host.warm_done, chain_id, st.potential_energy),
                         lambda: None)
            slot = jnp.maximum(i - warmup, 0)
            buf = jax.tree.map(lambda b, x: jax.lax.dynamic_update_index_in_dim(b, x, slot, 0), buf, kept(st))
            return st, buf

        if warmup == 0:
            jax.debug.callback(_Host.warm_done, chain_id, state.potential_energy)
        last, (z, extra) = jax.lax.fori_loop(0, jnp.where(resuming, draws, warmup + draws), step, (state, buffers))
        samples = jax.vmap(kernel.postprocess_fn((data,), {}))(z)
        # pointwise values from the per-comparison arrays (the grouped layout is for the sampler only)
        per_comparison = {k: v for k, v in data.items() if k not in SAMPLER_ONLY}
        ll = _log_likelihood(fn, samples, per_comparison, batch_ndims=1) if with_ll else {}
        return samples, dict(zip(FIELDS + ("step_size",), extra)), ll, _kept_state(last)

    # a placeholder for the chains' states (zeros of the shapes a fresh start has)
    key0, data0, init0, imm0 = example
    shapes = jax.eval_shape(
        lambda k, d, i, m: _kept_state(make_kernel(i, m).init(k, warmup, i, model_args=(d,), model_kwargs={})),
        key0[0], data0, None if init0 is None else jax.tree.map(lambda x: x[0], init0), imm0)
    template = jax.tree.map(lambda s: jnp.zeros((chains,) + s.shape, s.dtype), shapes)

    ids = jnp.arange(chains)
    axes = (0, None, 0, 0, None, 0, None)
    if method == "parallel":
        program = jax.pmap(one_chain, in_axes=axes, devices=jax.local_devices()[:chains])
    elif method == "vectorized":
        program = jax.jit(jax.vmap(one_chain, in_axes=axes))
    else:
        program = jax.jit(lambda keys, data, c, init, imm, resume, resuming: jax.lax.map(
            lambda a: one_chain(a[0], data, a[1], a[2], imm, a[3], resuming), (keys, c, init, resume)))
    return program, ids, template


def _kept_state(st):
    """What a chain needs to go on after warm-up: position, potential and its gradient, random key,
    and the adapted step size and mass matrix (the rest of NumPyro's ``HMCState`` is statistics of the
    last iteration or warm-up accumulators). Kept small: every output leaf costs compilation time."""
    a = st.adapt_state
    return (st.z, st.potential_energy, st.z_grad, st.rng_key, a.step_size, a.inverse_mass_matrix,
            a.mass_matrix_sqrt, a.mass_matrix_sqrt_inv)


def _resumed(fresh, kept, resuming, start):
    """``fresh`` (a new chain's state) with, when ``resuming``, the kept state of a chain that ended at
    iteration ``start`` (past warm-up, so the kernel adapts no more)."""
    z, pe, grad, key, step, imm, sqrt, sqrt_inv = jax.lax.cond(resuming, lambda: kept, lambda: _kept_state(fresh))
    adapt = fresh.adapt_state._replace(step_size=step, inverse_mass_matrix=imm, mass_matrix_sqrt=sqrt,
                                       mass_matrix_sqrt_inv=sqrt_inv)
    return fresh._replace(i=jnp.where(resuming, start, fresh.i), z=z, potential_energy=pe, z_grad=grad,
                          rng_key=key, adapt_state=adapt)


def _compile(built, keys, data, init, imm):
    """Compile ahead of time, so that compilation is timed apart from sampling. Returns
    ``(runner, template)``: ``runner(keys, data, init, imm, states, resuming)``."""
    program, ids, template = built
    compiled = program.lower(keys, data, ids, init, imm, template, jnp.bool_(False)).compile()
    return (lambda k, d, i, m, st, r: compiled(k, d, ids, i, m, st, jnp.bool_(r))), template


class _Host:
    """Host side of the device callbacks: the progress bar and the end-of-warm-up times."""

    bar = None
    warm_end: list = []

    @classmethod
    def advance(cls, chain_id, n):
        if cls.bar is not None:
            cls.bar.update(int(n))

    @classmethod
    def warm_done(cls, chain_id, _):
        cls.warm_end.append(time.perf_counter())


def sample(fn, data, key, *, chains, warmup, draws, target_accept, max_tree_depth, log_likelihood,
           method, progress, dense_mass=False, init=None, inverse_mass_matrix=None, resume=None) -> NutsRun:
    """Run NUTS on ``fn(data)`` with ``chains`` chains, reusing a compiled sampler when one fits.

    ``init``: None (NumPyro's default initialisation) or a dict of unconstrained starting values with
    a leading chain axis (one start per chain). ``inverse_mass_matrix``: None (warm-up starts from the
    identity) or, with ``init`` and a diagonal mass matrix, the starting diagonal (all sites,
    flattened in sorted site order); the adaptation windows re-estimate it as usual.

    ``resume``: None, or ``run.state`` of an earlier run with the same arguments: then ``draws`` more
    draws per chain, continuing each chain's Markov chain from where it stopped with the step size and
    mass matrix its warm-up adapted (no warm-up, no compilation: the same compiled program).
    """
    if inverse_mass_matrix is not None and (init is None or dense_mass is not False):
        raise ValueError("inverse_mass_matrix needs init and a diagonal mass matrix (dense_mass=False)")
    dense_mass = tuple(dense_mass) if isinstance(dense_mass, list) else dense_mass
    key_parts = (chains, warmup, draws, float(target_accept), int(max_tree_depth), bool(log_likelihood),
                 method, bool(progress), dense_mass, len(jax.local_devices()))
    try:
        cache_key = (_fn_key(fn), _signature(data), _signature(init), _signature(inverse_mass_matrix), key_parts)
        hash(cache_key)
    except TypeError:  # an unhashable model function: build without caching
        cache_key = None
    keys = jax.random.split(key, chains)
    with _LOCK:
        t0 = time.perf_counter()
        entry = _CACHE.get(cache_key) if cache_key is not None else None
        cached = entry is not None
        if entry is None:
            # the warm-up's mass matrix from draws and gradients; U-turn checks across merged sub-trees
            with adaptation.patched(), uturn.patched():
                entry = _compile(_build(fn, chains, warmup, draws, target_accept, max_tree_depth, log_likelihood,
                                        method, progress, dense_mass, (keys, data, init, inverse_mass_matrix)),
                                 keys, data, init, inverse_mass_matrix)
            if cache_key is not None:
                _CACHE[cache_key] = entry
                while len(_CACHE) > CACHE_SIZE:
                    _CACHE.popitem(last=False)
        else:
            _CACHE.move_to_end(cache_key)
        runner, template = entry
        t1 = time.perf_counter()
        _Host.bar = progress_bar(chains * (draws if resume is not None else warmup + draws), progress,
                                 desc="NUTS (more draws)" if resume is not None else "NUTS")
        _Host.warm_end = []
        try:
            samples, extra, ll, state = runner(keys, data, init, inverse_mass_matrix,
                                               template if resume is None else resume, resume is not None)
            # on this host (gathered from every process when a sharded fit spans several)
            samples, extra, ll = sharding.gather((samples, extra, ll))
            t2 = time.perf_counter()
        finally:
            if _Host.bar is not None:
                _Host.bar.close()
            _Host.bar = None
        # warm-up ends when the slowest chain ends it (chains run in parallel)
        t_warm = t1 if resume is not None else max(_Host.warm_end) if _Host.warm_end else float("nan")
    return NutsRun(samples={k: np.asarray(v) for k, v in samples.items()}, stats=_stats(extra, max_tree_depth),
                   log_likelihood={k: np.asarray(v) for k, v in ll.items()}, cached=cached,
                   compile_s=t1 - t0, warmup_s=t_warm - t1, sampling_s=t2 - t_warm, state=state)


def _stats(extra, max_tree_depth):
    n_steps = np.asarray(extra["num_steps"])
    depth = np.log2(np.maximum(n_steps, 1)).astype(int) + 1
    return {
        "acceptance_rate": np.asarray(extra["accept_prob"]),
        "diverging": np.asarray(extra["diverging"]),
        "energy": np.asarray(extra["energy"]),
        "n_steps": n_steps,
        "tree_depth": depth,
        "reached_max_tree_depth": depth >= max_tree_depth,
        "lp": -np.asarray(extra["potential_energy"]),
        "step_size": np.asarray(extra["step_size"]),
    }


def progress_bar(total, enabled, desc="NUTS", unit="it"):
    """A tqdm bar (notebook-aware), or None when disabled or tqdm is missing."""
    if not enabled:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover
        return None
    return tqdm(total=total, desc=desc, unit=unit)


def clear_cache() -> None:
    """Forget the compiled samplers (frees their memory)."""
    with _LOCK:
        _CACHE.clear()


__all__ = ["BUILDS", "CACHE_SIZE", "NutsRun", "clear_cache", "sample"]
