r"""Nested Laplace fit of hierarchical BT: users' effects integrated out, globals Gaussian.

``fit(Hierarchical(), data, method="laplace")``, for the large case where NUTS is too slow and a
mean-field SVI guide too narrow. User u's effects are :math:`w_u = m_u + S z_u` with
:math:`z_u \sim N(0, I)`, :math:`m_u = \mu + B^\top c_u` and :math:`S` the scale Cholesky factor
(the model's own parameterisation). Given the global parameters :math:`\theta`, each user's log
marginal likelihood :math:`\log p(y_u \mid \theta) = \log \int p(y_u \mid z)\, N(z; 0, I)\, dz` is
approximated around the conditional mode :math:`\hat z_u`, found by Newton's method with a step-halving
search for all users at once (plain Newton diverges for users whose judgements are nearly separable):

.. math::

    \log p(y_u \mid \theta) \approx \log \frac1K \sum_{k=1}^K r_{uk} + \frac{\widehat{\operatorname{Var}}_k(r_{uk} / \bar r_u)}{2K},
    \qquad r_{uk} = \frac{p(y_u \mid z_{uk})\, N(z_{uk}; 0, I)}{N(z_{uk}; \hat z_u, c^2 H_u^{-1})},

    z_{uk} = \hat z_u + c\, L_u^{-\top} \epsilon_{uk},\quad H_u = L_u L_u^\top = (X_u S)^\top W_u (X_u S) + I,

with fixed standard-normal :math:`\epsilon_{uk}` (common random numbers, so the objective is
deterministic), the proposal widened by :math:`c` (``widen``, 1.5) and the delta-method term that
removes most of the :math:`O(1/K)` downward bias of a log-mean (``debias``). ``importance=0`` gives the
plain Laplace formula, which leaves the user SDs about 5 % too small at 50 judgements per user; with
K = 8 unwidened draws they were still about 1.5 % small at 20,000 users, two posterior SDs
(``benchmarks/HISTORY.md``). The derivative in
:math:`\theta` flows through one last Newton step from the converged mode (the implicit-function
derivative). The unconstrained globals (a few dozen numbers) are fitted by L-BFGS on
:math:`\log p(\theta) + \sum_u \log p(y_u \mid \theta)`, each evaluation's Newton search starting
from the previous evaluation's modes, and given a Gaussian posterior :math:`N(\hat\theta, \Sigma)`:
:math:`\Sigma^{-1}` is the Hessian of the negative log marginal posterior (``covariance="hessian"``,
one Hessian-vector product per global) or the prior's Hessian plus the sum of the outer products of
the users' score vectors (``"opg"``, one batched pass; the default from 5,000 users on, where the
users are many and the Hessian passes cost minutes).

Draws: the globals from the Gaussian, mapped to the constrained space; each user's ``z`` from the
conditional Laplace Gaussian :math:`N(\hat z_u, H_u^{-1})` at :math:`\hat\theta` (global uncertainty
is not propagated to single users, a small effect when users are many). Above
:data:`USER_DRAWS_MAX` numbers (users x effects x draws) the users' draws, and with them the log
likelihood, are left out and the fit holds the population's draws only (20,000 judges x 100 models x
1,000 draws would be 8 GB a site).

Two designs. Users' effects that are the options' worths only, with independent SDs (the default
above 10 options: an Arena leaderboard), run on the comparisons' option indices
(:mod:`bayespref.inference.laplace_pairs`: E x E precisions handled in the J comparisons, Newton
directions by conjugate gradients), with the plain Laplace formula by default
(:func:`importance_draws`), with or without Davidson ties (the outcome's log likelihood, its derivative
and Newton weight per comparison: :func:`bayespref.inference.laplace_search.outcome_terms`); every
other model, without ties, on the dense per-user design below. The L-BFGS search
is rescaled by the prior's Hessian plus the users' score outer products (:func:`_minimise`) where
the covariance is the outer-product one (by default from 5,000 users).
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np

from bayespref.errors import FitError, ModelError
from bayespref.inference import sharding
from bayespref.inference.engine import as_key
from bayespref.inference.laplace_pairs import conditional_draws, user_marginals_pairs
from bayespref.inference.laplace_search import importance_log_mean, log_joint, newton_search
from bayespref.inference.settings import LaplaceSettings  # noqa: F401  (re-exported)
from bayespref.models import sites
from bayespref.models.base import worth_differences


def check_supported(spec, data, sizes, outcomes: bool = True) -> None:
    """Raise a ModelError unless ``spec`` is a Hierarchical model this method handles (``outcomes``:
    also check the outcome codes; a streamed reader has checked them row by row)."""
    why = None
    davidson = spec.ties in (True, "davidson")
    codes = (0, 1, 2) if davidson else (0, 1)
    if "laplace" not in spec.methods:
        why = f"{spec.family} does not offer it (its methods: {spec.methods})"
    elif not _all_effects_vary(spec, data, sizes):
        why = ("every effect the model uses must vary by user: user-varying feature weights without pooled "
               "worths (varying='features'), user-varying worths without features (varying='worths', "
               "features=False), or both varying")
    elif not spec.random_effects:
        why = "it needs user random effects (random_effects=True)"
    elif spec.link != "logit":
        why = "it needs the logit link"
    elif spec.ties and not (davidson and paired_design(spec, sizes)):
        why = ("it takes ties only as Davidson ties (ties=True) on user-varying worths alone with independent "
               "SDs (more than 10 options, or correlated=False); otherwise it needs no ties")
    elif outcomes and (data.y is None or not np.isin(np.asarray(data.y), codes).all()):
        why = (f"it needs outcomes coded {'0, 1 or 2 (tie)' if davidson else '0/1'} (no missing outcomes"
               f"{'' if davidson else ', no ties'})")
    if why:
        raise ModelError(f"method='laplace': {why}. Use method='nuts' or method='svi' for this model.")


def _all_effects_vary(spec, data, sizes) -> bool:
    varying = spec.resolved_varying(sizes["n_features"])
    worths_ok = ("worths" in varying) == bool(spec.uses_worths(data))
    features_ok = ("features" in varying) == bool(sizes["n_features"])
    return worths_ok and features_ok


def user_design(spec, data, grouped, sizes) -> jnp.ndarray:
    r"""Each user's design (user, effect, slot) in the order of the model's effects: for user-varying
    worths the one-hot differences :math:`e_{a} - e_{b}` of the options shown (so
    :math:`d_{uj} = \sum_o X_{uoj} \theta_{uo}`), then :math:`x_a - x_b` for user-varying weights."""
    parts = []
    for name, n in spec.effect_blocks(sizes["n_options"], sizes["n_features"]):
        if name == sites.WORTH and "dw" in grouped:   # the grouped layout's own one-hot rows
            parts.append(np.asarray(grouped["dw"], np.float32))
        elif name == sites.WORTH:
            dw = worth_differences(grouped["a"], grouped["b"], n, grouped["mask"])   # (U, J, O)
            parts.append(dw.transpose(0, 2, 1))
        else:
            parts.append(np.asarray(grouped["dx"], np.float32))
    return jnp.asarray(np.concatenate(parts, axis=1))


def _design(spec, data, grouped, sizes, paired: bool) -> dict:
    """What the per-user steps read of a block of users in the grouped layout: on the paired design
    (worths only, independent SDs) each comparison's two options ``a`` and ``b``, otherwise the dense
    design ``dx`` (:func:`user_design`)."""
    if paired:
        return {"a": jnp.asarray(grouped["a"], jnp.int32), "b": jnp.asarray(grouped["b"], jnp.int32)}
    return {"dx": user_design(spec, data, grouped, sizes)}


def _user_design(dx, m, S, pos):
    """Feature differences in z coordinates (U, J, E) and the linear predictor at z = 0 (U, J)."""
    dt = dx.dtype
    XS = jnp.einsum("ufj,fe->uje", dx, S.astype(dt))
    return XS, jnp.einsum("ufj,uf->uj", dx, m.astype(dt)) + jnp.asarray(pos, dt)


def _newton_parts(XS, eta0, y, mask, z):
    """Linear predictor, gradient and precision H of each user's log joint density at ``z``."""
    eta = eta0 + jnp.einsum("uje,ue->uj", XS, z)
    p = jax.nn.sigmoid(eta)
    grad = jnp.einsum("uje,uj->ue", XS, mask * (y - p)) - z
    H = jnp.einsum("uje,ujk,uj->uek", XS, XS, mask * p * (1 - p)) + jnp.eye(XS.shape[-1], dtype=XS.dtype)
    return eta, grad, H


