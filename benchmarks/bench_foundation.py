#!/usr/bin/env python
"""Foundation benchmarks of bayespref: NUTS on a medium hierarchical fit, SVI on a large one.

Cases
-----
``nuts_medium``
    ``simulate.hierarchical(n_users=1000, comparisons_per_user=50, n_options=200, n_features=4)``
    (50k comparisons, user-varying feature weights) fitted with
    ``bayespref.fit(Hierarchical(), data, chains=4, warmup=1000, draws=1000, progress=False)``.
``svi_large``
    ``simulate.hierarchical(n_users=20000, comparisons_per_user=50, n_options=200, n_features=8)``
    (1M comparisons) fitted with ``bayespref.fit(..., method="svi")``, once on minibatches
    (``batch_size``) and once full batch. Each run is its own sub-case (``svi_large_mb``,
    ``svi_large_fb``) in its own process, so that peak RSS and compile times are not shared.

Every case runs in a fresh child process (cold JIT; by default also a fresh, empty JAX persistent
compilation cache, ``--warm-cache`` to use the user's cache instead), so ``ru_maxrss`` is the
peak RSS of that case alone.

How the times are split
----------------------------------------------------------------------------------------------------
* **Compile time** is read from JAX's own monitoring events (``jax.monitoring`` duration events
  ``/jax/core/compile/{jaxpr_trace,jaxpr_to_mlir_module,backend_compile}_duration``) summed over the
  phase: tracing + lowering + XLA compilation. It excludes execution, so no "small run minus big
  run" subtraction is needed.
* **NUTS phases** come from the library itself (``fit.info``): the sampler is compiled ahead of
  time (``compile_s``) and a host callback marks the end of each chain's warm-up, so ``warmup_s``
  and ``sampling_s`` are execution only (``--no-split`` reports the whole-fit time only).
  Post-processing (DataTree, diagnostics) = fit wall time - compile - warm-up - sampling.
* **SVI**: ``run_svi``, ``svi_draws`` and the DataTree builder (``_datatree``; ``_svi_datatree`` in
  the flat layout's ``bayespref.fitting``) are wrapped by timers inside the module of
  ``bayespref.fit``; seconds per step = (``run_svi`` wall - compile in it) / steps.
* **Per-gradient profile** (nuts_medium; ``--no-profile`` to skip): the jitted value-and-grad of the
  model's potential (what NUTS evaluates per leapfrog step) on one device, and, for comparison,
  the gradient of the likelihood term alone written (a) as the library writes it (gather
  ``v[user]`` then a row-wise sum) and (b) grouped by user with ``einsum`` (no gather/scatter).

Usage
-----
    python benchmarks/bench_foundation.py --case all            # full runs, rewrites RESULTS.md blocks
    python benchmarks/bench_foundation.py --case nuts_medium --quick   # smoke version, prints only

``--quick`` shrinks every size (and does not touch RESULTS.md unless ``--write`` is given).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import pathlib
import platform
import re
import subprocess
import sys
import tempfile
import time

from _common import loadavg, peak_rss_mb, write_json

HERE = pathlib.Path(__file__).resolve().parent
RESULTS = HERE / "RESULTS.md"
SUBCASES = {"nuts_medium": ["nuts_medium"], "svi_large": ["svi_large_mb", "svi_large_fb"]}
MARK = "@@BENCH_JSON@@"


# ---------------------------------------------------------------------------------------------
# helpers usable before JAX is imported
# ---------------------------------------------------------------------------------------------
def _machine() -> dict:
    cpu = platform.processor() or ""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = None
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal"):
                mem = round(int(line.split()[1]) / 1024 ** 2, 1)
    except OSError:
        pass
    return {"cpu": cpu, "nproc": os.cpu_count(), "sched_affinity": len(os.sched_getaffinity(0)),
            "mem_gib": mem, "python": platform.python_version(), "platform": platform.platform()}


def _versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for p in ("bayespref", "jax", "jaxlib", "numpyro", "arviz", "arviz-stats", "numpy", "xarray", "pandas"):
        try:
            out[p] = version(p)
        except PackageNotFoundError:
            out[p] = None
    return out


def _git_rev():
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=HERE, capture_output=True, text=True,
                             timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "../bayespref"], cwd=HERE,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return rev + ("+dirty(bayespref/)" if dirty else "")
    except Exception:  # noqa: BLE001
        return None


# ---------------------------------------------------------------------------------------------
# compile-time accounting (jax.monitoring)
# ---------------------------------------------------------------------------------------------
_COMPILE_EVENTS = ("/jax/core/compile/jaxpr_trace_duration", "/jax/core/compile/jaxpr_to_mlir_module_duration",
                   "/jax/core/compile/backend_compile_duration")
_compile = {e: 0.0 for e in _COMPILE_EVENTS}
_compile_by_fun = {}  # fun_name -> seconds (all three events)
_cache_events = {}


def _install_compile_listener():
    import jax.monitoring

    def on_duration(event, duration, *args, **kwargs):
        if event in _compile:
            _compile[event] += float(duration)
            name = str(kwargs.get("fun_name", "?"))
            _compile_by_fun[name] = _compile_by_fun.get(name, 0.0) + float(duration)
            if event.endswith("backend_compile_duration"):
                _n_backend[0] += 1

    def on_span(event, start, end, *args, **kwargs):
        if event in _compile:
            _spans.append((float(start), float(end)))

    def on_event(event, *args, **kwargs):
        if "compilation_cache" in event:
            _cache_events[event] = _cache_events.get(event, 0) + 1

    jax.monitoring.register_event_duration_secs_listener(on_duration)
    jax.monitoring.register_event_time_span_listener(on_span)
    jax.monitoring.register_event_listener(on_event)


_spans: list = []
_n_backend = [0]


def _is_main(name: str) -> bool:
    """The sampler's / optimiser's main compiled loop (everything else is set-up and post-processing)."""
    return any(k in name for k in ("_fori_collect_loop", "chunk", "_sample_fn", "_laxmap"))


def _compile_total() -> float:
    """Seconds spent compiling so far: the union of the compile events' time spans (tracing of an
    inner jit happens inside the outer one's trace, so summing the durations would double count)."""
    total, cur_s, cur_e = 0.0, None, None
    for s, e in sorted(_spans):
        if cur_e is None or s > cur_e:
            if cur_e is not None:
                total += cur_e - cur_s
            cur_s, cur_e = s, e
        else:
            cur_e = max(cur_e, e)
    if cur_e is not None:
        total += cur_e - cur_s
    return total


