"""Large data and scaling: gradient cost against the memory bound, SVI on 1M judgements, recovery, curves.

Cases (each runs in a fresh child process, so its peak RSS is its own)::

    python benchmarks/bench_scale.py grad      # log-density gradient, 1M judgements / 20k users / 8 features
    python benchmarks/bench_scale.py svi       # SVI on the same data: users subsampled, structured guide
    python benchmarks/bench_scale.py laplace --seeds 5   # method="laplace" on 1M, one process per seed
    python benchmarks/bench_scale.py recovery  # coverage of the global parameters over seeds (SVI guides)
    python benchmarks/bench_scale.py curves    # time and memory against N, U, K and D (--plot curves.png)
    python benchmarks/bench_scale.py plot --json curves.json --plot curves.png  # redraw a saved run
    python benchmarks/bench_scale.py all --json out.json

Three more studies of the same topic have their own options (``bench_scale.py STUDY --help``)::

    python benchmarks/bench_scale.py laplace_users --users 2000   # the experiment method="laplace" grew from
    python benchmarks/bench_scale.py xla_cpu                      # XLA-CPU's code for the logistic terms
    python benchmarks/bench_scale.py vector_width --rounds 3      # 256- against 512-bit XLA-CPU vectors per model

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

``laplace_users``, ``xla_cpu`` and ``vector_width``: see ``LAPLACE_USERS_DOC``, ``XLA_CPU_DOC`` and
``VECTOR_WIDTH_DOC`` below (printed by ``--help`` after the study's name).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import statistics
import sys
import time

import numpy as np
from _common import (
    ROOT,
    grad_fn,
    loadavg,
    median_loop_time,
    median_time,
    peak_rss_mb,
    peer_data,
    run_child,
    simulate_large,
    write_json,
)

sys.path.insert(0, str(ROOT))


# ---------------------------------------------------------------- cases
def case_grad(users=20_000, per_user=50, features=8):
    import jax
    import jax.numpy as jnp

    import bayespref as bp

    _, data = simulate_large(users, per_user, features)
    spec = bp.Hierarchical()
    out = {"N": data.n_comparisons, "U": users, "D": features}
    for name, grouped in (("per_comparison", False), ("by_user", True)):
        g, z, arrays = grad_fn(spec, data, grouped)
        out[f"{name}_ms"] = 1e3 * median_time(g, z, arrays)
        if grouped:  # as NUTS evaluates it: inside a compiled loop
            out[f"{name}_loop_ms"] = 1e3 * median_loop_time(g, z, arrays)
    grouped = spec.by_user_arrays(data)
    need = sum(int(np.prod(v.shape)) * v.dtype.itemsize for v in grouped.values())
    x = jnp.asarray(np.random.default_rng(0).normal(size=need // 4).astype(np.float32))
    t_stream = median_time(jax.jit(jnp.sum), x, repeats=30)
    out.update(bytes_mb=need / 1e6, bandwidth_gbs=need / t_stream / 1e9, bound_ms=1e3 * t_stream)
    # arithmetic floor: the logistic terms (the model's Bernoulli) and their gradient alone, on a ready (U, J) array
    import numpyro.distributions as dist

    d0 = jnp.asarray(np.random.default_rng(1).normal(size=(users, per_user)).astype(np.float32))
    floor = jax.jit(jax.value_and_grad(
        lambda w, d: jnp.sum(dist.Bernoulli(logits=d + w[:, None]).log_prob(grouped["y"]))))
    out["logistic_floor_ms"] = 1e3 * median_time(floor, jnp.zeros(users), d0)
    # the contraction alone: forward product and its transpose, two passes over dx
    contraction = jax.jit(jax.value_and_grad(lambda w, dx: jnp.sum(jnp.einsum("ufj,uf->uj", dx, w))))
    out["contraction_ms"] = 1e3 * median_time(contraction, jnp.zeros((users, features), jnp.float32),
                                               grouped["dx"])
    out["by_user_over_bound"] = out["by_user_ms"] / out["bound_ms"]
    out["by_user_loop_over_bound"] = out["by_user_loop_ms"] / out["bound_ms"]
    out["speedup_by_user"] = out["per_comparison_ms"] / out["by_user_ms"]
    out["peak_rss_mb"] = peak_rss_mb()
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

    sim, data = simulate_large(users, per_user, features, seed=seed)
    t = time.perf_counter()
    fit = bp.fit(bp.Hierarchical(), data, method="svi", guide=guide, user_batch_size=user_batch,
                 num_samples=200, log_likelihood=False, progress=False, seed=seed, lr=lr)
    wall = time.perf_counter() - t
    return {"N": data.n_comparisons, "U": users, "D": features, "guide": guide, "user_batch": user_batch,
            "wall_s": wall, "steps": fit.info["steps"], "converged": fit.info["converged"],
            "globals": _global_errors(fit, sim), "peak_rss_mb": peak_rss_mb()}


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

    sim, data = simulate_large(users, per_user, features, seed=seed)
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
            "globals": _global_errors(fit, sim), "peak_rss_mb": peak_rss_mb()}


def case_laplace(users=20_000, per_user=50, features=8, seed=0, num_samples=400):
    """``fit(Hierarchical(), data, method="laplace")`` on the large data: wall time (compilation
    included, in a fresh process), the globals against the truth, peak RSS."""
    import bayespref as bp

    sim, data = simulate_large(users, per_user, features, seed=seed)
    t = time.perf_counter()
    fit = bp.fit(bp.Hierarchical(), data, method="laplace", num_samples=num_samples, log_likelihood=False,
                 progress=False, seed=seed)
    wall = time.perf_counter() - t
    return {"N": data.n_comparisons, "U": users, "D": features, "seed": seed, "num_samples": num_samples,
            "wall_s": wall, "info": {k: v for k, v in fit.info.items() if isinstance(v, (int, float, str, bool))},
            "globals": _global_errors(fit, sim), "peak_rss_mb": peak_rss_mb()}


def case_recovery(seeds=5, users=1000, per_user=50, features=4, guides=("normal", "hierarchical")):
    import bayespref as bp

    out = {}
    for guide in guides:
        cov = {"weight": [0, 0], "sd_weight": [0, 0]}
        for seed in range(seeds):
            sim, data = simulate_large(users, per_user, features, seed=seed)
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

    _, data = simulate_large(users, per_user, features)
    if k_types > 1:
        spec, grouped, kw = bp.LatentTypes(n_types=k_types), False, {}
    else:
        spec, grouped = bp.Hierarchical(), True
        kw = {"guide": "hierarchical", "user_batch_size": min(user_batch, users - 1)}
    g, z, arrays = grad_fn(spec, data, grouped=grouped)
    grad_s = median_time(g, z, arrays, repeats=7)
    fit = bp.fit(spec, data, method="svi", steps=steps, log_likelihood=False, progress=False, num_samples=10,
                 tol=-1.0, **kw)
    svi_s = fit.info["svi_step_seconds"]  # timed after the first chunk, so compilation is left out
    return {"kind": kind, "N": users * per_user, "U": users, "D": features, "K": k_types,
            "grad_ms": 1e3 * grad_s, "svi_step_ms": 1e3 * svi_s, "peak_rss_mb": peak_rss_mb()}


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


# ---------------------------------------------------------------- laplace_users (experiment)
LAPLACE_USERS_DOC = """Experiment: the hierarchical model's globals with each user's effects integrated out by Laplace.

