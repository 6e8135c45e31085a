"""What the Laplace method's two per-user designs share: the damped Newton search for the users'
conditional modes, their joint log density, and the log-mean of the importance weights."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def log_joint(y, mask, eta, z, log_tie=None):
    """Each user's log joint density up to a constant: the outcomes' log likelihood (:func:`outcome_terms`)
    over the unmasked comparisons, plus N(0, I) on z."""
    return jnp.sum(mask * outcome_terms(y, eta, log_tie)[0], -1) - 0.5 * jnp.sum(z * z, -1)


def newton_search(direction, joint_at, z0, *, max_newton, tol):
    """The users' modes (U, E) and the iterations taken: Newton steps ``direction(z)`` (U, E) for all users
    at once, each user keeping the best of the step lengths 1, 1/2, 1/4, 1/8 and 0 by ``joint_at(trials)``
    (A, U) (plain Newton diverges for users whose judgements are nearly separable); stops when no user's
    mode moves more than ``tol`` or after ``max_newton`` steps."""
    dt = z0.dtype
    alphas = jnp.array([1.0, 0.5, 0.25, 0.125, 0.0], dt)

    def newton(carry):
        z, i, _ = carry
        trial = z[None] + alphas[:, None, None] * direction(z)[None]   # (alpha, user, E)
        best = jnp.argmax(joint_at(trial), 0)
        new = jnp.take_along_axis(trial, best[None, :, None], 0)[0]
        return new, i + 1, jnp.max(jnp.abs(new - z))

    z, iters, _ = jax.lax.while_loop(lambda c: (c[1] < max_newton) & (c[2] > tol), newton,
                                     (z0, 0, jnp.asarray(jnp.inf, dt)))
    return z, iters


def importance_log_mean(logw, debias: bool):
    r"""log of the mean of the K importance weights ``exp(logw)`` (K, U); ``debias`` adds the delta-method
    term :math:`\widehat{\operatorname{Var}}(r)/(2K)`, r the weights over their mean, which removes most of
    the :math:`O(1/K)` downward bias of a log-mean."""
    K = logw.shape[0]
    out = jax.scipy.special.logsumexp(logw, 0) - jnp.log(K)
    if debias and K > 1:
        r = jnp.exp(logw - out[None])
        out = out + 0.5 * jnp.sum((r - 1.0) ** 2, 0) / (K - 1) / K
    return out


def outcome_terms(y, eta, log_tie=None):
    r"""Per comparison (unmasked): log likelihood, its derivative in the linear predictor :math:`\eta` and
    minus its second derivative (the Newton weight, positive: both models are log-concave in
    :math:`\eta`). Bernoulli-logit without ties (``log_tie`` None, ``y`` 0/1); with Davidson ties
    (``y`` 0 = b, 1 = a, 2 = tie) the log likelihood is
    :math:`c_y - \log(e^{-\eta/2} + e^{\eta/2} + \nu)`, :math:`c_y` = :math:`-\eta/2`, :math:`\eta/2`
    or :math:`\log\nu`, whose derivatives are :math:`s_y - (p_a - p_b)/2` and minus
    :math:`((p_a + p_b) - (p_a - p_b)^2)/4` (:math:`s_y` = -1/2, 1/2, 0; p the three outcomes'
    probabilities), as in :class:`bayespref.models.likelihood.Davidson`."""
    if log_tie is None:
        p = jax.nn.sigmoid(eta)
        return y * eta - jax.nn.softplus(eta), y - p, p * (1 - p)
    lt = jnp.broadcast_to(jnp.asarray(log_tie, eta.dtype), eta.shape)
    logits = jnp.stack([-0.5 * eta, 0.5 * eta, lt], axis=-1)
    lse = jax.scipy.special.logsumexp(logits, axis=-1)
    pb, pa = jnp.exp(logits[..., 0] - lse), jnp.exp(logits[..., 1] - lse)
    s = jnp.where(y == 1, 0.5, jnp.where(y == 0, -0.5, 0.0)).astype(eta.dtype)
    chosen = jnp.where(y == 2, lt, s * eta)
    return chosen - lse, s - 0.5 * (pa - pb), 0.25 * ((pa + pb) - (pa - pb) ** 2)
