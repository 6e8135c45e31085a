r"""The Laplace method's per-user steps for user-varying worths with independent SDs (many options).

When the users' effects are the options' worths only, with independent SDs (the default above 10
options), user u's linear predictor on comparison j is

.. math::

    \eta_{uj} = m_{u a_j} - m_{u b_j} + \text{pos} + s_{a_j} z_{u a_j} - s_{b_j} z_{u b_j},

so the user's design in z coordinates, :math:`A_u` (J x E, J comparisons, E options), has two
non-zeros per row. The conditional precision :math:`H_u = I + A_u^\top W_u A_u` is E x E (100 x 100
on an Arena leaderboard of 100 models) but differs from the identity by rank at most J. With
:math:`B_u = W_u^{1/2} A_u` and :math:`C_u = I_J + B_u B_u^\top`:

.. math::

    H_u^{-1} = I - B_u^\top C_u^{-1} B_u \quad\text{(Woodbury)},\qquad
    \log\det H_u = \log\det C_u \quad\text{(Sylvester)},

    (B B^\top)_{jk} = \sqrt{w_j w_k}\,\big[s_{a_j}^2 (1[a_j = a_k] - 1[a_j = b_k])
                      + s_{b_j}^2 (1[b_j = b_k] - 1[b_j = a_k])\big],

so its log determinant costs :math:`O(J^2)` per user to form :math:`C_u` and :math:`O(J^3)` for its
Cholesky factor instead of :math:`O(J E^2 + E^3)`, and :math:`A_u z`, :math:`A_u^\top r` are a gather
and a scatter. That pays where a user has fewer comparisons than there are options (an Arena
leaderboard of 100 models, 50 battles a judge). Where the users' comparison slots J are at least the
options E (12 models, judges with up to hundreds of battles) the factor is taken in option space
instead: :math:`H_u` itself, scattered from the comparisons in :math:`O(J)` and factored in
:math:`O(E^3)` (:class:`Precision` chooses; on 300 judges of up to ~250 battles over 12 models the
J x J factors made an L-BFGS evaluation cost about 0.4 s). Draws from :math:`N(\hat z_u, c^2 H_u^{-1})` use Matheron's rule,
:math:`z = \hat z_u + c\,(e_1 - B_u^\top C_u^{-1} (B_u e_1 + e_2))` with :math:`e_1 \sim N(0, I_E)`,
:math:`e_2 \sim N(0, I_J)`, whose covariance is :math:`c^2 (I - B^\top C^{-1} B) = c^2 H_u^{-1}`;
their proposal density needs :math:`\delta^\top H_u \delta = |\delta|^2 + |B_u \delta|^2`.

The results are those of :func:`bayespref.inference.laplace.user_marginals` on the dense design (the
same modes and plain-Laplace marginals; tests/inference/test_laplace_pairs.py), except that the
importance draws are built from (K, users, E + J) standard normals instead of (K, users, E).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from bayespref.inference.laplace_search import importance_log_mean, log_joint, newton_search, outcome_terms

#: each user's entries of its options: (..., U, E) with indices (U, J) -> (..., U, J)
_take = jnp.vectorize(lambda v, i: v[i], signature="(e),(j)->(j)")


class PairDesign:
    """User u's comparison j: options ``a[u, j]`` and ``b[u, j]`` (U, J), scaled by the SDs ``s`` (E,)."""

    def __init__(self, a, b, s):
        self.a, self.b, self.E = a, b, s.shape[0]
        self.sa, self.sb = s[a], s[b]

    def differences(self, m):
        """:math:`m_{u a_j} - m_{u b_j}`, unscaled: (..., U, E) -> (..., U, J)."""
        return _take(m, self.a) - _take(m, self.b)

    def apply(self, z):
        """:math:`A_u z_u`: (..., U, E) -> (..., U, J)."""
        return self.sa * _take(z, self.a) - self.sb * _take(z, self.b)

    def _scatter(self, ra, rb):
        """:math:`\\sum_j r_{a,uj} e_{a_j} + r_{b,uj} e_{b_j}`: (U, J) twice -> (U, E), one scatter each."""
        rows = jnp.arange(ra.shape[0])[:, None]
        return jnp.zeros((ra.shape[0], self.E), ra.dtype).at[rows, self.a].add(ra).at[rows, self.b].add(rb)

    def transpose_sq(self, w):
        """:math:`\\operatorname{diag}(A_u^\\top \\operatorname{diag}(w_u) A_u)`: (U, J) -> (U, E)."""
        return self._scatter(self.sa ** 2 * w, self.sb ** 2 * w)

    def transpose(self, r):
        """:math:`A_u^\\top r_u`: (U, J) -> (U, E)."""
        return self._scatter(self.sa * r, -self.sb * r)

    def precision(self, w):
        r""":math:`H_u = I + A_u^\top \operatorname{diag}(w_u) A_u` (U, E, E), scattered from the comparisons."""
        rows = jnp.arange(w.shape[0])[:, None]
        cross = -self.sa * self.sb * w
        H = (jnp.zeros((w.shape[0], self.E, self.E), w.dtype)
             .at[rows, self.a, self.a].add(self.sa ** 2 * w).at[rows, self.b, self.b].add(self.sb ** 2 * w)
             .at[rows, self.a, self.b].add(cross).at[rows, self.b, self.a].add(cross))
        return H + jnp.eye(self.E, dtype=w.dtype)

    def gram(self):
        """:math:`A_u A_u^\\top` (U, J, J) from the equalities of the options shown."""
        a, b = self.a, self.b
        eq = lambda x, y: (x[:, :, None] == y[:, None, :]).astype(self.sa.dtype)   # noqa: E731
        return (self.sa[:, :, None] ** 2 * (eq(a, a) - eq(a, b))
                + self.sb[:, :, None] ** 2 * (eq(b, b) - eq(b, a)))