class _Phase:
    """Wall time and compile time of a block of code."""

    def __init__(self):
        self.wall = self.compile = 0.0

    def __enter__(self):
        self._t, self._c = time.perf_counter(), _compile_total()
        return self

    def __exit__(self, *exc):
        self.wall += time.perf_counter() - self._t
        self.compile += _compile_total() - self._c
        return False


# ---------------------------------------------------------------------------------------------
# sizes
# ---------------------------------------------------------------------------------------------
def _sizes(case: str, quick: bool) -> dict:
    if case == "nuts_medium":
        if quick:
            return dict(n_users=50, comparisons_per_user=20, n_options=30, n_features=4, chains=4, warmup=50, draws=50)
        return dict(n_users=1000, comparisons_per_user=50, n_options=200, n_features=4, chains=4, warmup=1000,
                    draws=1000)
    if quick:
        return dict(n_users=500, comparisons_per_user=20, n_options=50, n_features=8)
    return dict(n_users=20000, comparisons_per_user=50, n_options=200, n_features=8)


def _simulate(sz, seed):
    import bayespref

    with _Phase() as ph:
        sim = bayespref.simulate.hierarchical(n_users=sz["n_users"], comparisons_per_user=sz["comparisons_per_user"],
                                              n_options=sz["n_options"], n_features=sz["n_features"], seed=seed)
    with _Phase() as ph2:
        data = sim.comparisons()
    return sim, data, {"simulate_s": ph.wall, "comparisons_s": ph2.wall, "n_comparisons": int(data.n_comparisons)}


# ---------------------------------------------------------------------------------------------
# diagnostics and recovery
# ---------------------------------------------------------------------------------------------
def pd_unique(s):
    import pandas as pd

    return pd.unique(s.to_numpy())


def _ess_rhat(post, names):
    """min bulk ESS, min tail ESS, max R-hat over ``names`` (constant entries, e.g. the fixed
    elements of a Cholesky factor, give NaN and are skipped)."""
    import arviz as az
    import numpy as np

    ds = post[[n for n in names if n in post]]
    if not ds.data_vars:
        return None
    ess = az.ess(ds, method="bulk")
    ess_t = az.ess(ds, method="tail")
    rhat = az.rhat(ds)

    def red(x, how):
        x = x.dataset if hasattr(x, "dataset") else x
        vals = [how(v.values) for v in x.data_vars.values() if np.any(np.isfinite(v.values))]
        return float(min(vals) if how is np.nanmin else max(vals)) if vals else float("nan")

    per_var = {}
    e = ess.dataset if hasattr(ess, "dataset") else ess
    for k, v in e.data_vars.items():
        per_var[k] = float(np.nanmin(v.values)) if np.any(np.isfinite(v.values)) else float("nan")
    return {"min_ess_bulk": red(ess, np.nanmin), "min_ess_tail": red(ess_t, np.nanmin),
            "max_rhat": red(rhat, np.nanmax), "min_ess_bulk_by_var": per_var}


def _recovery(post, truth, interval=0.9, truth_users=None):
    """``truth_users``: the user labels of the rows of ``truth["user_weight"]`` (the simulation's
    order). The posterior's ``user`` dim is in the order of ``Comparisons.users`` (sorted labels),
    which differs once the labels stop sorting numerically (``u9999`` < ``u10000`` fails for
    ``simulate.hierarchical``'s ``u{i:04d}`` labels at >= 10,000 users), so rows are matched by label."""
    import numpy as np

    out = {}
    lo, hi = (1 - interval) / 2, 1 - (1 - interval) / 2
    for name in ("weight", "sd_weight"):
        if name not in post or truth.get(name) is None:
            continue
        x = post[name].values.reshape(-1, *post[name].shape[2:])
        t = np.asarray(truth[name], float)
        ql, qh = np.quantile(x, [lo, hi], axis=0)
        out[name] = {"truth": t.round(4).tolist(), "mean": x.mean(0).round(4).tolist(),
                     "sd": x.std(0).round(4).tolist(),
                     "max_abs_err": float(np.max(np.abs(x.mean(0) - t))),
                     "covered_90": int(np.sum((ql <= t) & (t <= qh))), "n": int(t.size)}
    if "user_weight" in post and truth.get("user_weight") is not None:
        x = post["user_weight"].values
        x = x.reshape(-1, *x.shape[2:])
        t = np.asarray(truth["user_weight"], float)
        if truth_users is not None and "user" in post["user_weight"].coords:
            pos = {str(k): i for i, k in enumerate(truth_users)}
            t = t[[pos[str(k)] for k in post["user_weight"]["user"].values]]
        m = x.mean(0)
        ql, qh = np.quantile(x, [lo, hi], axis=0)
        out["user_weight"] = {"rmse": float(np.sqrt(np.mean((m - t) ** 2))),
                              "corr": float(np.corrcoef(m.ravel(), t.ravel())[0, 1]),
                              "coverage_90": float(np.mean((ql <= t) & (t <= qh)))}
    return out