def user_marginals(dx, y, mask, m, S, pos, z0, *, max_newton, tol, eps=None, debias=True, widen=1.0):
    r"""Per-user log marginal likelihoods (users,), conditional modes (users, E), Newton iterations.

    Grouped layout: ``dx`` (U, F, J), ``y`` and ``mask`` (U, J); ``m`` (U, F) the users' means,
    ``S`` (F, E) the scale factor, ``z0`` (U, E) where the Newton search starts; ``eps`` (K, U, E)
    fixed standard-normal draws for the importance-weighted version (None: plain Laplace).
    ``debias``: the log of a mean of K importance weights underestimates the log marginal by about
    :math:`\operatorname{Var}(r)/(2K)` (r the weights over their mean; delta method); add that
    term back, so that K = 8 draws do not leave the user SDs shrunk.
    """
    E, dt = S.shape[1], dx.dtype
    XS, eta0 = _user_design(dx, m, S, pos)

    def joint(eta, z):
        return log_joint(y, mask, eta, z)

    def parts(z):
        return _newton_parts(XS, eta0, y, mask, z)

    def direction(z):
        _, grad, H = parts(z)
        return jnp.linalg.solve(H, grad[..., None])[..., 0]

    z, iters = newton_search(direction, lambda t: joint(eta0[None] + jnp.einsum("uje,aue->auj", XS, t), t),
                             z0.astype(dt), max_newton=max_newton, tol=tol)
    z = jax.lax.stop_gradient(z)
    _, grad, H = parts(z)
    z = z + jnp.linalg.solve(H, grad[..., None])[..., 0]              # live step: implicit derivative
    eta, _, H = parts(z)
    L = jnp.linalg.cholesky(H)
    half_logdet = jnp.sum(jnp.log(jnp.diagonal(L, axis1=-2, axis2=-1)), -1)
    if eps is None:
        return joint(eta, z) - half_logdet, z, iters
    rhs = jnp.transpose(eps, (1, 2, 0))                                # (U, E, K)
    zk = z[None] + widen * jnp.transpose(jax.scipy.linalg.solve_triangular(jnp.swapaxes(L, -1, -2), rhs, lower=False),
                                         (2, 0, 1))
    logw = (joint(eta0[None] + jnp.einsum("uje,kue->kuj", XS, zk), zk) + 0.5 * jnp.sum(eps * eps, -1) - half_logdet
            + E * jnp.log(jnp.asarray(widen, dt)))
    return importance_log_mean(logw, debias), z, iters