class Precision:
    r"""Each user's conditional precision :math:`H_u = I + A_u^\top W_u A_u` at the Newton weights ``w``
    (U, J, unmasked; ``mask`` zeroes the padding slots), factored in the smaller space: option space
    (:math:`H_u`, E x E) when the slots J are at least the options E, comparison space (:math:`C_u`,
    J x J, Woodbury and Sylvester) otherwise; ``space`` ("options" or "comparisons") forces one. Both
    give the same log determinant and draws with covariance :math:`H_u^{-1}`."""

    def __init__(self, design, mask, w, space=None):
        self.design, self.mask, self.w_raw, self.w = design, mask, w, mask * w
        self.options = (design.E <= mask.shape[-1]) if space is None else space == "options"

    @functools.cached_property
    def sw(self):
        """:math:`W^{1/2}` (U, J), :math:`W = \\text{mask}\\, w`: the square root of the unmasked weights,
        which are positive (its derivative at a padding slot's 0 would not be finite)."""
        return self.mask * jnp.sqrt(self.w_raw)

    @functools.cached_property
    def L(self):
        """The Cholesky factor of :math:`H_u` (option space) or of
        :math:`C_u = I + W^{1/2} A_u A_u^\\top W^{1/2}` (comparison space)."""
        if self.options:
            return jnp.linalg.cholesky(self.design.precision(self.w))
        sw = self.sw
        return jnp.linalg.cholesky(sw[:, :, None] * self.design.gram() * sw[:, None, :]
                                   + jnp.eye(sw.shape[-1], dtype=sw.dtype))

    def factored(self):
        """This precision with the factor its solves use computed now: one factor for solves traced in
        other functions (a linear solve's forward and transposed traces), none leaking from them."""
        if self.options:
            _ = self.L
        return self

    def solve(self, g):
        """:math:`H_u^{-1} g` (U, E): with the factor in option space, by conjugate gradients otherwise
        (matrix-free, :func:`_cg`; no J x J factor for a Newton direction)."""
        if self.options:
            return jax.scipy.linalg.cho_solve((self.L, True), g[..., None])[..., 0]
        return _cg(self.design, self.w, g)

    def half_logdet(self):
        r""":math:`\tfrac12 \log\det H_u` (U,)."""
        return jnp.sum(jnp.log(jnp.diagonal(self.L, axis1=-2, axis2=-1)), -1)

    def offsets(self, e):
        r"""Draws (K, U, E) of :math:`N(0, H_u^{-1})` from standard normals ``e`` (K, U, E + J): in option
        space :math:`L_u^{-\top} e_1` (:math:`H_u = L_u L_u^\top`, the last J normals unused), else
        Matheron's rule (:func:`draw_offsets`)."""
        if not self.options:
            return draw_offsets(self.design, self.L, self.sw, e)
        rhs = jnp.moveaxis(e[..., :self.design.E], 0, -1)                 # (U, E, K)
        v = jax.scipy.linalg.solve_triangular(self.L, rhs, lower=True, trans="T")
        return jnp.moveaxis(v, -1, 0)

    def quadratic(self, delta):
        r""":math:`\delta^\top H_u \delta = |\delta|^2 + \sum_j w_j (A_u \delta)_j^2` (K, U)."""
        return jnp.sum(delta * delta, -1) + jnp.sum(self.w * self.design.apply(delta) ** 2, -1)


#: most conjugate-gradient iterations of a Newton direction, and the relative residual that stops them
CG_ITERS, CG_TOL = 50, 1e-4


def _cg(design, w, g):
    """Newton direction :math:`H^{-1} g`, :math:`H v = v + A^\\top W A v`, by conjugate gradients with the
    diagonal of H as preconditioner, all users at once (matrix-free: a gather and a scatter per
    iteration, against a Cholesky factor per user). H's eigenvalues are at least 1, so few iterations
    suffice; the Newton search tolerates an inexact direction (its step-halving keeps the best point)."""
    def hv(v):
        return v + design.transpose(w * design.apply(v))

    pre = 1.0 / (1.0 + design.transpose_sq(w))                          # (U, E) inverse of H's diagonal
    x = jnp.zeros_like(g)
    r = g
    zr = pre * r
    p = zr
    rz = jnp.sum(r * zr, -1)
    g2 = jnp.sum(g * g, -1)

    def cond(c):
        i, _, r, _, _ = c
        return (i < CG_ITERS) & jnp.any(jnp.sum(r * r, -1) > CG_TOL ** 2 * g2)

    def body(c):
        i, x, r, p, rz = c
        hp = hv(p)
        alpha = rz / jnp.maximum(jnp.sum(p * hp, -1), 1e-30)
        x = x + alpha[:, None] * p
        r = r - alpha[:, None] * hp
        zr = pre * r
        rz_new = jnp.sum(r * zr, -1)
        p = zr + (rz_new / jnp.maximum(rz, 1e-30))[:, None] * p
        return i + 1, x, r, p, rz_new

    return jax.lax.while_loop(cond, body, (0, x, r, p, rz))[1]