# ---------------------------------------------------------------------------------------------
# nuts_medium
# ---------------------------------------------------------------------------------------------
def run_nuts_medium(args) -> dict:
    import bayespref

    sz = _sizes("nuts_medium", args.quick)
    sim, data, res = _simulate(sz, args.seed)
    res["sizes"] = sz
    res["phase_split"] = bool(args.split)
    whole = _Phase()
    with whole:
        f = bayespref.fit(bayespref.Hierarchical(), data, seed=args.seed, chains=sz["chains"],
                          warmup=sz["warmup"], draws=sz["draws"], progress=False)
    res["fit_wall_s"] = whole.wall
    res["compile_s"] = whole.compile
    res["compile_breakdown_s"] = {e.rsplit("/", 1)[-1]: round(v, 3) for e, v in _compile.items()}
    post = f.idata.posterior.dataset
    ss = f.idata.sample_stats.dataset
    res["sample_stats_vars"] = sorted(ss.data_vars)
    nsteps = ss["n_steps"] if "n_steps" in ss else ss["num_steps"]  # ArviZ 1.x renames num_steps
    n_samp_steps = int(nsteps.values.sum())
    res["divergences"] = int(ss["diverging"].values.sum())
    res["sampling_leapfrogs"] = n_samp_steps
    res["mean_tree_size_sampling"] = float(nsteps.values.mean())
    res["max_tree_size_sampling"] = int(nsteps.values.max())
    if "step_size" in ss:
        res["step_size"] = [float(x) for x in ss["step_size"].values[:, -1]]
    if args.split:
        # the library times its own phases: a host callback marks the end of each chain's warm-up
        res["warmup_compile_s"] = f.info["compile_s"]
        res["sampling_compile_s"] = 0.0
        res["warmup_exec_s"] = f.info["warmup_s"]
        res["sampling_exec_s"] = f.info["sampling_s"]
        res["warmup_wall_s"] = f.info["compile_s"] + f.info["warmup_s"]
        res["sampling_wall_s"] = f.info["sampling_s"]
        res["postprocess_s"] = whole.wall - res["warmup_wall_s"] - res["sampling_wall_s"]
        res["warmup_leapfrogs"] = float("nan")  # warm-up steps are not recorded by the sampler
        res["mean_tree_size_warmup"] = float("nan")
    pop = ["worth", "weight", "sd_weight", "corr_chol", "position", "log_tie"]
    d_pop = _ess_rhat(post, pop)
    d_usr = _ess_rhat(post, ["user_weight"])
    res["population"] = d_pop
    res["user_weights"] = d_usr
    min_ess = min(d_pop["min_ess_bulk"], d_usr["min_ess_bulk"])
    res["min_ess_bulk"] = min_ess
    res["max_rhat"] = max(d_pop["max_rhat"], d_usr["max_rhat"])
    res["ess_per_s_end_to_end"] = min_ess / whole.wall
    res["ess_per_s_end_to_end_pop"] = d_pop["min_ess_bulk"] / whole.wall
    if args.split:
        res["ess_per_s_sampling"] = min_ess / res["sampling_exec_s"]
        res["ess_per_s_sampling_pop"] = d_pop["min_ess_bulk"] / res["sampling_exec_s"]
        res["ess_per_s_sampling_user"] = d_usr["min_ess_bulk"] / res["sampling_exec_s"]
        res["grads_per_ess_sampling"] = n_samp_steps / min_ess
        res["grads_per_ess_incl_warmup"] = (n_samp_steps + res["warmup_leapfrogs"]) / min_ess
    res["recovery"] = _recovery(post, sim.truth, truth_users=pd_unique(sim.frame["user"]))
    res["peak_rss_mib_after_fit"] = peak_rss_mb()
    del f, post
    if args.profile:
        res["profile"] = _profile_gradient(data, sz)
    return res


def _timeit(fn, *a, n=20):
    import jax

    jax.block_until_ready(fn(*a))  # compile
    ts = []
    for _ in range(3):
        t = time.perf_counter()
        for _ in range(n):
            out = fn(*a)
        jax.block_until_ready(out)
        ts.append((time.perf_counter() - t) / n)
    return min(ts) * 1e3  # ms