A measured direction for the large-data case of issue 7, not a fitting method of the package.
For ``Hierarchical()`` (user-varying feature weights, logit link) user u's effects are
:math:`w_u = m_u + S z_u`, :math:`z_u \\sim N(0, I)`, with :math:`m_u = \\mu + B^\\top c_u` and
:math:`S` the scale Cholesky factor. Given the globals :math:`\\theta`, the log marginal likelihood of
user u's judgements is approximated at the conditional mode :math:`\\hat z_u` by

.. math::

    \\log p(y_u \\mid \\theta) \\approx \\sum_j \\log p(y_{uj} \\mid \\eta_{uj}(\\hat z_u))
        - \\tfrac12 \\lVert \\hat z_u \\rVert^2 - \\tfrac12 \\log\\det H_u,\\quad
    H_u = (X_u S)^\\top W_u (X_u S) + I,

found by Newton's method with a per-user step-halving search (all users at once; plain Newton
diverges for users whose judgements are nearly separable). The derivative with respect to
:math:`\\theta` flows through one final Newton step from the stopped mode, which equals the
implicit-function derivative at the fixed point. The globals (44 unconstrained numbers for 8
correlated features) are then fitted by L-BFGS on this marginal posterior and given a Gaussian
posterior from the Hessian at the mode (float64).

    python benchmarks/bench_scale.py laplace_users --users 2000   # 100k judgements, 8 features