def conditional_cholesky(dx, y, mask, m, S, pos, z):
    """Cholesky factors (U, E, E) of the users' conditional precisions :math:`H_u` at ``z``."""
    return jnp.linalg.cholesky(_newton_parts(*_user_design(dx, m, S, pos), y, mask, z)[2])


def _x64():
    """Context in which JAX computes in float64 (the globals and the sums over users)."""
    if hasattr(jax, "enable_x64"):
        return jax.enable_x64(True)
    from jax.experimental import enable_x64  # older JAX

    return enable_x64()


def run_laplace(spec, data, arrays, grouped, sizes, seed, settings: LaplaceSettings) -> tuple[dict, dict]:
    """Fit by nested Laplace; return latent-site draws shaped (1, S, ...) and an info dict.

    The data and the users' Newton searches are float32; the globals, the sum over users and the
    L-BFGS search are float64 (inside a local float64 context; JAX's global setting is untouched).
    """
    with _x64():
        return _run(spec, data, arrays, grouped, sizes, seed, settings)


def run_laplace_stream(spec, source, sizes, seed, settings: LaplaceSettings, chunk_users: int,
                       pop_arrays: dict) -> tuple[dict, dict]:
    """:func:`run_laplace` on comparisons streamed from disk in chunks of ``chunk_users`` whole users
    (:meth:`~bayespref.data.readers.parquet_stream.ParquetComparisons.chunks`), never the whole table.

    The objective of the globals is a sum over users, so each L-BFGS evaluation streams the chunks
    and adds up their values and gradients (one compiled program for the chunk shape); the users'
    modes (users x effects floats) stay in memory, indexed by global user id, and start the next
    evaluation's Newton searches. One more pass at the mode gives the modes, the covariance ("opg":
    the users' scores; "hessian": each chunk's Hessian, forward over reverse) and the users' draws.
    ``pop_arrays`` holds the user-level arrays in memory: every user's covariates (users, P), and
    the group effects' mask with ``interactions``.
    """
    with _x64():
        return _run_stream(spec, source, sizes, seed, settings, chunk_users, pop_arrays)


