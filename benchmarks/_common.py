"""Helpers shared by the benchmark scripts: timers, machine state, child processes, JSON output, data.

The scripts import from here (``from _common import ...``; a script run as ``python benchmarks/X.py``
has ``benchmarks/`` on its path), never from each other. Nothing here imports JAX or bayespref at
module level, so a script can use the process helpers before JAX starts.

* timers: :func:`median_time` (median seconds per call of a jitted function, after one warm-up call)
  and :func:`median_loop_time` (seconds per evaluation inside a jitted loop, as NUTS evaluates it);
* machine state: :func:`loadavg`, :func:`peak_rss_mb`;
* child processes: :func:`run_child` runs a command and reads back the JSON its worker printed
  (:func:`last_json`);
* output: :func:`write_json`;
* data: :func:`simulate_large` (the large hierarchical case: 1M judgements at 20k users), :func:`grad_fn`
  (the jitted value and gradient of a model's potential, the data passed as arguments) and
  :func:`peer_data` (the data of ``bench_peers.py``: the same comparisons for every peer).
"""

from __future__ import annotations

import json
import os
import pathlib
import resource
import subprocess
import sys
import time

import numpy as np

BENCHMARKS = pathlib.Path(__file__).resolve().parent
ROOT = BENCHMARKS.parent
RESULTS_DIR = BENCHMARKS / "results"


def use_checkout() -> None:
    """Put the repository root first on ``sys.path`` (the checkout's ``bayespref`` and ``experiments``)."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))


# ---------------------------------------------------------------- timers
def median_time(f, *args, repeats: int = 15) -> float:
    """Median wall seconds of ``f(*args)`` (blocked until ready) over ``repeats`` calls, after one call
    that compiles."""
    import jax

    jax.block_until_ready(f(*args))
    ts = []
    for _ in range(repeats):
        t = time.perf_counter()
        jax.block_until_ready(f(*args))
        ts.append(time.perf_counter() - t)
    return float(np.median(ts))


def median_loop_time(g, z, arrays, steps: int = 20, repeats: int = 15) -> float:
    """Seconds per evaluation of ``g`` (value and gradient) in a jitted loop of dependent evaluations.

    Each evaluation starts from the last one's point moved by a tiny gradient step, as along a NUTS
    trajectory, so Python's dispatch and per-call overheads are not counted.
    """
    import jax

    def loop(z0, d):
        def body(_, zc):
            _, grad = g(zc, d)
            return jax.tree.map(lambda a, b: a - 1e-9 * b, zc, grad)
        return jax.lax.fori_loop(0, steps, body, z0)

    return median_time(jax.jit(loop), z, arrays, repeats=repeats) / steps


# ---------------------------------------------------------------- machine state
def loadavg():
    """The 1/5/15-minute load averages rounded to 2 decimals, or None where the OS has none."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def peak_rss_mb() -> float:
    """Peak resident set size of this process in MiB (Linux reports ``ru_maxrss`` in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ---------------------------------------------------------------- child processes and output
def last_json(stdout: str, marker: str = ""):
    """The JSON of the last line of ``stdout`` that starts with ``marker`` (the marker removed), or None.

    With no marker, the last line that starts with ``{``."""
    lines = [ln for ln in stdout.splitlines() if ln.startswith(marker or "{")]
    return json.loads(lines[-1][len(marker):]) if lines else None


def run_child(cmd: list[str], *, marker: str = "", env=None, timeout=None, check: bool = False):
    """Run ``cmd`` in a fresh process and read back its result: ``(result or None, CompletedProcess)``.

    The result is :func:`last_json` of its standard output; stdout and stderr are captured."""
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout, check=check)
    return last_json(proc.stdout, marker), proc


def write_json(path, obj, indent: int = 1, default=None) -> pathlib.Path:
    """Write ``obj`` as JSON to ``path`` (parent folders made as needed)."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=indent, default=default))
    return path


# ---------------------------------------------------------------- data and gradients
def simulate_large(users, per_user, features, seed=0):
    """``simulate.hierarchical`` with 500 options, population weights ``linspace(1, -0.5)`` and user SD
    0.5: the large-data case (1M judgements at 20,000 users x 50) and the scaling curves."""
    import bayespref as bp

    mean = np.linspace(1.0, -0.5, features)
    sim = bp.simulate.hierarchical(n_users=users, comparisons_per_user=per_user, n_options=500,
                                   n_features=features, weight_mean=mean, user_sd=0.5, seed=seed)
    return sim, sim.comparisons()


def grad_fn(spec, data, grouped: bool):
    """The jitted value and gradient of ``spec``'s potential energy with the data as an argument (as in
    the NUTS driver), a starting point and the arrays: ``(g, z, arrays)``; ``grouped`` adds the
    by-user layout (``spec.by_user_arrays``). JAX is set up first as ``fit`` sets it up
    (``bayespref.config.ensure_jax``), so the timings see the same devices as a fit."""
    import jax
    from numpyro.infer.util import initialize_model, potential_energy

    from bayespref import config

    config.ensure_jax()  # before JAX starts, as fit() does: virtual CPU devices, compilation cache
    fn = spec.bind(data)
    arrays = spec.arrays(data)
    if grouped:
        arrays = {**arrays, "by_user": spec.by_user_arrays(data)}
    info = initialize_model(jax.random.PRNGKey(0), fn, model_args=(arrays,))
    g = jax.jit(jax.value_and_grad(lambda z, d: potential_energy(fn, (d,), {}, z)))
    return g, info.param_info.z, arrays


def peer_data(model: str, size: str, seed: int = 0):
    """The comparisons (a bayespref ``Comparisons``) and the plain arrays every peer of
    ``bench_peers.py`` uses, for ``model`` in bt / hier / types and ``size`` in small / medium."""
    use_checkout()
    import bayespref as bp

    if model == "bt":
        n_opt, n = (30, 2000) if size == "small" else (100, 50_000)
        data = bp.simulate.bradley_terry(n_options=n_opt, n_comparisons=n, seed=seed).comparisons()
    elif model == "types":
        users, per, n_opt = (100, 20, 30) if size == "small" else (1000, 50, 100)
        data = bp.simulate.latent_types(n_users=users, comparisons_per_user=per, n_options=n_opt, n_types=3,
                                        worth_sd=1.0, seed=seed).comparisons()
    else:
        users, per = (100, 20) if size == "small" else (1000, 50)
        sim = bp.simulate.hierarchical(n_users=users, comparisons_per_user=per, n_options=200, n_features=4,
                                       weight_mean=[1.0, -0.5, 0.5, 0.0], user_sd=0.5, seed=seed)
        data = sim.comparisons()
    arrays = {
        "a": np.asarray(data.a), "b": np.asarray(data.b), "user": np.asarray(data.user),
        "y": (np.asarray(data.y) == 1).astype(int), "dx": np.asarray(data.xa - data.xb),
        "n_options": int(data.n_options), "n_users": int(data.n_users),
    }
    return data, arrays