Prints the timings, and the global estimates against the simulation's truth with 90 % coverage.
"""


def user_laplace(dx, y, mask, m, S, pos, iters=10, eps=None):
    """Per-user Laplace log marginal likelihood (users,), grouped layout dx (U, F, J).

    ``iters`` Newton iterations from z = 0; with ``eps`` (K, U, E) standard normal draws,
    importance-sampled instead (plain log mean of the weights, unwidened proposal, as in the runs
    reported in RESULTS.md). The package's ``bayespref.inference.laplace.user_marginals`` with the
    settings of this experiment; ``fit(method="laplace")`` adds warm starts, a widened proposal and a
    bias term.
    """
    import jax.numpy as jnp

    from bayespref.inference.laplace import user_marginals

    z0 = jnp.zeros(m.shape, dx.dtype)
    return user_marginals(dx, y, mask, m, S, pos, z0, max_newton=iters, tol=0.0, eps=eps, debias=False)[0]


def laplace_users_main(argv=None):
    p = argparse.ArgumentParser(prog="bench_scale.py laplace_users", description=LAPLACE_USERS_DOC,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--users", type=int, default=2000)
    p.add_argument("--per-user", type=int, default=50)
    p.add_argument("--features", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--newton", type=int, default=10)
    p.add_argument("--importance", type=int, default=0, help="K importance draws per user (0: plain Laplace)")
    p.add_argument("--float32", action="store_true", help="data and Newton in float32 (L-BFGS stays float64)")
    p.add_argument("--covariance", choices=("hessian", "opg"), default="hessian",
                   help="globals' covariance: Hessian at the mode, or prior Hessian + outer products of "
                        "per-user scores (one batched pass)")
    a = p.parse_args(argv)

    import jax

    jax.config.update("jax_enable_x64", True)
    ftype = np.float32 if a.float32 else np.float64
    import jax.numpy as jnp
    import numpyro
    import scipy.optimize as so
    from jax.flatten_util import ravel_pytree
    from numpyro.infer.util import constrain_fn, initialize_model

    import bayespref as bp
    from bayespref.models.base import user_plate

    bp.config.ensure_jax()  # before the first JAX array, as fit() would: virtual CPU devices, cache

    sim = bp.simulate.hierarchical(n_users=a.users, comparisons_per_user=a.per_user, n_options=500,
                                   n_features=a.features, weight_mean=np.linspace(1.0, -0.5, a.features),
                                   user_sd=0.5, seed=a.seed)
    data = sim.comparisons()
    spec = bp.Hierarchical()
    arrays, sizes = spec.arrays(data), spec.sizes(data)
    g = spec.by_user_arrays(data)
    dx, y, mask = (jnp.asarray(g["dx"], ftype), jnp.asarray(g["y"], ftype), jnp.asarray(g["mask"], ftype))
    popkw = {k: sizes[k] for k in ("n_options", "n_features", "n_covariates")}

    def population(arr):
        return spec.population(arr, **popkw)

    eps = (None if a.importance == 0 else
           jnp.asarray(np.random.default_rng(a.seed + 1).normal(size=(a.importance, a.users, a.features)), ftype))

    def users_term(pop, cov, dx_, y_, mask_, eps_):
        """Laplace log marginals (float64) of the users whose covariates are ``cov``."""
        m = (pop["mu"] + cov @ pop["B"]).astype(ftype)
        return user_laplace(dx_, y_, mask_, m, pop["scale_tril"].astype(ftype), pop["position"],
                            iters=a.newton, eps=eps_).astype(jnp.float64)

    def model(arr):
        ll = users_term(population(arr), arr["covariates"], dx, y, mask, eps)
        with user_plate(a.users, None, dim=-1):
            numpyro.factor("users", ll)

    info = initialize_model(jax.random.PRNGKey(0), model, model_args=(arrays,))
    z0, unravel = ravel_pytree(info.param_info.z)
    potential = jax.jit(jax.value_and_grad(lambda v: info.potential_fn(unravel(v))))
    potential(z0)
    t = time.perf_counter()
    for _ in range(3):
        jax.block_until_ready(potential(z0))
    grad_ms = (time.perf_counter() - t) / 3 * 1e3
    t = time.perf_counter()
    res = so.minimize(lambda v: tuple(np.asarray(x, float) for x in potential(jnp.asarray(v))),
                      np.zeros(z0.size), jac=True, method="L-BFGS-B", options={"maxiter": 500, "gtol": 1e-3})
    opt_s = time.perf_counter() - t
    print(json.dumps({"grad_ms": grad_ms, "lbfgs_s": opt_s, "lbfgs_evals": int(res.nfev)}), flush=True)
    t = time.perf_counter()
    x = jnp.asarray(res.x)
    if a.covariance == "hessian":
        # column by column (Hessian-vector products in sequence): forward mode over all 44 directions
        # at once needs 44 copies of the intermediates (37 GB at 1M judgements)
        grad_fn = jax.grad(lambda v: info.potential_fn(unravel(v)))
        hvp = jax.jit(lambda e: jax.jvp(grad_fn, (x,), (e,))[1])
        H = np.stack([np.asarray(hvp(e)) for e in jnp.eye(x.size, dtype=x.dtype)])
    else:
        # information = prior part (exact Hessian) + sum over users of score outer products, each
        # user's score from one batched (vmapped) gradient of that user's marginal
        prior = initialize_model(jax.random.PRNGKey(0), population, model_args=(arrays,)).potential_fn
        H_prior = np.asarray(jax.hessian(lambda v: prior(unravel(v)))(x))

        def one_user(v, dxu, yu, mu_, cu, eu):
            params = constrain_fn(population, (arrays,), {}, unravel(v))
            pop = numpyro.handlers.block(numpyro.handlers.substitute(population, data=params))(arrays)
            return users_term(pop, cu[None], dxu[None], yu[None], mu_[None],
                              None if eu is None else eu[:, None])[0]

        scores = jax.jit(jax.vmap(jax.grad(one_user), in_axes=(None, 0, 0, 0, 0, None if eps is None else 1)))
        S_ = np.zeros((a.users, x.size))
        for lo in range(0, a.users, 5000):  # in blocks of users, to bound memory
            hi = min(lo + 5000, a.users)
            S_[lo:hi] = np.asarray(scores(x, dx[lo:hi], y[lo:hi], mask[lo:hi], arrays["covariates"][lo:hi],
                                          None if eps is None else eps[:, lo:hi]))
        H = H_prior + S_.T @ S_
    hess_s = time.perf_counter() - t
    draws = np.random.default_rng(1).multivariate_normal(res.x, np.linalg.inv(H), size=2000)
    cons = jax.vmap(lambda v: constrain_fn(population, (arrays,), {}, unravel(v)))(jnp.asarray(draws))
    out = {"N": data.n_comparisons, "U": a.users, "D": a.features, "dim_globals": int(z0.size),
           "importance_draws": a.importance,
           "float32": a.float32, "newton_iterations": a.newton, "covariance": a.covariance,
           "grad_ms": grad_ms, "lbfgs_s": opt_s, "lbfgs_evals": int(res.nfev), "hessian_s": hess_s,
           "devices": str(jax.devices())}
    for name in ("weight", "sd_weight"):
        d, truth = np.asarray(cons[name]), np.asarray(sim.truth[name], float)
        lo, hi = np.quantile(d, [0.05, 0.95], 0)
        out[name] = {"mean": d.mean(0).round(3).tolist(), "sd": d.std(0).round(4).tolist(),
                     "z": ((d.mean(0) - truth) / d.std(0)).round(2).tolist(),
                     "covered": int(((lo <= truth) & (truth <= hi)).sum()), "n": int(truth.size),
                     "max_abs_error": float(np.abs(d.mean(0) - truth).max())}
    print(json.dumps(out, indent=1))


# ---------------------------------------------------------------- xla_cpu
XLA_CPU_DOC = """Where the large gradient's time goes on a CPU: XLA's code for the logistic terms, and a fused try.