class _Globals:
    """What the in-memory and the streamed runs share: the population model, its unconstrained
    globals as one flat vector, and the per-user computations on a block of users ``D`` (a dict:
    ``dx`` (users, E, J), ``y``, ``mask`` (users, J), ``cov`` (users, covariates), ``eps`` (K,
    users, E) or None, ``pop`` the population's arrays, and ``valid`` (users,) for a padded block)."""

    def __init__(self, spec, sizes, pop_arrays, settings):
        import numpyro
        from jax.flatten_util import ravel_pytree
        from numpyro.distributions.transforms import biject_to

        popkw = {k: sizes[k] for k in ("n_options", "n_features", "n_covariates")}

        def population(arr):
            return spec.population(arr, **popkw)

        def unconstrained_shapes():
            tr = numpyro.handlers.trace(numpyro.handlers.seed(population, 0)).get_trace(pop_arrays)
            return {name: biject_to(site["fn"].support).inv(site["value"]) for name, site in tr.items()
                    if site["type"] == "sample" and not site["is_observed"]}

        # shapes only (abstract tracing): NumPyro's eager initialisation compiled hundreds of small
        # operations one by one (9 s at every new process)
        proto = {k: jnp.zeros(a.shape, a.dtype) for k, a in jax.eval_shape(unconstrained_shapes).items()}
        self.population, self.pop_arrays = population, pop_arrays
        self.v0, self.unravel = ravel_pytree(proto)
        self.newton_kw = {"max_newton": settings.max_newton, "tol": settings.newton_tol, "widen": settings.widen}
        self.num_samples = settings.num_samples

    def prior_potential(self, v, pa):
        from numpyro.infer.util import potential_energy

        return potential_energy(self.population, (pa,), {}, self.unravel(v))

    def pop_at(self, v, pa):
        import numpyro
        from numpyro.infer.util import constrain_fn

        params = constrain_fn(self.population, (pa,), {}, self.unravel(v))
        return numpyro.handlers.block(numpyro.handlers.substitute(self.population, data=params))(pa)

    def users(self, pop, D, z0):
        """Log marginals, modes and Newton iterations of the users of ``D`` (its design: ``dx``, dense, or
        ``a`` and ``b``, the options of each comparison, :mod:`bayespref.inference.laplace_pairs`)."""
        m = pop["mu"] + D["cov"] @ pop["B"]
        if "a" in D:
            ll, z, iters = user_marginals_pairs(D["a"], D["b"], D["y"], D["mask"], m, pop["sd"], pop["position"], z0,
                                                eps=D.get("eps"), log_tie=pop["log_tie"], **self.newton_kw)
        else:
            ll, z, iters = user_marginals(D["dx"], D["y"], D["mask"], m, pop["scale_tril"], pop["position"], z0,
                                          eps=D.get("eps"), **self.newton_kw)
        return ll.astype(self.v0.dtype), z, iters

    def data_term(self, v, z0, D):
        """Minus the block's users' log marginal likelihoods, summed; their modes; Newton iterations."""
        ll, z, iters = self.users(self.pop_at(v, D["pop"]), D, z0)
        if "valid" in D:
            # a padding user (no judgements) has log marginal 0, but its importance-weighted estimate
            # is a log-mean of K weights that is not exactly 0: leave it out
            ll = jnp.where(D["valid"], ll, jnp.zeros_like(ll))
        return -jnp.sum(ll), (z, iters)

    def objective(self, v, z0, D):
        """Minus the log marginal posterior of the globals ``v`` (up to a constant), over D's users."""
        nll, aux = self.data_term(v, z0, D)
        return self.prior_potential(v, D["pop"]) + nll, aux

    def prior_hessian(self, x, pa) -> np.ndarray:
        return np.array(jax.jit(jax.hessian(self.prior_potential))(x, pa), dtype=float)

    def scores(self):
        """Compiled ``scores(v, pa, Du, z)``: each user's score, the gradient of its log marginal in the
        globals, (users, P); ``Du`` a block of users' arrays (``users``'s ``D`` without ``pop``)."""
        def one_user(v, pa, Du, zu):
            D1 = {k: x[:, None] if k == "eps" else x[None] for k, x in Du.items()}
            ll, _, _ = self.users(self.pop_at(v, pa), D1, zu[None])
            return ll[0]

        def all_users(v, pa, Du, z):
            axes = {k: 1 if k == "eps" else 0 for k in Du}
            return jax.vmap(jax.grad(one_user), in_axes=(None, None, axes, 0))(v, pa, Du, z)

        return jax.jit(all_users)

    def global_draws(self, x, chol, pa, key):
        """``num_samples`` draws of the population sites from :math:`N(x, \\text{chol}\\,\\text{chol}^\\top)`,
        with the population's deterministic sites."""
        import numpyro
        from numpyro.infer.util import constrain_fn

        def sites_at(v):
            params = constrain_fn(self.population, (pa,), {}, self.unravel(v))
            tr = numpyro.handlers.trace(numpyro.handlers.substitute(self.population, data=params)).get_trace(pa)
            return {k: s["value"] for k, s in tr.items() if s["type"] == "deterministic" or k in params}

        v_draws = x[None] + jax.random.normal(key, (self.num_samples, x.size), x.dtype) @ chol.T
        return jax.vmap(sites_at)(v_draws)

    def user_draws(self, x, z_hat, D, e):
        """Draws (S, users, E) of D's users' ``z`` from :math:`N(\\hat z_u, H_u^{-1})` at the globals ``x``,
        ``e`` (S, users, E) standard normal ((S, users, E + J) for the paired design)."""
        pop = self.pop_at(x, D["pop"])
        if "a" in D:
            return conditional_draws(D["a"], D["b"], D["y"], D["mask"], pop["mu"] + D["cov"] @ pop["B"], pop["sd"],
                                     pop["position"], z_hat, e, log_tie=pop["log_tie"])
        L = conditional_cholesky(D["dx"], D["y"], D["mask"], pop["mu"] + D["cov"] @ pop["B"], pop["scale_tril"],
                                 pop["position"], z_hat)
        Lt = jnp.swapaxes(L, -1, -2)
        return z_hat[None] + jax.vmap(
            lambda ek: jax.scipy.linalg.solve_triangular(Lt, ek[..., None], lower=False)[..., 0])(e)


#: users x effects x draws above which the in-memory Laplace fit keeps only the population's draws
#: (100M numbers, 400 MB a site in float32; at 20,000 users x 100 options, 50 draws)
USER_DRAWS_MAX = 100_000_000


def keeps_user_draws(n_users: int, n_effects: int, num_samples: int) -> bool:
    """Whether the users' draws fit :data:`USER_DRAWS_MAX` (else the fit holds the population's only)."""
    return n_users * n_effects * num_samples <= USER_DRAWS_MAX


def paired_design(spec, sizes) -> bool:
    """Whether the users' effects are the options' worths only with independent SDs, whose per-user
    steps run on the options' indices (:mod:`bayespref.inference.laplace_pairs`)."""
    blocks = spec.effect_blocks(sizes["n_options"], sizes["n_features"])
    return ([name for name, _ in blocks] == [sites.WORTH]
            and not spec.resolved_correlated(blocks))


#: unscaled L-BFGS iterations before the search is rescaled by the curvature (``_minimise``)
WHITEN_AFTER = 15
#: rescaled runs at most, L-BFGS iterations in one, the largest gradient in posterior-SD units that
#: ends them, and the smallest decrease of the objective per iteration (nats) that continues them
WHITEN_RUNS, WHITE_ITER, WHITE_GTOL, WHITE_FTOL = 4, 25, 0.05, 1e-3


#: importance draws per user by default on the dense design (``LaplaceSettings.importance=None``)
DENSE_IMPORTANCE = 8


