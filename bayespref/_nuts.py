"""A NUTS driver compiled once per model and data shape.

NumPyro's ``MCMC`` closes over the model's arguments, so every fit, even of the same model on data of
the same shape, traces and compiles the whole sampler again (seconds to tens of seconds, most of the
time of a small fit). Here the data are *arguments* of one jitted program that runs warm-up, sampling,
the transform to the constrained space and the pointwise log-likelihood for all chains. The compiled
program is kept in a small in-memory cache keyed by the model function, its static sizes, the shapes
and dtypes of the data and the sampler settings, so refits (cross-validation folds of equal size,
simulation-based calibration, repeated analyses) reuse it, and JAX's persistent compilation cache
(:mod:`bayespref._jax`) makes the first fit in a new process cheap too.

The sampler itself is NumPyro's NUTS kernel (``NUTS.init`` / ``NUTS.sample``), run with
``lax.scan``; chains run in parallel with ``pmap`` when there is a device per chain (virtual CPU
devices or several accelerators), vectorised with ``vmap`` on a single accelerator, and one after
another with ``lax.map`` otherwise.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import threading
import time

from . import _jax  # noqa: I001  (first: sets XLA_FLAGS before JAX starts its backends)
import jax
import jax.numpy as jnp
import numpy as np
from numpyro.infer import NUTS
from numpyro.infer.util import log_likelihood as _log_likelihood

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
    ``sampling_s``: wall seconds of the two programs; ``compile_s``: seconds spent tracing and
    compiling them (0 when cached).
    """

    samples: dict
    stats: dict
    log_likelihood: dict
    cached: bool
    compile_s: float = float("nan")
    warmup_s: float = float("nan")
    sampling_s: float = float("nan")


def _signature(tree):
    leaves, treedef = jax.tree.flatten(tree)
    return treedef, tuple((np.shape(x), np.dtype(getattr(x, "dtype", type(x))).str, bool(getattr(x, "weak_type", False)))
                           for x in leaves)


def _fn_key(fn):
    if isinstance(fn, functools.partial):
        return (_fn_key(fn.func), fn.args, tuple(sorted(fn.keywords.items())))
    if hasattr(fn, "__self__") and hasattr(fn, "__func__"):
        # a spec's bound method: equal specs (frozen dataclasses) share a sampler; Python compares
        # the instances of bound methods by identity, which would miss every new but equal spec
        return (fn.__func__, type(fn.__self__), fn.__self__)
    return fn