The grouped log density at 1M judgements (20,000 users x 50 slots, 8 features) costs two passes
over ``dx`` (forward product, transposed product) plus the logistic terms on the (user, slot)
array. This study times, on synthetic data of that shape (one process, pin it to one core):

* ``bound_ms``: a jitted sum over as many bytes as the grouped data (the memory bound);
* ``pass_ms``: an add over one (user, slot) array (the cost of one elementwise pass);
* the logistic pieces written as a **reduction** (``sum(log1p(exp(-|d|)))``) and as an
  **array** (``log1p(exp(-|d|))``): the same arithmetic, but XLA-CPU emits the two differently;
* ``model_ms``: value and gradient of the likelihood as the model writes it (``einsum`` + NumPyro's
  Bernoulli) and ``fused_ms``: the same with a ``jax.custom_jvp`` that computes the value and the
  per-user gradient in one place, unchunked and over blocks of users (``lax.map``) so that each
  block of ``dx`` is read once while it is in cache.

    taskset -c 1 python benchmarks/bench_scale.py xla_cpu
    XLA_FLAGS=--xla_cpu_prefer_vector_width=512 taskset -c 1 python benchmarks/bench_scale.py xla_cpu
"""


def _median_ms(f, *args, repeats: int = 21) -> float:
    return 1e3 * median_time(f, *args, repeats=repeats)  # same timing rule as the other scale benchmarks


def _terms(d, y, mask):
    """Log sigmoid of the signed margin and its derivative in d, masked: one exp, one log1p, one divide."""
    import jax.numpy as jnp

    s = 2.0 * y.astype(d.dtype) - 1.0
    t = s * d
    e = jnp.exp(-jnp.abs(t))
    m = mask.astype(d.dtype)
    return (jnp.minimum(t, 0.0) - jnp.log1p(e)) * m, s * jnp.where(t >= 0, e, 1.0) / (1.0 + e) * m


def _fused(chunk: int):
    import jax
    import jax.numpy as jnp

    def block(w, dx, y, mask):
        ll, r = _terms(jnp.einsum("ufj,uf->uj", dx, w), y, mask)
        return ll.sum(-1), jnp.einsum("ufj,uj->uf", dx, r)

    @jax.custom_jvp
    def per_user(w, dx, y, mask):
        return _terms(jnp.einsum("ufj,uf->uj", dx, w), y, mask)[0].sum(-1)

    @per_user.defjvp
    def _jvp(primals, tangents):
        w, dx, y, mask = primals
        if chunk:
            n, f, j = w.shape[0] // chunk, dx.shape[1], dx.shape[2]
            ll, g = jax.lax.map(lambda a: block(*a), (w.reshape(n, chunk, f), dx.reshape(n, chunk, f, j),
                                                     y.reshape(n, chunk, j), mask.reshape(n, chunk, j)))
            ll, g = ll.reshape(-1), g.reshape(-1, f)
        else:
            ll, g = block(w, dx, y, mask)
        return ll, jnp.sum(g * tangents[0], -1)

    return lambda w, dx, y, mask: jnp.sum(per_user(w, dx, y, mask))


def xla_cpu_times(users: int = 20_000, features: int = 8, slots: int = 50) -> dict:
    import jax
    import jax.numpy as jnp
    import numpyro.distributions as dist

    rng = np.random.default_rng(0)
    dx = jnp.asarray(rng.normal(size=(users, features, slots)).astype(np.float32))
    y = jnp.asarray(rng.integers(0, 2, size=(users, slots)).astype(np.int32))
    mask = jnp.asarray(rng.random((users, slots)) < 0.98)
    w = jnp.asarray(0.3 * rng.normal(size=(users, features)).astype(np.float32))
    d = jnp.einsum("ufj,uf->uj", dx, w)
    nbytes = dx.nbytes + y.nbytes + mask.nbytes
    big = jnp.asarray(rng.normal(size=nbytes // 4).astype(np.float32))
    out = {"bound_ms": _median_ms(jax.jit(jnp.sum), big, repeats=31), "bytes_mb": nbytes / 1e6,
           "pass_ms": _median_ms(jax.jit(lambda a: a + 1.0), d)}
    pieces = {"exp": lambda a: jnp.exp(-jnp.abs(a)), "log1p_exp": lambda a: jnp.log1p(jnp.exp(-jnp.abs(a))),
              "divide": lambda a: 1.0 / (1.0 + jnp.abs(a))}
    for name, f in pieces.items():
        out[f"{name}_as_reduction_ms"] = _median_ms(jax.jit(lambda a, f=f: jnp.sum(f(a))), d)
        out[f"{name}_as_array_ms"] = _median_ms(jax.jit(f), d)
    out["terms_value_and_derivative_ms"] = _median_ms(jax.jit(_terms), d, y, mask)

    def model_ll(w, dx, y, mask):
        d = jnp.einsum("ufj,uf->uj", dx, w)
        return jnp.sum(jnp.where(mask, dist.Bernoulli(logits=d).log_prob(y), 0.0))

    ref = jax.jit(jax.value_and_grad(model_ll))
    out["model_ms"] = _median_ms(ref, w, dx, y, mask)
    v0, g0 = ref(w, dx, y, mask)
    for chunk in (0, 100, 250, 1000):
        f = jax.jit(jax.value_and_grad(_fused(chunk)))
        v, g = f(w, dx, y, mask)
        assert abs(float(v - v0)) < 1e-5 * abs(float(v0)) and float(jnp.max(jnp.abs(g - g0))) < 1e-4
        out[f"fused_chunk{chunk}_ms"] = _median_ms(f, w, dx, y, mask)
    return out


def xla_cpu_main(argv=None) -> dict:
    p = argparse.ArgumentParser(prog="bench_scale.py xla_cpu", description=XLA_CPU_DOC,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.parse_args(argv)
    res = xla_cpu_times()
    res["XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "")
    print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in res.items()}, indent=1))
    return res


# ---------------------------------------------------------------- vector_width
VECTOR_WIDTH_DOC = """XLA-CPU's preferred vector width: gradient time per model, 256 (XLA's default) against 512 bits.