def _profile_gradient(data, sz) -> dict:
    """ms per gradient: the model's potential (one device) and two forms of the likelihood term."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    from numpyro.infer.util import initialize_model

    import bayespref

    spec = bayespref.Hierarchical()
    fn = spec.bind(data)
    arrays = spec.arrays(data)
    out = {"device": str(jax.devices()[0]), "n_devices": len(jax.devices())}
    info = initialize_model(jax.random.PRNGKey(0), fn, model_args=(arrays,))
    z0 = info.param_info.z
    vg = jax.jit(jax.value_and_grad(info.potential_fn))
    out["potential_grad_ms"] = _timeit(vg, z0)
    out["x64"] = bool(jax.config.jax_enable_x64)
    out["dtype_xa"] = str(arrays["xa"].dtype)

    # likelihood term alone, at random parameters
    U, C, F, N = sz["n_users"], sz["comparisons_per_user"], sz["n_features"], int(data.n_comparisons)
    rng = np.random.default_rng(0)
    v = jnp.asarray(rng.normal(size=(U, F)), jnp.float32)
    worth = jnp.asarray(rng.normal(size=(int(data.n_options),)), jnp.float32)
    u, a, b, y = arrays["user"], arrays["a"], arrays["b"], arrays["y"].astype(jnp.float32)
    dx = (arrays["xa"] - arrays["xb"]).astype(jnp.float32)

    def ll_gather(v, worth):
        d = worth[a] - worth[b] + jnp.sum(dx * v[u], -1)
        return jnp.sum(y * d - jnp.logaddexp(0.0, d))

    sorted_by_user = bool(np.all(np.diff(np.asarray(u)) >= 0)) and N == U * C
    out["data_grouped_by_user"] = sorted_by_user
    out["lik_gather_grad_ms"] = _timeit(jax.jit(jax.grad(ll_gather, argnums=(0, 1))), v, worth)
    if sorted_by_user:
        dxg = dx.reshape(U, C, F)
        yg = y.reshape(U, C)
        ag, bg = a.reshape(U, C), b.reshape(U, C)

        def ll_grouped(v, worth):
            d = worth[ag] - worth[bg] + jnp.einsum("ucf,uf->uc", dxg, v)
            return jnp.sum(yg * d - jnp.logaddexp(0.0, d))

        def ll_grouped_noworth(v):
            d = jnp.einsum("ucf,uf->uc", dxg, v)
            return jnp.sum(yg * d - jnp.logaddexp(0.0, d))

        out["lik_grouped_einsum_grad_ms"] = _timeit(jax.jit(jax.grad(ll_grouped, argnums=(0, 1))), v, worth)
        out["lik_grouped_no_worth_grad_ms"] = _timeit(jax.jit(jax.grad(ll_grouped_noworth)), v)
    return out


# ---------------------------------------------------------------------------------------------
# svi_large
# ---------------------------------------------------------------------------------------------
def run_svi_large(args, full_batch: bool) -> dict:
    import importlib

    import numpy as np

    import bayespref
    import bayespref.errors

    fit_fn = bayespref.fit
    fit_mod = importlib.import_module(fit_fn.__module__)  # bayespref.inference.fit (earlier: bayespref.fitting)
    # the DataTree builder: _datatree in bayespref.inference.fit, _svi_datatree in the flat layout's fitting.py
    dt_name = "_svi_datatree" if hasattr(fit_mod, "_svi_datatree") else "_datatree"
    sz = _sizes("svi_large", args.quick)
    sim, data, res = _simulate(sz, args.seed)
    res["sizes"] = sz
    bs = None if full_batch else (args.batch_size if not args.quick else min(args.batch_size, 1000))
    steps = args.svi_steps_fb if full_batch else args.svi_steps
    if args.quick:
        steps = min(steps, 2000)
    res.update(batch_size=bs, max_steps=steps, lr=args.lr, tol=args.tol, num_samples=args.num_samples)

    timers = {k: _Phase() for k in ("run_svi", "svi_draws", "svi_datatree")}
    orig = {k: getattr(fit_mod, k) for k in ("run_svi", "svi_draws", dt_name)}

    def wrap(name, key):
        def inner(*a, **kw):
            with timers[key]:
                out = orig[name](*a, **kw)
            if name == "run_svi":
                res["_svi_result"] = out
            return out
        return inner

    fit_mod.run_svi = wrap("run_svi", "run_svi")
    fit_mod.svi_draws = wrap("svi_draws", "svi_draws")
    setattr(fit_mod, dt_name, wrap(dt_name, "svi_datatree"))
    whole = _Phase()
    import warnings

    try:
        with warnings.catch_warnings(record=True) as wlist:
            warnings.simplefilter("always", bayespref.errors.ConvergenceWarning)
            with whole:
                f = fit_fn(bayespref.Hierarchical(), data, method="svi", seed=args.seed, steps=steps,
                                  lr=args.lr, tol=args.tol, batch_size=bs, num_samples=args.num_samples,
                                  progress=False)
    finally:
        for k, v in orig.items():
            setattr(fit_mod, k, v)
    res["warnings"] = [str(w.message)[:200] for w in wlist]
    r = res.pop("_svi_result")
    losses = np.asarray(r.losses, float)
    every = 500
    res["fit_wall_s"] = whole.wall
    res["compile_s"] = whole.compile
    t = timers["run_svi"]
    res["run_svi_wall_s"], res["run_svi_compile_s"] = t.wall, t.compile
    res["steps"] = int(r.steps)
    res["converged_rule_fired"] = bool(r.converged)
    res["ms_per_step"] = 1e3 * (t.wall - t.compile) / max(r.steps, 1)
    res["svi_draws_s"] = timers["svi_draws"].wall
    res["svi_draws_compile_s"] = timers["svi_draws"].compile
    res["svi_datatree_s"] = timers["svi_datatree"].wall
    res["svi_datatree_compile_s"] = timers["svi_datatree"].compile
    res["postprocess_s"] = whole.wall - t.wall
    # loss trajectory: chunk means, and the first chunk within 0.1 % of the final chunk's mean
    n_chunks = len(losses) // every
    means = losses[: n_chunks * every].reshape(n_chunks, every).mean(1) if n_chunks else losses[None].mean(1)
    final = means[-1]
    res["chunk_mean_loss"] = [float(x) for x in means]
    within = np.nonzero(np.abs(means - final) <= 1e-3 * abs(final))[0]
    res["steps_to_within_0.1pct_of_final"] = int((within[0] + 1) * every) if within.size else None
    if within.size:
        res["seconds_to_within_0.1pct_of_final_est"] = (t.compile + (within[0] + 1) * every
                                                        * res["ms_per_step"] / 1e3)
    post = f.idata.posterior.dataset
    res["recovery"] = _recovery(post, sim.truth, truth_users=pd_unique(sim.frame["user"]))
    res["peak_rss_mib"] = peak_rss_mb()
    return res


# ---------------------------------------------------------------------------------------------
# child / parent
# ---------------------------------------------------------------------------------------------
def child(args) -> None:
    import bayespref.config

    bayespref.config.ensure_jax()  # first, as fit() would: sets the virtual CPU devices before JAX starts

    _install_compile_listener()
    import jax

    res = {"subcase": args.subcase, "quick": args.quick, "seed": args.seed,
           "started": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
           "loadavg_start": loadavg(), "git_at_start": _git_rev(), "jax_devices": [str(d) for d in jax.devices()],
           "jax_cache_dir": jax.config.jax_compilation_cache_dir, "xla_flags": os.environ.get("XLA_FLAGS")}
    t0 = time.perf_counter()
    if args.subcase == "nuts_medium":
        res.update(run_nuts_medium(args))
    elif args.subcase == "svi_large_mb":
        res.update(run_svi_large(args, full_batch=False))
    elif args.subcase == "svi_large_fb":
        res.update(run_svi_large(args, full_batch=True))
    else:
        raise SystemExit(f"unknown subcase {args.subcase}")
    res["case_wall_s"] = time.perf_counter() - t0
    res["loadavg_end"] = loadavg()
    res["peak_rss_mib"] = peak_rss_mb()
    res["jax_cache_events"] = _cache_events
    res["n_backend_compiles"] = _n_backend[0]
    main = sum(v for k, v in _compile_by_fun.items() if _is_main(k))
    res["compile_main_loop_s_sum"] = round(main, 2)
    res["compile_other_s_sum"] = round(sum(_compile_by_fun.values()) - main, 2)
    res["compile_by_function_s"] = {k: round(v, 2) for k, v in
                                    sorted(_compile_by_fun.items(), key=lambda kv: -kv[1])[:12] if v >= 0.2}
    print(MARK + json.dumps(res, default=float), flush=True)


def _child_cmd(args, subcase):
    cmd = [sys.executable, str(pathlib.Path(__file__).resolve()), "--child", subcase, "--seed", str(args.seed),
           "--batch-size", str(args.batch_size), "--svi-steps", str(args.svi_steps), "--svi-steps-fb",
           str(args.svi_steps_fb), "--lr", str(args.lr), "--tol", str(args.tol), "--num-samples",
           str(args.num_samples)]
    if args.quick:
        cmd.append("--quick")
    if not args.split:
        cmd.append("--no-split")
    if not args.profile:
        cmd.append("--no-profile")
    return cmd


def parent(args) -> None:
    subs = SUBCASES["nuts_medium"] + SUBCASES["svi_large"] if args.case == "all" else SUBCASES[args.case]
    if not args.full_batch:
        subs = [s for s in subs if s != "svi_large_fb"]
    machine, versions = _machine(), _versions()
    results = {}
    for sub in subs:
        env = dict(os.environ)
        tmp = None
        if not args.warm_cache:
            tmp = tempfile.TemporaryDirectory(prefix="bayespref-bench-jaxcache-")
            env["BAYESPREF_CACHE_DIR"] = tmp.name
        print(f"== {sub} ({'quick' if args.quick else 'full'}) ...", flush=True)
        t = time.perf_counter()
        p = subprocess.run(_child_cmd(args, sub), env=env, capture_output=True, text=True,
                           timeout=args.timeout)
        wall = time.perf_counter() - t
        if tmp is not None:
            tmp.cleanup()
        line = next((ln for ln in p.stdout.splitlines() if ln.startswith(MARK)), None)
        if p.returncode or line is None:
            print(p.stdout[-4000:], p.stderr[-6000:], sep="\n", file=sys.stderr)
            raise SystemExit(f"{sub} failed (rc={p.returncode})")
        r = json.loads(line[len(MARK):])
        r["process_wall_s"] = wall  # includes interpreter + imports
        r["warm_cache"] = bool(args.warm_cache)
        r["command"] = _repro(args, sub)
        r["stderr_warnings"] = sorted({ln.strip()[:160] for ln in p.stderr.splitlines() if "Warning" in ln})[:8]
        results[sub] = r
        print(_brief(r), flush=True)
        meta = {"date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"), "machine": machine,
                "versions": versions, "git": r.get("git_at_start") or _git_rev()}
        if args.json:  # after every sub-case, so a later failure keeps the earlier results
            write_json(args.json, {"meta": meta, "results": results}, default=float)
    if args.write if args.write is not None else not args.quick:
        _write_results(args.results, meta, results)
        print(f"updated {args.results}")


def _repro(args, sub):
    case = "nuts_medium" if sub == "nuts_medium" else "svi_large"
    s = f"python benchmarks/bench_foundation.py --case {case}"
    if args.quick:
        s += " --quick"
    if case == "svi_large":
        s += f" --batch-size {args.batch_size} --svi-steps {args.svi_steps} --svi-steps-fb {args.svi_steps_fb}"
        if args.num_samples != 1000:
            s += f" --num-samples {args.num_samples}"
    if not args.split:
        s += " --no-split"
    return s


def _brief(r):
    keys = ["fit_wall_s", "compile_s", "warmup_exec_s", "sampling_exec_s", "postprocess_s", "min_ess_bulk",
            "ess_per_s_sampling", "ess_per_s_end_to_end", "max_rhat", "divergences", "steps",
            "converged_rule_fired", "ms_per_step", "peak_rss_mib"]
    return "   " + ", ".join(f"{k}={_fmtv(r[k])}" for k in keys if k in r)


def _fmtv(v):
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


# ---------------------------------------------------------------------------------------------
# RESULTS.md
# ---------------------------------------------------------------------------------------------
_SKELETON = """# Benchmark results

