"""Experiment: the hierarchical model's globals with each user's effects integrated out by Laplace.

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

    python benchmarks/laplace_users.py --users 2000            # 100k judgements, 8 features

Prints the timings, and the global estimates against the simulation's truth with 90 % coverage.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def user_laplace(dx, y, mask, m, S, pos, iters=10, eps=None):
    """Per-user Laplace log marginal likelihood (users,), grouped layout dx (F, U, J).

    ``iters`` Newton iterations from z = 0; with ``eps`` (K, U, E) standard normal draws,
    importance-sampled instead (plain log mean of the weights, unwidened proposal, as in the runs
    reported in RESULTS.md). The package's ``bayespref.laplace.user_marginals`` with the settings of
    this experiment; ``fit(method="laplace")`` adds warm starts, a widened proposal and a bias term.
    """
    import jax.numpy as jnp

    from bayespref.laplace import user_marginals

    z0 = jnp.zeros(m.shape, dx.dtype)
    return user_marginals(dx, y, mask, m, S, pos, z0, max_newton=iters, tol=0.0, eps=eps, debias=False)[0]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
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
            return users_term(pop, cu[None], dxu[:, None], yu[None], mu_[None],
                              None if eu is None else eu[:, None])[0]

        scores = jax.jit(jax.vmap(jax.grad(one_user), in_axes=(None, 1, 0, 0, 0, None if eps is None else 1)))
        S_ = np.zeros((a.users, x.size))
        for lo in range(0, a.users, 5000):  # in blocks of users, to bound memory
            hi = min(lo + 5000, a.users)
            S_[lo:hi] = np.asarray(scores(x, dx[:, lo:hi], y[lo:hi], mask[lo:hi], arrays["covariates"][lo:hi],
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


if __name__ == "__main__":
    main()