``XLA_FLAGS=--xla_cpu_prefer_vector_width=512`` is an option for AVX-512 CPUs that bayespref does not
set (README, start-up settings). This study times the log-density gradient that NUTS evaluates
(value and gradient of the potential, in one jitted loop of dependent evaluations, as inside NUTS,
so Python's dispatch is not counted; median of 15 loops; the grouped layout where ``fit`` uses it)
for the peers' data of ``bench_peers.py`` (``_common.peer_data``: bt, hier, types K = 3; small and
medium) and the 1M hierarchical case, each in a fresh process without and with the flag,
alternating, over several rounds; it reports the medians and the ratio 256 / 512 (above 1: 512 bits faster).

    taskset -c 1 python benchmarks/bench_scale.py vector_width --rounds 3 --json benchmarks/results/scale/vector_width.json
"""

VECTOR_WIDTH_CASES = ("bt/small", "bt/medium", "hier/small", "hier/medium", "types/small", "types/medium",
                      "hier/1M")


def _vector_width_point(case: str) -> dict:
    import bayespref as bp

    model, size = case.split("/")
    if size == "1M":
        _, data = simulate_large(20_000, 50, 8)
    else:
        data, _ = peer_data(model, size)
    spec = {"bt": bp.BradleyTerry(), "hier": bp.Hierarchical(correlated=False),
            "types": bp.LatentTypes(n_types=3)}[model] if size != "1M" else bp.Hierarchical()
    grouped = model == "hier" and spec.by_user_arrays(data) is not None
    g, z, arrays = grad_fn(spec, data, grouped)
    steps = 20 if size == "1M" else 200
    return {"case": case, "grad_ms": 1e3 * median_loop_time(g, z, arrays, steps=steps),
            "xla_flags": os.environ["XLA_FLAGS"]}


def vector_width_main(argv=None) -> dict:
    p = argparse.ArgumentParser(prog="bench_scale.py vector_width", description=VECTOR_WIDTH_DOC,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--cases", default=",".join(VECTOR_WIDTH_CASES))
    p.add_argument("--json", type=pathlib.Path)
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        print(json.dumps(_vector_width_point(args.worker)))
        return {}
    times: dict[str, dict[str, list[float]]] = {}
    for case in args.cases.split(","):
        times[case] = {"256": [], "512": []}
        for _ in range(args.rounds):
            for flags, label in (("", "256"), ("--xla_cpu_prefer_vector_width=512", "512")):
                env = {**os.environ, "XLA_FLAGS": flags}
                row, _ = run_child([sys.executable, __file__, "vector_width", "--worker", case], env=env,
                                   check=True)
                times[case][label].append(row["grad_ms"])
        m256, m512 = statistics.median(times[case]["256"]), statistics.median(times[case]["512"])
        times[case]["median_256_ms"], times[case]["median_512_ms"] = m256, m512
        times[case]["ratio_256_over_512"] = m256 / m512
        print(f"{case:13s} 256: {m256:8.3f} ms   512: {m512:8.3f} ms   256/512: {m256 / m512:.2f}", flush=True)
    if args.json:
        write_json(args.json, times)
    return times


# ---------------------------------------------------------------- driver
def _child(args: list[str]) -> dict:
    out, res = run_child([sys.executable, __file__, "--worker", json.dumps(args)])
    if res.returncode or out is None:
        raise RuntimeError(f"worker {args} failed:\n{res.stderr[-3000:]}")
    return out


STUDIES = {"laplace_users": laplace_users_main, "xla_cpu": xla_cpu_main, "vector_width": vector_width_main}


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in STUDIES:  # a study with its own options
        return STUDIES[argv[0]](argv[1:])
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                epilog="Studies with their own options: " + ", ".join(STUDIES)
                                + " (bench_scale.py STUDY --help).")
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
    report = {"machine_load": loadavg()}
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
        write_json(a.json, report)


if __name__ == "__main__":
    main()