Produced by `benchmarks/bench_foundation.py` (see its docstring for how each time is measured).
The blocks between `BEGIN`/`END` markers are rewritten by the script; everything else is written by hand.

<!-- BEGIN nuts_medium -->
<!-- END nuts_medium -->

<!-- BEGIN svi_large -->
<!-- END svi_large -->
"""


def _f(x, nd=1):
    if x is None:
        return "–"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int):
        return f"{x:,}"
    if isinstance(x, float):
        if x != x:
            return "nan"
        return f"{x:,.{nd}f}"
    return str(x)


def _env_lines(meta, rs):
    m, v = meta["machine"], meta["versions"]
    la = "; ".join(f"{r['subcase']}: {r.get('loadavg_start')} → {r.get('loadavg_end')}" for r in rs)
    return [
        f"*Run {meta['date']} (git {meta['git']}).* Machine: {m['cpu']}, `nproc` = {m['nproc']}, "
        f"{m['mem_gib']} GiB RAM, {m['platform']}, Python {m['python']}. Versions: "
        + ", ".join(f"{k} {val}" for k, val in v.items()) + ".",
        f"Load average (1/5/15 min) at start → end of each run: {la}. Other jobs shared the 2 cores, "
        "so wall times are noisy (±20 % is plausible); ratios within one run are more reliable.",
        f"JAX devices: {rs[0].get('jax_devices')}; XLA_FLAGS `{rs[0].get('xla_flags')}`; persistent "
        f"compilation cache: {'the user cache (warm)' if rs[0].get('warm_cache') else 'fresh empty directory (cold)'}.",
    ]


def _nuts_block(meta, r):
    s = r["sizes"]
    L = [f"## nuts_medium {'(QUICK smoke run)' if r['quick'] else ''}".rstrip(), ""]
    L += _env_lines(meta, [r]) + [""]
    L.append(f"Data: `simulate.hierarchical(n_users={s['n_users']}, comparisons_per_user={s['comparisons_per_user']}, "
             f"n_options={s['n_options']}, n_features={s['n_features']}, seed={r['seed']})` → "
             f"{r['n_comparisons']:,} comparisons. Fit: `bayespref.fit(bayespref.Hierarchical(), data, "
             f"chains={s['chains']}, warmup={s['warmup']}, draws={s['draws']}, progress=False)`.")
    L.append(f"Reproduce: `{r['command']}`")
    L.append("")
    L += ["| quantity | value |", "|---|---|"]
    rows = [
        ("simulate + build `Comparisons` (s)", f"{_f(r['simulate_s'], 2)} + {_f(r['comparisons_s'], 2)}"),
        ("**fit() wall time (s)**", _f(r["fit_wall_s"])),
        ("compile (trace+lower+XLA) within fit (s)", _f(r["compile_s"])),
        ("  of which warm-up phase / sampling phase (s)",
         f"{_f(r.get('warmup_compile_s'))} / {_f(r.get('sampling_compile_s'))}"),
        ("warm-up execution (s)", _f(r.get("warmup_exec_s"))),
        ("**sampling execution (s)**", _f(r.get("sampling_exec_s"))),
        ("post-processing: `az.from_numpyro` + log-lik + diagnostics (s)", _f(r.get("postprocess_s"))),
        ("min bulk ESS, population (worth, weight, sd_weight, corr_chol)", _f(r["population"]["min_ess_bulk"], 0)),
        ("min bulk ESS, user weights (4000 values)", _f(r["user_weights"]["min_ess_bulk"], 0)),
        ("min bulk ESS by variable", ", ".join(f"{k} {_f(v, 0)}" for k, v in
                                             {**r["population"]["min_ess_bulk_by_var"],
                                              **r["user_weights"]["min_ess_bulk_by_var"]}.items())),
        ("min tail ESS (population / users)",
         f"{_f(r['population']['min_ess_tail'], 0)} / {_f(r['user_weights']['min_ess_tail'], 0)}"),
        ("**min bulk ESS/s, sampling phase** (all / population / users)",
         f"{_f(r.get('ess_per_s_sampling'), 2)} / {_f(r.get('ess_per_s_sampling_pop'), 2)} / "
         f"{_f(r.get('ess_per_s_sampling_user'), 2)}"),
        ("**min bulk ESS/s, end-to-end fit()** (all / population)",
         f"{_f(r['ess_per_s_end_to_end'], 2)} / {_f(r['ess_per_s_end_to_end_pop'], 2)}"),
        ("max R-hat (population / users)",
         f"{_f(r['population']['max_rhat'], 4)} / {_f(r['user_weights']['max_rhat'], 4)}"),
        ("divergences", _f(r["divergences"])),
        ("leapfrog steps per draw, mean (warm-up / sampling); max in sampling",
         f"{_f(r.get('mean_tree_size_warmup'))} / {_f(r['mean_tree_size_sampling'])}; {r['max_tree_size_sampling']}"),
        ("final step sizes per chain", ", ".join(f"{x:.3g}" for x in r.get("step_size", []))),
        ("gradients per min bulk ESS (sampling / incl. warm-up)",
         f"{_f(r.get('grads_per_ess_sampling'), 0)} / {_f(r.get('grads_per_ess_incl_warmup'), 0)}"),
        ("peak RSS of the process (MiB)", _f(r["peak_rss_mib"], 0)),
        ("process wall incl. imports, simulation, profiling (s)", _f(r["process_wall_s"])),
    ]
    L += [f"| {a} | {b} |" for a, b in rows]
    rec = r["recovery"]
    L += ["", "Recovery (posterior mean vs truth; 90 % equal-tailed intervals):", ""]
    L += ["| parameter | truth | posterior mean | posterior sd | covered (90 %) |", "|---|---|---|---|---|"]
    for name in ("weight", "sd_weight"):
        if name in rec:
            x = rec[name]
            L.append(f"| {name} | {x['truth']} | {x['mean']} | {x['sd']} | {x['covered_90']}/{x['n']} |")
    if "user_weight" in rec:
        x = rec["user_weight"]
        L.append(f"| user_weight (all) | – | RMSE {x['rmse']:.3f}, corr {x['corr']:.3f} | – | "
                 f"{100 * x['coverage_90']:.1f} % |")
    if "profile" in r:
        p = r["profile"]
        L += ["", f"Per-gradient profile (one device, {p['dtype_xa']}, best of 3×20 calls):", "",
              "| gradient | ms |", "|---|---|",
              f"| model potential (`initialize_model(...).potential_fn`, value and grad) | {p['potential_grad_ms']:.2f} |",
              f"| likelihood term, library form (gather `v[user]`, `worth[a]-worth[b]`) | {p['lik_gather_grad_ms']:.2f} |"]
        if "lik_grouped_einsum_grad_ms" in p:
            L.append(f"| likelihood term grouped by user (`einsum` on (users, 50, features)), worth gathers kept "
                     f"| {p['lik_grouped_einsum_grad_ms']:.2f} |")
            L.append(f"| likelihood term grouped by user, no worth term | {p['lik_grouped_no_worth_grad_ms']:.2f} |")
    if r.get("stderr_warnings"):
        L += ["", "Warnings on stderr: " + "; ".join(f"`{w}`" for w in r["stderr_warnings"])]
    return L


def _svi_block(meta, rs):
    L = [f"## svi_large {'(QUICK smoke run)' if rs[0]['quick'] else ''}".rstrip(), ""]
    L += _env_lines(meta, rs) + [""]
    s = rs[0]["sizes"]
    L.append(f"Data: `simulate.hierarchical(n_users={s['n_users']}, comparisons_per_user={s['comparisons_per_user']}, "
             f"n_options={s['n_options']}, n_features={s['n_features']}, seed={rs[0]['seed']})` → "
             f"{rs[0]['n_comparisons']:,} comparisons. Fit: `bayespref.fit(bayespref.Hierarchical(), data, "
             f"method=\"svi\", steps=..., lr={rs[0]['lr']}, tol={rs[0]['tol']}, batch_size=..., "
             f"num_samples={rs[0]['num_samples']}, progress=False)` (AutoNormal guide, checks every 500 steps).")
    L.append(f"Reproduce: `{rs[0]['command']}`")
    L.append("")
    hdr = ["quantity"] + [("minibatch B=" + _f(r["batch_size"])) if r["batch_size"] else "full batch" for r in rs]
    L += ["| " + " | ".join(hdr) + " |", "|" + "---|" * len(hdr)]

    def row(name, fn):
        L.append(f"| {name} | " + " | ".join(fn(r) for r in rs) + " |")

    row("simulate + build `Comparisons` (s)", lambda r: f"{_f(r['simulate_s'], 1)} + {_f(r['comparisons_s'], 1)}")
    row("**fit() wall time (s)**", lambda r: _f(r["fit_wall_s"]))
    row("compile within fit (s)", lambda r: _f(r["compile_s"]))
    row("optimisation `run_svi` wall (s) (compile in it)",
        lambda r: f"{_f(r['run_svi_wall_s'])} ({_f(r['run_svi_compile_s'])})")
    row("steps run (max)", lambda r: f"{_f(r['steps'])} ({_f(r['max_steps'])})")
    row("**stopping rule fired**", lambda r: _f(r["converged_rule_fired"]))
    row("ms per step (excl. compile)", lambda r: _f(r["ms_per_step"], 2))
    row("steps until the 500-step mean loss is within 0.1 % of the final one",
        lambda r: _f(r["steps_to_within_0.1pct_of_final"]))
    row("≈ seconds to that point (compile + steps × ms/step)",
        lambda r: _f(r.get("seconds_to_within_0.1pct_of_final_est")))
    row("final 500-step mean loss", lambda r: _f(r["chunk_mean_loss"][-1], 0))
    row("post-processing: draws + log-lik DataTree (s)",
        lambda r: f"{_f(r['svi_draws_s'])} + {_f(r['svi_datatree_s'])}")
    row("peak RSS of the process (MiB)", lambda r: _f(r["peak_rss_mib"], 0))
    for name in ("weight", "sd_weight"):
        row(f"{name}: truth", lambda r, n=name: str(r["recovery"].get(n, {}).get("truth")))
        row(f"{name}: posterior mean", lambda r, n=name: str(r["recovery"].get(n, {}).get("mean")))
        row(f"{name}: max abs error; 90 % covered",
            lambda r, n=name: (f"{r['recovery'][n]['max_abs_err']:.3f}; {r['recovery'][n]['covered_90']}/"
                               f"{r['recovery'][n]['n']}") if n in r["recovery"] else "–")
    row("user_weight: RMSE / corr / 90 % coverage",
        lambda r: (f"{r['recovery']['user_weight']['rmse']:.3f} / {r['recovery']['user_weight']['corr']:.3f} / "
                   f"{100 * r['recovery']['user_weight']['coverage_90']:.1f} %") if "user_weight" in r["recovery"]
        else r.get("recovery_note", "–"))
    row("process wall incl. imports and simulation (s)", lambda r: _f(r["process_wall_s"]))
    L += ["", "Loss trajectory (mean loss of each 500-step chunk):", ""]
    for r in rs:
        lab = f"B={r['batch_size']}" if r["batch_size"] else "full batch"
        L.append(f"* {lab}: " + ", ".join(f"{x:.6g}" for x in r["chunk_mean_loss"]))
    for r in rs:
        if r.get("warnings"):
            L.append(f"* warnings ({'B=' + str(r['batch_size']) if r['batch_size'] else 'full batch'}): "
                     + "; ".join(f"`{w}`" for w in r["warnings"]))
    return L


def _write_results(path, meta, results):
    path = pathlib.Path(path)
    text = path.read_text() if path.exists() else _SKELETON
    blocks = {}
    if "nuts_medium" in results:
        blocks["nuts_medium"] = _nuts_block(meta, results["nuts_medium"])
    svi = [results[k] for k in ("svi_large_mb", "svi_large_fb") if k in results]
    if svi:
        blocks["svi_large"] = _svi_block(meta, svi)
    for name, lines in blocks.items():
        body = "\n".join(lines)
        pat = re.compile(rf"<!-- BEGIN {name} -->.*?<!-- END {name} -->", re.S)
        new = f"<!-- BEGIN {name} -->\n{body}\n<!-- END {name} -->"
        text = pat.sub(lambda m, new=new: new, text) if pat.search(text) else text.rstrip() + "\n\n" + new + "\n"
    path.write_text(text)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--case", choices=["nuts_medium", "svi_large", "all"], default="all")
    p.add_argument("--quick", action="store_true", help="tiny smoke version (does not write RESULTS.md)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=10_000, help="SVI minibatch size (comparisons)")
    p.add_argument("--svi-steps", type=int, default=20_000, help="max SVI steps, minibatch run")
    p.add_argument("--svi-steps-fb", type=int, default=20_000, help="max SVI steps, full-batch run")
    p.add_argument("--no-full-batch", dest="full_batch", action="store_false", help="skip the full-batch SVI run")
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--tol", type=float, default=1e-4)
    p.add_argument("--num-samples", type=int, default=1000, help="SVI posterior draws (fit() default 1000)")
    p.add_argument("--no-split", dest="split", action="store_false",
                   help="NUTS: run fit() unmodified (no warm-up/sampling split)")
    p.add_argument("--no-profile", dest="profile", action="store_false", help="skip the per-gradient profile")
    p.add_argument("--warm-cache", action="store_true",
                   help="use the user's JAX persistent compilation cache (default: a fresh empty one)")
    p.add_argument("--results", default=str(RESULTS))
    p.add_argument("--write", dest="write", action="store_true", default=None, help="write RESULTS.md even with --quick")
    p.add_argument("--no-write", dest="write", action="store_false")
    p.add_argument("--json", help="also write the raw results as JSON here")
    p.add_argument("--timeout", type=float, default=3600, help="seconds per sub-case")
    p.add_argument("--render", nargs="+", metavar="JSON",
                   help="only rewrite RESULTS.md from JSON files written earlier with --json")
    p.add_argument("--child", dest="subcase", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.render:
        for path in args.render:  # each file keeps its own date / machine line
            d = json.loads(pathlib.Path(path).read_text())
            _write_results(args.results, d["meta"], d["results"])
        print(f"updated {args.results}")
    elif args.subcase:
        child(args)
    else:
        parent(args)


if __name__ == "__main__":
    main()