def _build(fn, chains, warmup, draws, target_accept, max_tree_depth, with_ll, method, progress):
    """Two compiled programs: initialise + warm up, then draw (so their times can be told apart)."""
    BUILDS["count"] += 1
    every = max(1, (warmup + draws) // 50)
    # one kernel object for both programs: ``init`` fixes only static settings on it (tree depth,
    # adaptation schedule), never traced values, so the drawing program can reuse it
    kernel = NUTS(fn, target_accept_prob=target_accept, max_tree_depth=max_tree_depth)

    def tick(i, chain_id):
        if progress:
            jax.lax.cond((i + 1) % every == 0, lambda: jax.debug.callback(_Bar.advance, chain_id, every),
                         lambda: None)

    def warm_chain(key, data, chain_id):
        state = kernel.init(key, warmup, None, model_args=(data,), model_kwargs={})

        def step(st, i):
            tick(i, chain_id)
            return kernel.sample(st, (data,), {}), None

        state, _ = jax.lax.scan(step, state, jnp.arange(warmup))
        return state

    def draw_chain(state, data, chain_id):
        def step(st, i):
            tick(i + warmup, chain_id)
            st = kernel.sample(st, (data,), {})
            return st, (st.z, tuple(getattr(st, f) for f in FIELDS))

        _, (z, extra) = jax.lax.scan(step, state, jnp.arange(draws))
        samples = jax.vmap(kernel.postprocess_fn((data,), {}))(z)
        ll = _log_likelihood(fn, samples, data, batch_ndims=1) if with_ll else {}
        return samples, dict(zip(FIELDS, extra)), ll

    ids = jnp.arange(chains)
    if method == "parallel":
        devices = jax.local_devices()[:chains]
        warm = jax.pmap(warm_chain, in_axes=(0, None, 0), devices=devices)
        draw = jax.pmap(draw_chain, in_axes=(0, None, 0), devices=devices)
    elif method == "vectorized":
        warm = jax.jit(jax.vmap(warm_chain, in_axes=(0, None, 0)))
        draw = jax.jit(jax.vmap(draw_chain, in_axes=(0, None, 0)))
    else:
        warm = jax.jit(lambda keys, data, c: jax.lax.map(lambda kc: warm_chain(kc[0], data, kc[1]), (keys, c)))
        draw = jax.jit(lambda states, data, c: jax.lax.map(lambda sc: draw_chain(sc[0], data, sc[1]), (states, c)))
    return warm, draw, ids


def _compile(programs, keys, data):
    """Compile both programs ahead of time (so compilation is timed apart from sampling)."""
    warm, draw, ids = programs
    warm_c = warm.lower(keys, data, ids).compile()
    draw_c = draw.lower(warm_c.out_info, data, ids).compile()
    return (lambda k, d: warm_c(k, d, ids)), (lambda st, d: draw_c(st, d, ids))


class _Bar:
    """Host side of the progress bar: device callbacks advance one shared tqdm bar."""

    bar = None

    @classmethod
    def advance(cls, chain_id, n):
        if cls.bar is not None:
            cls.bar.update(int(n))


def sample(fn, data, key, *, chains, warmup, draws, target_accept, max_tree_depth, log_likelihood,
           method, progress) -> NutsRun:
    """Run NUTS on ``fn(data)`` with ``chains`` chains, reusing a compiled sampler when one fits."""
    key_parts = (chains, warmup, draws, float(target_accept), int(max_tree_depth), bool(log_likelihood),
                 method, bool(progress), len(jax.local_devices()))
    try:
        cache_key = (_fn_key(fn), _signature(data), key_parts)
        hash(cache_key)
    except TypeError:  # an unhashable model function: build without caching
        cache_key = None
    keys = jax.random.split(key, chains)
    t_start = time.perf_counter()
    with _LOCK:
        runner = _CACHE.get(cache_key) if cache_key is not None else None
        cached = runner is not None
        if runner is None:
            programs = _build(fn, chains, warmup, draws, target_accept, max_tree_depth, log_likelihood, method,
                              progress)
            runner = _compile(programs, keys, data)
            if cache_key is not None:
                _CACHE[cache_key] = runner
                while len(_CACHE) > CACHE_SIZE:
                    _CACHE.popitem(last=False)
        else:
            _CACHE.move_to_end(cache_key)
    compile_s = time.perf_counter() - t_start
    _Bar.bar = _progress_bar(chains * (warmup + draws), progress)
    warm, draw = runner
    try:
        t0 = time.perf_counter()
        state = jax.block_until_ready(warm(keys, data))
        t1 = time.perf_counter()
        samples, extra, ll = jax.device_get(draw(state, data))
        t2 = time.perf_counter()
    finally:
        if _Bar.bar is not None:
            _Bar.bar.close()
        _Bar.bar = None
    return NutsRun(samples={k: np.asarray(v) for k, v in samples.items()}, stats=_stats(extra, max_tree_depth),
                   log_likelihood={k: np.asarray(v) for k, v in ll.items()}, cached=cached,
                   compile_s=compile_s, warmup_s=t1 - t0, sampling_s=t2 - t1)


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
    }


def _progress_bar(total, enabled):
    if not enabled:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover
        return None
    return tqdm(total=total, desc="NUTS", unit="it")


def clear_cache() -> None:
    """Forget the compiled samplers (frees their memory)."""
    with _LOCK:
        _CACHE.clear()


__all__ = ["BUILDS", "CACHE_SIZE", "NutsRun", "clear_cache", "sample"]
_ = _jax  # imported for its start-up settings (virtual CPU devices, compilation cache)