def importance_draws(settings, paired: bool) -> int:
    """Importance draws per user: the setting, or by default 8 on the dense design and 0 on the
    paired one (20,000 judges x 100 models, 2 seeds: 8 draws left the judge SDs' means 0.6 posterior
    SDs high and their intervals covering 83 %; plain Laplace covered 99-100 %, worths 86-92 %)."""
    if settings.importance is not None:
        return int(settings.importance)
    return 0 if paired else DENSE_IMPORTANCE


def _minimise(G, evaluate, z_init, settings, curvature=None):
    """L-BFGS on the globals; ``evaluate(v, z0) -> (value, gradient, modes, Newton iterations)`` with
    each evaluation's Newton searches starting at the previous (finite) evaluation's modes.

    ``curvature(v, z) -> M`` (P, P), an approximation of the Hessian (the prior's plus the outer
    products of the users' scores), rescales the search: after :data:`WHITEN_AFTER` plain iterations
    bring the globals near the mode, L-BFGS runs on :math:`u = R (v - v_0)`, :math:`M = R^\\top R`, in
    which the posterior is close to a standard normal, until the gradient in ``u`` (the distance to the
    mode in posterior SDs) is below :data:`WHITE_GTOL` or an iteration gains less than :data:`WHITE_FTOL`;
    a run that has not converged in :data:`WHITE_ITER` iterations is restarted from where it stopped with
    the curvature recomputed there. At 20,000 users the globals' posterior SDs span two orders of
    magnitude (worths from a million judgements, judge SDs from 50 each), and plain L-BFGS crawled:
    more than 90 evaluations without meeting its tolerance.
    """
    import scipy.optimize as so

    state = {"z": z_init, "evals": 0, "newton": 0}

    def fun(v):
        val, g, z, iters = evaluate(jnp.asarray(v, G.v0.dtype), state["z"])
        state["evals"] += 1
        state["newton"] += int(iters)
        val, g = float(val), np.asarray(g, float)
        if np.isfinite(val) and np.all(np.isfinite(g)):
            state["z"] = z  # the next evaluation's Newton search starts here
        else:
            val, g = np.inf, np.zeros_like(g)
        return val, g

    options = {"maxiter": settings.max_iter, "gtol": settings.gtol, "ftol": settings.ftol}
    if curvature is None:
        res = so.minimize(fun, np.zeros(G.v0.size), jac=True, method="L-BFGS-B", options=options)
    else:
        res = _whitened(fun, curvature, state, G.v0.size, options)
    if not np.isfinite(res.fun):
        raise FitError("method='laplace': the marginal posterior of the globals could not be evaluated (not finite). "
                       "Check the data for users with separable judgements, or use method='nuts'.")
    return res, state


def _whitened(fun, curvature, state, n: int, options: dict):
    """The rescaled search of :func:`_minimise`; returns a scipy ``OptimizeResult`` in ``v``."""
    import scipy.linalg as sl
    import scipy.optimize as so

    res = so.minimize(fun, np.zeros(n), jac=True, method="L-BFGS-B", options={**options, "maxiter": WHITEN_AFTER})
    if res.success or not np.isfinite(res.fun):
        return res
    total = res.nit
    for _ in range(WHITEN_RUNS):
        v0 = np.array(res.x, float)
        M = curvature(jnp.asarray(v0), state["z"])
        R = np.linalg.cholesky(0.5 * (M + M.T)).T            # M = R^T R

        def fun_u(u, v0=v0, R=R):
            val, g = fun(v0 + sl.solve_triangular(R, u, lower=False))
            return val, sl.solve_triangular(R, g, trans="T", lower=False)

        run = so.minimize(fun_u, np.zeros(n), jac=True, method="L-BFGS-B",
                          options={"maxiter": min(WHITE_ITER, options["maxiter"] - total), "gtol": WHITE_GTOL,
                                   "ftol": WHITE_FTOL / max(abs(res.fun), 1.0)})
        total += run.nit
        x = v0 + sl.solve_triangular(R, run.x, lower=False)
        res = so.OptimizeResult(x=x, fun=run.fun, jac=R.T @ run.jac, success=run.success, message=run.message,
                                nit=total)
        if not np.isfinite(run.fun) or run.success or total >= options["maxiter"]:
            break
    return res


def _covariance_kind(settings, n_users: int) -> str:
    """"opg" or "hessian" (``LaplaceSettings`` has checked the value)."""
    if settings.covariance == "auto":
        return "opg" if n_users >= settings.opg_from_users else "hessian"
    return settings.covariance


def _cholesky_of_inverse(H) -> np.ndarray:
    H = 0.5 * (H + H.T)
    try:
        return np.linalg.cholesky(np.linalg.inv(H))
    except np.linalg.LinAlgError as err:
        raise FitError("method='laplace': the curvature of the globals' marginal posterior is not positive "
                       f"definite at the mode ({err}); the L-BFGS search may not have converged. Use "
                       "method='nuts'.") from err


def _info(settings, how, res, state, t_start, t_opt, opt_s, t_cov, cov_s, K: int) -> dict:
    return {"laplace_importance": K, "laplace_covariance": how,
            "laplace_evaluations": int(state["evals"]), "newton_iterations": int(state["newton"]),
            "laplace_converged": bool(res.success),
            "laplace_message": str(res.message), "laplace_max_gradient": float(np.max(np.abs(res.jac))),
            "optimise_s": round(opt_s, 3), "covariance_s": round(cov_s, 3),
            "setup_s": round(t_opt - t_start, 3), "draws_s": round(time.perf_counter() - t_cov - cov_s, 3),
            "laplace_s": round(time.perf_counter() - t_start, 3)}