def user_marginals_pairs(a, b, y, mask, m, sd, pos, z0, *, max_newton, tol, eps=None, debias=True, widen=1.0,
                         log_tie=None, space=None):
    r"""Per-user log marginal likelihoods (users,), conditional modes (users, E), Newton iterations.

    ``a``, ``b`` (U, J) the options of each user's comparisons, ``y`` and ``mask`` (U, J), ``m`` (U, E)
    the users' mean worths, ``sd`` (E,) their SDs, ``z0`` (U, E) where the Newton search starts, ``eps``
    (K, U, E + J) fixed standard-normal draws for the importance-weighted version (None: plain
    Laplace); ``debias``, ``widen`` as in :func:`bayespref.inference.laplace.user_marginals`;
    ``log_tie``: Davidson ties (outcomes 0, 1, 2; :func:`~bayespref.inference.laplace_search.outcome_terms`);
    ``space``: where the precisions are factored (:class:`Precision`; None chooses the smaller).
    """
    dt = y.dtype   # the data's (float32): the globals may be float64
    m = m.astype(dt)
    design = PairDesign(a, b, sd.astype(dt))
    eta0 = design.differences(m) + jnp.asarray(pos, dt)
    E = design.E

    def joint(eta, z):
        return log_joint(y, mask, eta, z, log_tie)

    def gradient(z):
        """Linear predictor, Newton weights (unmasked) and gradient of the log joint at z."""
        eta = eta0 + design.apply(z)
        _, r, w = outcome_terms(y, eta, log_tie)
        return eta, w, design.transpose(mask * r) - z

    def direction(z):
        _, w, grad = gradient(z)
        return Precision(design, mask, w, space).solve(grad)

    z, iters = newton_search(direction, lambda t: joint(eta0[None] + design.apply(t), t), z0.astype(dt),
                             max_newton=max_newton, tol=tol)
    z = jax.lax.stop_gradient(z)
    # live step, the implicit derivative: z* = z + H^{-1} g, differentiated as a linear solve (its
    # derivative needs H's products and solves with H fixed, not a factor's derivative)
    _, w_raw, grad = gradient(z)
    w = mask * w_raw
    fixed = Precision(design, mask, jax.lax.stop_gradient(w_raw), space).factored()
    solve = lambda _, r: fixed.solve(r)     # noqa: E731
    z = z + jax.lax.custom_linear_solve(lambda v: v + design.transpose(w * design.apply(v)), grad, solve,
                                        symmetric=True)
    eta, w_raw, _ = gradient(z)
    P = Precision(design, mask, w_raw, space)
    half_logdet = P.half_logdet()
    if eps is None:
        return joint(eta, z) - half_logdet, z, iters
    delta = widen * P.offsets(eps)                                       # (K, U, E)
    zk = z[None] + delta
    quad = P.quadratic(delta) / widen ** 2
    logw = (joint(eta0[None] + design.apply(zk), zk) + 0.5 * quad - half_logdet
            + E * jnp.log(jnp.asarray(widen, dt)))
    return importance_log_mean(logw, debias), z, iters


def draw_offsets(design, L, sw, e):
    """Matheron's rule: (K, U, E) draws of :math:`N(0, H_u^{-1})` from standard normals ``e`` (K, U, E + J),
    the K right-hand sides solved together (one batched triangular solve per user, not K)."""
    e1, e2 = e[..., :design.E], e[..., design.E:]
    rhs = sw * design.apply(e1) + e2                                   # (K, U, J)
    v = jax.scipy.linalg.cho_solve((L, True), jnp.moveaxis(rhs, 0, -1))   # (U, J, K)
    return e1 - jax.vmap(design.transpose)(sw * jnp.moveaxis(v, -1, 0))


def conditional_draws(a, b, y, mask, m, sd, pos, z, e, log_tie=None, space=None):
    """Draws (S, U, E) of the users' z from :math:`N(z_u, H_u^{-1})`, ``e`` (S, U, E + J) standard normal
    (``space`` as in :class:`Precision`)."""
    dt = y.dtype
    m = m.astype(dt)
    design = PairDesign(a, b, sd.astype(dt))
    w = outcome_terms(y, design.differences(m) + jnp.asarray(pos, dt) + design.apply(z), log_tie)[2]
    P = Precision(design, mask, w, space)
    return z[None] + jax.lax.map(lambda ek: P.offsets(ek[None])[0], e)
