"""Large data and scaling: gradient cost against the memory bound, SVI on 1M judgements, recovery, curves.

Cases (each runs in a fresh child process, so its peak RSS is its own)::

    python benchmarks/bench_scale.py grad      # log-density gradient, 1M judgements / 20k users / 8 features
    python benchmarks/bench_scale.py svi       # SVI on the same data: users subsampled, structured guide
    python benchmarks/bench_scale.py laplace --seeds 5   # method="laplace" on 1M, one process per seed
    python benchmarks/bench_scale.py recovery  # coverage of the global parameters over seeds (SVI guides)
    python benchmarks/bench_scale.py curves    # time and memory against N, U, K and D (--plot curves.png)
    python benchmarks/bench_scale.py plot --json curves.json --plot curves.png  # redraw a saved run
    python benchmarks/bench_scale.py all --json out.json

``grad`` times ``value_and_grad`` of the model's potential energy with the data passed as
arguments (as in the NUTS driver), in the per-comparison layout (user weights gathered per
comparison) and in the grouped layout (``Hierarchical.by_user_arrays``), and sets them against
(a) the memory bound: the bytes the grouped log density must read (x_a - x_b, outcomes, mask)
divided by the bandwidth of a streaming sum over an array of the same size on this machine, and
(b) the arithmetic floor: the same number of logistic log-likelihood terms and their gradient on
data already in cache-friendly form (NumPyro's Bernoulli, as in the model), and (c) the contraction alone:
value and gradient of sum_uj d_uj, d = einsum("ufj,uf->uj", dx, w), i.e. the two passes over dx
(forward product, transposed product) that any gradient of this likelihood makes. The grouped
gradient is also timed inside a jitted loop of dependent evaluations (``by_user_loop_ms``), as NUTS
evaluates it, without the per-call overhead.

``svi``: ``fit(Hierarchical(), data, method="svi", guide=..., user_batch_size=...)`` on the
simulated 1M/20k/8 data; wall time, steps, global estimates against the truth, peak RSS.

``recovery``: several seeds of smaller simulated data; fraction of the 90% intervals of the
global parameters (population weights and user SDs) that cover the truth, per guide.

``curves``: seconds per SVI step (user-subsampled, fixed batch of users) and per log-density
gradient (full data, grouped layout; NUTS cost is gradients x this) and peak RSS against the
number of judgements N, users U, features D, and types K (LatentTypes); the growth exponent is the
slope of log time on log size.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import resource
import subprocess
import sys
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _median_time(f, *args, repeats: int = 15) -> float:
    import jax

    jax.block_until_ready(f(*args))
    ts = []
    for _ in range(repeats):
        t = time.perf_counter()
        jax.block_until_ready(f(*args))
        ts.append(time.perf_counter() - t)
    return float(np.median(ts))


def _median_loop_time(g, z, arrays, steps: int = 20, repeats: int = 15) -> float:
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

    return _median_time(jax.jit(loop), z, arrays, repeats=repeats) / steps


def _simulate(users, per_user, features, seed=0):
    import bayespref as bp

    mean = np.linspace(1.0, -0.5, features)
    sim = bp.simulate.hierarchical(n_users=users, comparisons_per_user=per_user, n_options=500,
                                   n_features=features, weight_mean=mean, user_sd=0.5, seed=seed)
    return sim, sim.comparisons()


def _grad_fn(spec, data, grouped: bool):
    import jax
    from numpyro.infer.util import initialize_model, potential_energy

    fn = spec.bind(data)
    arrays = spec.arrays(data)
    if grouped:
        arrays = {**arrays, "by_user": spec.by_user_arrays(data)}
    info = initialize_model(jax.random.PRNGKey(0), fn, model_args=(arrays,))
    g = jax.jit(jax.value_and_grad(lambda z, d: potential_energy(fn, (d,), {}, z)))
    return g, info.param_info.z, arrays


# ---------------------------------------------------------------- cases
def case_grad(users=20_000, per_user=50, features=8):
    import jax
    import jax.numpy as jnp

    import bayespref as bp

    _, data = _simulate(users, per_user, features)
    spec = bp.Hierarchical()
    out = {"N": data.n_comparisons, "U": users, "D": features}
    for name, grouped in (("per_comparison", False), ("by_user", True)):
        g, z, arrays = _grad_fn(spec, data, grouped)
        out[f"{name}_ms"] = 1e3 * _median_time(g, z, arrays)
        if grouped:  # as NUTS evaluates it: inside a compiled loop
            out[f"{name}_loop_ms"] = 1e3 * _median_loop_time(g, z, arrays)
    grouped = spec.by_user_arrays(data)
    need = sum(int(np.prod(v.shape)) * v.dtype.itemsize for v in grouped.values())
    x = jnp.asarray(np.random.default_rng(0).normal(size=need // 4).astype(np.float32))
    t_stream = _median_time(jax.jit(jnp.sum), x, repeats=30)
    out.update(bytes_mb=need / 1e6, bandwidth_gbs=need / t_stream / 1e9, bound_ms=1e3 * t_stream)
    # arithmetic floor: the logistic terms (the model's Bernoulli) and their gradient alone, on a ready (U, J) array
    import numpyro.distributions as dist

    d0 = jnp.asarray(np.random.default_rng(1).normal(size=(users, per_user)).astype(np.float32))
    floor = jax.jit(jax.value_and_grad(
        lambda w, d: jnp.sum(dist.Bernoulli(logits=d + w[:, None]).log_prob(grouped["y"]))))
    out["logistic_floor_ms"] = 1e3 * _median_time(floor, jnp.zeros(users), d0)
    # the contraction alone: forward product and its transpose, two passes over dx
    contraction = jax.jit(jax.value_and_grad(lambda w, dx: jnp.sum(jnp.einsum("ufj,uf->uj", dx, w))))
    out["contraction_ms"] = 1e3 * _median_time(contraction, jnp.zeros((users, features), jnp.float32),
                                               grouped["dx"])
    out["by_user_over_bound"] = out["by_user_ms"] / out["bound_ms"]
    out["by_user_loop_over_bound"] = out["by_user_loop_ms"] / out["bound_ms"]
    out["speedup_by_user"] = out["per_comparison_ms"] / out["by_user_ms"]
    out["peak_rss_mb"] = _peak_rss_mb()
    return out


def _global_errors(fit, sim, ci=0.9):
    post = fit.idata.posterior
    rows = {}
    for name in ("weight", "sd_weight"):
        draws = post[name].values.reshape(-1, post[name].shape[-1])
        lo, hi = np.quantile(draws, [(1 - ci) / 2, (1 + ci) / 2], axis=0)
        truth = np.asarray(sim.truth[name], float)
        rows[name] = {"mean": draws.mean(0).round(4).tolist(), "truth": truth.tolist(),
                      "max_abs_error": float(np.max(np.abs(draws.mean(0) - truth))),
                      "covered": int(np.sum((lo <= truth) & (truth <= hi))), "n": int(truth.size)}
    return rows


def case_svi(users=20_000, per_user=50, features=8, guide="hierarchical", user_batch=1000, seed=0,
             lr=0.01):
    import bayespref as bp

    sim, data = _simulate(users, per_user, features, seed=seed)
    t = time.perf_counter()
    fit = bp.fit(bp.Hierarchical(), data, method="svi", guide=guide, user_batch_size=user_batch,
                 num_samples=200, log_likelihood=False, progress=False, seed=seed, lr=lr)
    wall = time.perf_counter() - t
    return {"N": data.n_comparisons, "U": users, "D": features, "guide": guide, "user_batch": user_batch,
            "wall_s": wall, "steps": fit.info["steps"], "converged": fit.info["converged"],
            "globals": _global_errors(fit, sim), "peak_rss_mb": _peak_rss_mb()}


def case_nuts(users=20_000, per_user=50, features=8, chains=4, warmup=500, draws=500, seed=0, warm=False,
              user_batch=2000):
    """NUTS on the large data (grouped layout, chosen automatically): wall time, convergence, globals.

    ``warm``: first an SVI fit (structured guide, ``user_batch`` users per step), and NUTS starts from
    its draws and variances (``fit(..., init=svi_fit)``). Convergence: the fit's automatic check
    (population parameters and 500 evenly spaced users' weights; ArviZ over all 160,000 user weights
    would take many minutes).
    """
    import arviz as az
    import jax

    import bayespref as bp

    sim, data = _simulate(users, per_user, features, seed=seed)
    out = {}
    init = None
    t = time.perf_counter()
    if warm:
        init = bp.fit(bp.Hierarchical(), data, method="svi", guide="hierarchical", user_batch_size=user_batch,
                      num_samples=200, log_likelihood=False, progress=False, seed=seed)
        out.update(svi_s=time.perf_counter() - t, svi_steps=init.info["steps"], svi_converged=init.info["converged"])
    t = time.perf_counter()
    fit = bp.fit(bp.Hierarchical(), data, chains=chains, warmup=warmup, draws=draws, log_likelihood=False,
                 progress=False, seed=seed, init=init)
    wall = time.perf_counter() - t
    diag = fit.info["convergence_check"]
    post = fit.idata.posterior
    glob = post.dataset[["weight", "sd_weight"]]
    stats = fit.idata.sample_stats
    steps = stats["n_steps"].values if "n_steps" in stats else np.full(1, np.nan)
    return {"N": data.n_comparisons, "U": users, "D": features, "chains": chains, "warmup": warmup,
            "draws": draws, "device": str(jax.devices()[0]), "wall_s": wall, **out,
            "users_checked": diag["users_checked"],
            "info": {k: v for k, v in fit.info.items() if isinstance(v, (int, float, str, bool))},
            "max_rhat_checked": diag["max_rhat"], "min_ess_bulk_checked": diag["min_ess_bulk"],
            "min_ess_tail_checked": diag["min_ess_tail"], "divergences": diag["divergences"],
            "max_rhat_globals": float(az.rhat(glob).to_array().max()),
            "min_ess_bulk_globals": float(az.ess(glob, method="bulk").to_array().min()),
            "mean_leapfrog_steps": float(np.mean(steps)), "gradients": float(np.sum(steps)),
            "step_size": float(np.mean(stats["step_size"].values)) if "step_size" in stats else None,
            "globals": _global_errors(fit, sim), "peak_rss_mb": _peak_rss_mb()}


def case_laplace(users=20_000, per_user=50, features=8, seed=0, num_samples=400):
    """``fit(Hierarchical(), data, method="laplace")`` on the large data: wall time (compilation
    included, in a fresh process), the globals against the truth, peak RSS."""
    import bayespref as bp

    sim, data = _simulate(users, per_user, features, seed=seed)
    t = time.perf_counter()
    fit = bp.fit(bp.Hierarchical(), data, method="laplace", num_samples=num_samples, log_likelihood=False,
                 progress=False, seed=seed)
    wall = time.perf_counter() - t
    return {"N": data.n_comparisons, "U": users, "D": features, "seed": seed, "num_samples": num_samples,
            "wall_s": wall, "info": {k: v for k, v in fit.info.items() if isinstance(v, (int, float, str, bool))},
            "globals": _global_errors(fit, sim), "peak_rss_mb": _peak_rss_mb()}


def case_recovery(seeds=5, users=1000, per_user=50, features=4, guides=("normal", "hierarchical")):
    import bayespref as bp

    out = {}
    for guide in guides:
        cov = {"weight": [0, 0], "sd_weight": [0, 0]}
        for seed in range(seeds):
            sim, data = _simulate(users, per_user, features, seed=seed)
            fit = bp.fit(bp.Hierarchical(), data, method="svi", guide=guide, num_samples=400,
                         log_likelihood=False, progress=False, seed=seed)
            for name, r in _global_errors(fit, sim).items():
                cov[name][0] += r["covered"]
                cov[name][1] += r["n"]
        out[guide] = {k: {"covered": c, "n": n, "rate": c / n} for k, (c, n) in cov.items()}
    return out


def case_curve_point(kind, users, per_user, features, k_types=1, steps=1000, user_batch=500):
    """Seconds per SVI step (users subsampled) and per full-data gradient, and peak RSS."""
    import bayespref as bp

    _, data = _simulate(users, per_user, features)
    if k_types > 1:
        spec, grouped, kw = bp.LatentTypes(n_types=k_types), False, {}
    else:
        spec, grouped = bp.Hierarchical(), True
        kw = {"guide": "hierarchical", "user_batch_size": min(user_batch, users - 1)}
    g, z, arrays = _grad_fn(spec, data, grouped=grouped)
    grad_s = _median_time(g, z, arrays, repeats=7)
    fit = bp.fit(spec, data, method="svi", steps=steps, log_likelihood=False, progress=False, num_samples=10,
                 tol=-1.0, **kw)
    svi_s = fit.info["svi_step_seconds"]  # timed after the first chunk, so compilation is left out
    return {"kind": kind, "N": users * per_user, "U": users, "D": features, "K": k_types,
            "grad_ms": 1e3 * grad_s, "svi_step_ms": 1e3 * svi_s, "peak_rss_mb": _peak_rss_mb()}


CURVES = {
    # vary N at fixed U (judgements per user grow)
    "N": [(2000, j, 8, 1) for j in (25, 100, 400)],
    # vary U at fixed judgements per user
    "U": [(u, 50, 8, 1) for u in (1000, 4000, 16_000)],
    "D": [(5000, 50, d, 1) for d in (2, 4, 8, 16)],  # 32: SVI diverged (NaN) at lr 0.01, see RESULTS.md
    "K": [(2000, 50, 4, k) for k in (2, 3, 5)],
}


def plot_curves(curves: dict, path: pathlib.Path) -> None:
    """Log-log panels of time per gradient and per SVI step, and peak RSS, against each size."""
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = {"N": "judgements N (2,000 users)", "U": "users U (50 judgements each)",
              "D": "features D (5,000 users x 50)", "K": "latent types K (2,000 users x 50)"}
    fig, axes = plt.subplots(2, len(curves), figsize=(3.6 * len(curves), 6.4), squeeze=False)
    for col, (kind, c) in enumerate(curves.items()):
        x = [r[kind] for r in c["rows"]]
        ax = axes[0, col]
        ax.loglog(x, [r["grad_ms"] for r in c["rows"]], "o-", label=f"gradient, slope {c['grad_exponent']:.2f}")
        ax.loglog(x, [r["svi_step_ms"] for r in c["rows"]], "s-", label=f"SVI step, slope {c['svi_exponent']:.2f}")
        ax.set_title(labels.get(kind, kind), fontsize=9)
        ax.set_ylabel("milliseconds" if col == 0 else "")
        ax.legend(fontsize=7)
        ax = axes[1, col]
        ax.loglog(x, [r["peak_rss_mb"] for r in c["rows"]], "^-", color="C2",
                  label=f"peak RSS, slope {c['rss_exponent']:.2f}")
        ax.set_xlabel(kind)
        ax.set_ylabel("MB" if col == 0 else "")
        ax.legend(fontsize=7)
    for ax in axes.flat:  # label the measured sizes only
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    for col, (kind, c) in enumerate(curves.items()):
        for ax in axes[:, col]:
            ax.set_xticks([r[kind] for r in c["rows"]], [f"{r[kind]:,}" for r in c["rows"]], fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _slope(x, y) -> float:
    return float(np.polyfit(np.log(x), np.log(y), 1)[0])


# ---------------------------------------------------------------- driver
def _child(args: list[str]) -> dict:
    cmd = [sys.executable, __file__, "--worker", json.dumps(args)]
    res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    lines = [ln for ln in res.stdout.splitlines() if ln.startswith("{")]
    if res.returncode or not lines:
        raise RuntimeError(f"worker {args} failed:\n{res.stderr[-3000:]}")
    return json.loads(lines[-1])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("case", nargs="?", choices=("grad", "svi", "nuts", "laplace", "recovery", "curves", "plot", "all"), default="grad")
    p.add_argument("--json", type=pathlib.Path)
    p.add_argument("--guide", default="hierarchical")
    p.add_argument("--user-batch", type=int, default=1000)
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--first-seed", type=int, default=0, help="laplace: seeds first-seed, first-seed + 1, ...")
    p.add_argument("--users", type=int, default=20_000, help="grad, svi, nuts: number of users (50 judgements each)")
    p.add_argument("--chains", type=int, default=4)
    p.add_argument("--warmup", type=int, default=500)
    p.add_argument("--draws", type=int, default=500)
    p.add_argument("--warm", action="store_true", help="nuts: start from an SVI fit (draws and variances)")
    p.add_argument("--plot", type=pathlib.Path, help="with curves: write the log-log figure here (PNG)")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.worker:
        name, kw = json.loads(a.worker)
        print(json.dumps(globals()[f"case_{name}"](**kw)))
        return
    if a.case == "plot":  # redraw the figure from a saved curves report
        plot_curves(json.loads(a.json.read_text())["curves"], a.plot)
        return
    report = {"machine_load": list(np.round(__import__("os").getloadavg(), 2))}
    cases = ("grad", "svi", "recovery", "curves") if a.case == "all" else (a.case,)
    for case in cases:
        if case == "grad":
            report["grad"] = _child(["grad", {"users": a.users}])
        elif case == "svi":
            report["svi"] = _child(["svi", {"guide": a.guide, "user_batch": a.user_batch, "users": a.users}])
        elif case == "nuts":
            report["nuts"] = _child(["nuts", {"users": a.users, "chains": a.chains, "warmup": a.warmup,
                                              "draws": a.draws, "warm": a.warm,
                                              "user_batch": a.user_batch}])
        elif case == "laplace":  # one fresh process per seed: each wall time includes compilation
            rows = [_child(["laplace", {"users": a.users, "seed": s}])
                    for s in range(a.first_seed, a.first_seed + a.seeds)]
            cov = {n: [sum(r["globals"][n]["covered"] for r in rows), sum(r["globals"][n]["n"] for r in rows)]
                   for n in ("weight", "sd_weight")}
            report["laplace"] = {"rows": rows, "median_wall_s": float(np.median([r["wall_s"] for r in rows])),
                                 "max_wall_s": float(max(r["wall_s"] for r in rows)),
                                 "covered": {n: {"covered": c, "n": k, "rate": c / k} for n, (c, k) in cov.items()},
                                 "max_abs_error_weight": max(r["globals"]["weight"]["max_abs_error"] for r in rows),
                                 "max_peak_rss_mb": max(r["peak_rss_mb"] for r in rows)}
        elif case == "recovery":
            report["recovery"] = _child(["recovery", {"seeds": a.seeds}])
        else:
            curves = {}
            for kind, points in CURVES.items():
                rows = []
                for u, j, d, k in points:
                    rows.append(_child(["curve_point", {"kind": kind, "users": u, "per_user": j, "features": d,
                                                        "k_types": k}]))
                    print(json.dumps(rows[-1]), flush=True)
                x = [r[kind] for r in rows]
                curves[kind] = {"rows": rows, "grad_exponent": _slope(x, [r["grad_ms"] for r in rows]),
                                "svi_exponent": _slope(x, [r["svi_step_ms"] for r in rows]),
                                "rss_exponent": _slope(x, [r["peak_rss_mb"] for r in rows])}
            report["curves"] = curves
            if a.plot:
                plot_curves(curves, a.plot)
        print(json.dumps({case: report[case]}, indent=1), flush=True)
    if a.json:
        a.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