def _run(spec, data, arrays, grouped, sizes, seed, settings):
    check_supported(spec, data, sizes)
    if grouped is None:
        raise ModelError("method='laplace' needs the comparisons grouped by user; this data could not be grouped "
                         "(Hierarchical.by_user_arrays returned None).")
    t_start = time.perf_counter()
    U = int(sizes["n_users"])
    y, mask = jnp.asarray(grouped["y"], jnp.float32), jnp.asarray(grouped["mask"], jnp.float32)
    paired = paired_design(spec, sizes)
    K = importance_draws(settings, paired)
    design = _design(spec, data, grouped, sizes, paired)
    if paired:
        F, extra = int(sizes["n_options"]), int(mask.shape[1])   # draws: E + J normals per user
    else:
        F, extra = int(design["dx"].shape[1]), 0  # the users' effects: worths and/or feature weights
    cov = jnp.asarray(arrays["covariates"], jnp.float32)
    # the population sites read only these arrays; passing the 1M-comparison arrays as well made
    # NumPyro's initialisation 70x slower (9 s at 1M judgements)
    pop_arrays = {k: arrays[k] for k in ("covariates", "group_mask") if k in arrays}
    G = _Globals(spec, sizes, pop_arrays, settings)

    key = as_key(seed)
    k_eps, k_glob, k_user = jax.random.split(jax.random.fold_in(key, 7), 3)
    eps = None if K == 0 else jax.random.normal(k_eps, (K, U, F + extra), jnp.float32)

    # the data are arguments of the compiled programs, not constants baked into them
    D = {**design, "y": y, "mask": mask, "cov": cov, "pop": pop_arrays}
    if eps is not None:
        D["eps"] = eps
    z_init = jnp.zeros((U, F), jnp.float32)
    if sharding.wanted(settings.devices):  # the users split over devices, one all-reduce per evaluation
        D, z_init = _split_users(D, z_init, int(settings.devices))
    U_all = int(z_init.shape[0])  # users, with the padding users of a split
    value_grad = jax.jit(jax.value_and_grad(G.objective, has_aux=True))

    def evaluate(v, z0):
        (val, (z, iters)), g = value_grad(v, z0, D)
        return val, g, z, iters

    scores = G.scores()
    host = {**design, "y": y, "mask": mask, "cov": cov}

    def opg(v, z):
        """The prior's Hessian plus the sum of the users' score outer products at ``v`` (P, P)."""
        H = G.prior_hessian(v, pop_arrays)
        # the users' modes on this host (split over devices, and processes across hosts): each
        # process sums every user's outer product, in blocks of users that bound the memory
        z_host = sharding.gather(z)
        for lo in range(0, U, settings.user_block):
            sl = slice(lo, min(lo + settings.user_block, U))
            Du = {k: a[sl] for k, a in host.items()}
            if eps is not None:
                Du["eps"] = eps[:, sl]
            s = np.asarray(scores(v, pop_arrays, Du, z_host[sl]), float)
            H += s.T @ s
        return H

    # the rescaled search where the covariance is the outer-product one (its compiled scores serve
    # both); with fewer users an evaluation is cheap and plain L-BFGS saves compiling the scores
    how = _covariance_kind(settings, U)
    t_opt = time.perf_counter()
    res, state = _minimise(G, evaluate, z_init, settings, curvature=opg if how == "opg" else None)
    opt_s = time.perf_counter() - t_opt
    x = jnp.asarray(res.x, G.v0.dtype)
    z_hat = value_grad(x, state["z"], D)[0][1][0]

    t_cov = time.perf_counter()
    if how == "hessian":
        H = _block_hessian(lambda v, zh, D_: G.objective(v, zh, D_)[0], x.size,
                           _hvp_block(U_all, (U, F, int(mask.shape[1]))))(x, z_hat, D)
    else:
        H = opg(x, z_hat)
    chol = _cholesky_of_inverse(H)
    cov_s = time.perf_counter() - t_cov

    with_users = keeps_user_draws(U, F, settings.num_samples)

    @jax.jit  # one program (run op by op, its hundreds of small operations each compile: seconds)
    def make_draws(x, chol, z_hat, D, k_glob, k_user):
        out = G.global_draws(x, chol, D["pop"], k_glob)
        if with_users:
            e = jax.random.normal(k_user, (settings.num_samples, U, F + extra), jnp.float32)
            if U_all > U:  # padding users of a split: draws of their own, left out
                e = jnp.concatenate([e, jnp.zeros((settings.num_samples, U_all - U, F + extra), e.dtype)], axis=1)
            out["z"] = G.user_draws(x, z_hat, D, e)[:, :U]
        return out

    draws = sharding.gather(make_draws(x, jnp.asarray(chol, x.dtype), z_hat, D, k_glob, k_user))
    info = _info(settings, how, res, state, t_start, t_opt, opt_s, t_cov, cov_s, K)
    info.update(user_draws=bool(with_users), user_effects=F, user_draws_max_samples=USER_DRAWS_MAX // (U * F))
    info["laplace_design"] = "pairs" if paired else "dense"
    if sharding.wanted(settings.devices):
        info["devices"] = int(settings.devices)
    return {k: np.asarray(v)[None] for k, v in draws.items()}, info


#: floats of per-user work held at once by a block of Hessian-vector products (about 0.8 GB)
HVP_BLOCK_FLOATS = 2e8


def _hvp_block(n_users: int, design_shape) -> int:
    """Hessian-vector products per block: each holds about users x effects x (effects + slots)
    floats of per-user tangents (the Newton parts), so a block of b holds b times that."""
    _, effects, slots = design_shape
    return max(1, int(HVP_BLOCK_FLOATS // max(1, n_users * effects * (effects + slots))))


def _block_hessian(f, n: int, block: int):
    """``hessian(x, *args)``: the (n, n) Hessian in ``v`` of scalar ``f(v, *args)`` at ``x``, ``block``
    Hessian-vector products at a time, compiled once for every call with arguments of the same
    shapes (``args``, the data, are arguments of the compiled program: arrays split across hosts
    cannot be its constants).

    Forward over reverse, vectorised over the block's basis vectors: the primal pass (every user's
    Newton parts at the mode) is shared by the block instead of repeated per column; at 200 users x
    100 effects and 400 globals one product at a time took 0.67 s a column. The last block is padded
    with zero vectors so that one compiled program serves every block.
    """
    block = min(block, n)
    grad = jax.grad(f)
    hvp = jax.jit(jax.vmap(lambda e, x_, a: jax.jvp(lambda v: grad(v, *a), (x_,), (e,))[1],
                           in_axes=(0, None, None)))

    def hessian(x, *args) -> np.ndarray:
        eye = np.eye(n, dtype=np.asarray(x).dtype)
        cols = []
        for lo in range(0, n, block):
            part = eye[lo:lo + block]
            if len(part) < block:
                part = np.concatenate([part, np.zeros((block - len(part), n), part.dtype)])
            cols.append(np.asarray(hvp(jnp.asarray(part), x, args), float)[: min(block, n - lo)])
        return np.concatenate(cols)

    return hessian


def _split_users(D, z_init, devices: int):
    """``D``'s per-user arrays and the starting modes padded with empty users to a multiple of
    ``devices`` and split over them by user (the importance draws along their user axis); ``valid``
    marks the real users, so the padding users add nothing. The population's arrays are replicated."""
    from jax.sharding import NamedSharding, PartitionSpec

    mesh = sharding.make_mesh(devices)
    users = int(z_init.shape[0])
    pad = -users % devices

    def padded(x, axis=0):
        widths = [(0, 0)] * np.ndim(x)
        widths[axis] = (0, pad)
        return np.pad(np.asarray(x), widths)

    rows = NamedSharding(mesh, PartitionSpec(sharding.AXIS))
    by_user_axis1 = NamedSharding(mesh, PartitionSpec(None, sharding.AXIS))
    whole = NamedSharding(mesh, PartitionSpec())
    out = {k: sharding.place(padded(D[k]), rows) for k in ("dx", "a", "b", "y", "mask", "cov") if k in D}
    out["valid"] = sharding.place(np.arange(users + pad) < users, rows)
    if D.get("eps") is not None:
        out["eps"] = sharding.place(padded(D["eps"], axis=1), by_user_axis1)
    out["pop"] = jax.tree.map(lambda a: sharding.place(a, whole), D["pop"])
    return out, sharding.place(padded(z_init), rows)


def _run_stream(spec, source, sizes, seed, settings, chunk_users, pop_arrays):
    from bayespref.inference.engine import STREAM_USER_DRAWS

    check_supported(spec, source, sizes, outcomes=False)  # the reader checked every outcome code
    how = _covariance_kind(settings, int(sizes["n_users"]))
    t_start = time.perf_counter()
    paired = paired_design(spec, sizes)
    U, K, S_ = int(sizes["n_users"]), importance_draws(settings, paired), settings.num_samples
    J = int(source.max_per_user)
    # the users' effects, and the normals each user's draws take (paired design: effects + slots)
    F = sum(n for _, n in spec.effect_blocks(sizes["n_options"], sizes["n_features"]))
    extra = J if paired else 0
    G = _Globals(spec, sizes, pop_arrays, settings)
    cov_all = np.asarray(pop_arrays["covariates"], np.float32)

    key = as_key(seed)
    k_eps, k_glob, k_user = jax.random.split(jax.random.fold_in(key, 7), 3)
    # the importance draws: held whole when users x (effects + extra) x K is at most STREAM_USER_DRAWS
    # floats (80 MB), drawn with the in-memory method's key, so the objective is the in-memory one
    # whatever the chunk size; above that, drawn for each chunk from fold_in(key, chunk index) (the
    # same at every pass, so the objective stays deterministic; it then depends on chunk_users)
    held = K * U * (F + extra) <= STREAM_USER_DRAWS
    eps_all = np.asarray(jax.random.normal(k_eps, (K, U, F + extra), jnp.float32)) if K and held else None
    passes = [0]

    def blocks():
        """One pass over the data: (user ids with padding at 0, which are real users, the block D)."""
        passes[0] += 1
        for i, raw in enumerate(source.chunks(users=chunk_users)):
            valid = raw["users"] >= 0
            idx = np.where(valid, raw["users"], 0)
            eps = (None if K == 0 else jnp.asarray(eps_all[:, idx]) if held else
                   jax.random.normal(jax.random.fold_in(k_eps, i), (K, len(idx), F + extra), jnp.float32))
            yield idx, valid, {**_design(spec, source, raw, sizes, paired), "y": jnp.asarray(raw["y"], jnp.float32),
                               "mask": jnp.asarray(raw["mask"], jnp.float32),
                               "cov": jnp.asarray(np.where(valid[:, None], cov_all[idx], 0.0)), "eps": eps,
                               "pop": pop_arrays, "valid": jnp.asarray(valid)}

    def start(z, idx, valid):  # a padding user starts (and stays) at 0
        return jnp.asarray(np.where(valid[:, None], z[idx], 0.0), jnp.float32)

    chunk_value_grad = jax.jit(jax.value_and_grad(G.data_term, has_aux=True))  # compiled once: one chunk shape
    prior_value_grad = jax.jit(jax.value_and_grad(G.prior_potential))

    def evaluate(v, z0):
        val, g = prior_value_grad(v, pop_arrays)
        acc = {"val": float(val), "g": np.array(g, float), "z": np.array(z0), "iters": 0}

        def add(idx, valid, out):
            (cv, (cz, ci)), cg = out
            acc["val"] += float(cv)
            acc["g"] += np.asarray(cg, float)
            acc["z"][idx[valid]] = np.asarray(cz)[valid]
            acc["iters"] = max(acc["iters"], int(ci))

        pending = None
        for idx, valid, D in blocks():
            out = chunk_value_grad(v, start(z0, idx, valid), D)  # dispatched; runs while the next chunk is read
            if pending is not None:
                add(*pending)  # waits for the previous chunk: at most two chunks in memory
            pending = (idx, valid, out)
        add(*pending)
        return acc["val"], acc["g"], acc["z"], acc["iters"]

    def chunk_scores(v, D, z):
        """(valid users, P): the scores of a chunk's real users at the globals ``v``, modes ``z``."""
        Du = {k: D[k] for k in ("dx", "a", "b", "y", "mask", "cov", "eps") if D.get(k) is not None}
        return np.asarray(scores(v, pop_arrays, Du, z), float)

    def opg(v, z):
        """The prior's Hessian plus the users' score outer products at ``v`` (one pass over the chunks)."""
        curvature_passes[0] += 1
        H = G.prior_hessian(v, pop_arrays)
        for idx, valid, D in blocks():
            s = chunk_scores(v, D, start(z, idx, valid))[valid]
            H += s.T @ s
        return H

    # the rescaled search where the covariance is the outer-product one, as in memory (its compiled
    # scores serve both): plain L-BFGS took hundreds of passes on the 400 globals of 100 worths
    scores = G.scores() if how == "opg" else None
    curvature_passes = [0]
    t_opt = time.perf_counter()
    res, state = _minimise(G, evaluate, np.zeros((U, F), np.float32), settings,
                           curvature=opg if how == "opg" else None)
    opt_s = time.perf_counter() - t_opt
    x = jnp.asarray(res.x, G.v0.dtype)

    # one more pass at the mode: each chunk's modes, its part of the curvature and its users' draws
    t_cov = time.perf_counter()
    with_users = U * F * S_ <= STREAM_USER_DRAWS
    H = G.prior_hessian(x, pop_arrays)
    if how != "opg":  # each chunk's Hessian of its data term, in blocks of Hessian-vector products (one program)
        chunk_hessian = _block_hessian(lambda v, zh, D_: G.data_term(v, zh, D_)[0], x.size,
                                       _hvp_block(chunk_users, (None, F, J)))
    user_draws = jax.jit(G.user_draws)
    if with_users:
        e = np.asarray(jax.random.normal(k_user, (S_, U, F + extra), jnp.float32))  # the in-memory method's draws
        z_draws = np.zeros((S_, U, F), np.float32)
    z_hat = np.zeros((U, F), np.float32)
    for idx, valid, D in blocks():
        zc = chunk_value_grad(x, start(state["z"], idx, valid), D)[0][1][0]
        z_hat[idx[valid]] = np.asarray(zc)[valid]
        if how == "opg":
            s = chunk_scores(x, D, zc)[valid]
            H += s.T @ s
        else:
            H += chunk_hessian(x, zc, D)
        if with_users:
            z_draws[:, idx[valid]] = np.asarray(user_draws(x, zc, D, jnp.asarray(e[:, idx])))[:, valid]
    chol = _cholesky_of_inverse(H)
    cov_s = time.perf_counter() - t_cov

    draws = {k: np.asarray(v) for k, v in
             jax.jit(G.global_draws)(x, jnp.asarray(chol, x.dtype), pop_arrays, k_glob).items()}
    if with_users:
        draws["z"] = z_draws
    info = _info(settings, how, res, state, t_start, t_opt, opt_s, t_cov, cov_s, K)
    info.update({"streamed": True, "chunk_users": int(chunk_users), "laplace_passes": passes[0],
                 "laplace_curvature_passes": curvature_passes[0],
                 "laplace_importance_draws": "none" if K == 0 else "held" if held else "per chunk",
                 "user_draws": bool(with_users), "laplace_design": "pairs" if paired else "dense"})
    return {k: v[None] for k, v in draws.items()}, info
