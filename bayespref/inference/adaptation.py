r"""NUTS warm-up: a diagonal mass matrix estimated from the draws *and* their gradients.

NumPyro's warm-up (Stan's) sets the diagonal inverse mass matrix to the variance of the draws in each
slow window. For a Gaussian target :math:`N(\mu, \Sigma)` the gradient of the potential is
:math:`\Sigma^{-1}(x - \mu)`, so along a coordinate the draws' variance is :math:`\sigma_i^2` and the
gradients' is :math:`1 / \sigma_i^2` where the coordinates are independent. Their ratio

.. math::

    M^{-1}_{ii} = \sqrt{\operatorname{Var}(x_i) / \operatorname{Var}(\partial_i U)}

is right for independent coordinates from either side and, where coordinates are correlated, lies
between the marginal variance (which the draws alone estimate) and the conditional variance (which
the gradients alone estimate), which is what bounds the step size. The choice is the one nutpie makes
(Seyboldt et al., "nutpie", 2023; the "Fisher divergence" diagonal), here inside NumPyro's kernel:
its ``warmup_adapter`` is replaced, while a sampler is traced (:func:`patched`), by
:func:`warmup_adapter`, which keeps NumPyro's step-size dual averaging and ``HMCAdaptState`` layout
and changes only the mass-matrix estimate and the schedule of windows (:func:`schedule`: the last
mass-matrix window is followed by :data:`END_FRACTION` of the warm-up that adapts the step size
alone, three times Stan's 50 iterations, so the step size settles on the final metric; the first
mass matrix after 65 iterations, not Stan's 100).

Dense and block mass matrices keep NumPyro's own adapter.
"""

from __future__ import annotations

from unittest import mock

import jax
import jax.numpy as jnp
import numpyro.infer.hmc as _hmc
from jax.flatten_util import ravel_pytree
from numpyro.infer.hmc_util import AdaptWindow, HMCAdaptState, _initialize_mass_matrix, dual_averaging

#: the NumPyro adapter this module stands in for (dense or block mass matrices use it)
NUMPYRO_ADAPTER = _hmc.warmup_adapter
#: fraction of the warm-up kept for the start (step size only) and the end (step size on the final metric)
START_FRACTION = 0.015
END_FRACTION = 0.15
#: length of the first mass-matrix window, as a fraction of the warm-up (later windows double)
FIRST_WINDOW_FRACTION = 0.05
#: below this product of a window's draw and gradient variances (>= 1 for every smooth target) the
#: gradients are not used for that coordinate (:func:`_moments_final`)
MIN_INFORMATION_PRODUCT = 0.1


def schedule(num_steps: int) -> list[AdaptWindow]:
    """Windows of the warm-up: a start buffer, doubling mass-matrix windows, an end buffer.

    The same form as Stan's (:func:`numpyro.infer.hmc_util.build_adaptation_schedule`) with buffers
    in proportion to the warm-up: for 1,000 iterations 15 | 50, 100, 200, 485 | 150. The first
    mass matrix comes early: until then the trees run on the identity, and on the Arena-style design
    (12 models, 300 judges) those iterations took 220-260 leapfrog steps each against about 35 after,
    so Stan's 75 + 25 iterations before the first estimate were half of the warm-up's gradients
    (61,490 in all; 48,818 with 15 + 50). A first window of 15 draws (41,428) was too noisy: on
    LatentTypes K = 4, whose chains start from a good mass matrix at the modes, one seed in five
    ended with R-hat 1.048; with 50, five of five were below 1.004.
    """
    if num_steps < 20:
        return [AdaptWindow(0, num_steps - 1)]
    start, end = max(5, int(START_FRACTION * num_steps)), int(END_FRACTION * num_steps)
    size = max(5, int(FIRST_WINDOW_FRACTION * num_steps))
    out = [AdaptWindow(0, start - 1)]
    end_start, nxt = num_steps - end, start
    while nxt < end_start:
        cur, cur_size = nxt, size
        if 3 * cur_size <= end_start - cur:
            size = 2 * cur_size
        else:
            cur_size = end_start - cur
        nxt = cur + cur_size
        out.append(AdaptWindow(cur, nxt - 1))
    out.append(AdaptWindow(end_start, num_steps - 1))
    return out


def _moments_init(size):
    zero = jnp.zeros(size)
    return zero, zero, zero, zero, jnp.array(0, dtype=jnp.result_type(int))


def _moments_update(x, g, state):
    mx, sx, mg, sg, n = state
    n = n + 1
    dx, dg = x - mx, g - mg
    mx, mg = mx + dx / n, mg + dg / n
    return mx, sx + dx * (x - mx), mg, sg + dg * (g - mg), n


def _moments_final(state, regularize=True):
    r"""The diagonal ``sqrt(var(x) / var(g))``, shrunk towards 1e-3 as Stan shrinks its variances.

    For every smooth target :math:`\operatorname{Var}(x_i) \operatorname{Var}(\partial_i U) \ge 1`
    (the Cramer-Rao bound :math:`\Sigma \succeq I^{-1}` read on the diagonal), and the estimate lies
    in :math:`[1 / \operatorname{Var}(\partial_i U), \operatorname{Var}(x_i)]` exactly when that holds.
    A window far from it (product below :data:`MIN_INFORMATION_PRODUCT`) has not sampled the target:
    typically a chain early in its warm-up drifting where the potential is linear, e.g. a
    log-SD going down a funnel's neck, whose gradient is then the same constant in every draw
    (variance 0, and the ratio infinite: the chain would never move again). There the draws'
    variance (Stan's estimate) is used for that coordinate.
    """
    _, sx, _, sg, n = state
    tiny = jnp.finfo(sx.dtype).tiny
    ratio = jnp.sqrt(jnp.maximum(sx, tiny) / jnp.maximum(sg, tiny))
    dof = jnp.maximum(n - 1, 1).astype(sx.dtype)
    var_x = sx / dof
    sampled = (sx * sg >= MIN_INFORMATION_PRODUCT * dof * dof) & jnp.isfinite(ratio)
    inv = jnp.where(sampled, ratio, var_x)
    if regularize:
        inv = (n / (n + 5.0)) * inv + 1e-3 * (5.0 / (n + 5.0))
    return inv, jnp.sqrt(jnp.reciprocal(inv)), jnp.sqrt(inv)


def _each(f, *blocks):
    """``f`` on each block of NumPyro's diagonal layout: one array over all sites, or a dict
    {site names: array} (``dense_mass=[]``, or a starting mass matrix given as a dict)."""
    if isinstance(blocks[0], dict):
        return {k: f(*(b[k] for b in blocks)) for k in blocks[0]}
    return f(*blocks)


def _unzip3(done):
    """A (imm, sqrt, sqrt_inv) triple per block -> three objects in the blocks' layout."""
    if isinstance(done, dict):
        return tuple({k: v[i] for k, v in done.items()} for i in range(3))
    return done


def _flat(tree, layout):
    """Sites' values in the mass matrix's layout (``layout``: the inverse mass matrix)."""
    if isinstance(layout, dict):
        return {names: ravel_pytree(tuple(tree[k] for k in names))[0] for names in layout}
    return ravel_pytree(tree)[0]


def warmup_adapter(num_adapt_steps, find_reasonable_step_size=None, adapt_step_size=True,
                   adapt_mass_matrix=True, dense_mass=False, target_accept_prob=0.8,
                   regularize_mass_matrix=True):
    """NumPyro's ``warmup_adapter`` interface, with the gradient-informed diagonal (module docstring).

    Dense or block (``dense_mass`` a list) mass matrices are handed to NumPyro's adapter.
    """
    if dense_mass:  # True, or a non-empty list of blocks ([] is NumPyro's spelling of a diagonal)
        return NUMPYRO_ADAPTER(num_adapt_steps, find_reasonable_step_size=find_reasonable_step_size,
                               adapt_step_size=adapt_step_size, adapt_mass_matrix=adapt_mass_matrix,
                               dense_mass=dense_mass, target_accept_prob=target_accept_prob,
                               regularize_mass_matrix=regularize_mass_matrix)
    if find_reasonable_step_size is None:
        def find_reasonable_step_size(step_size, *_):
            return step_size
    ss_init, ss_update = dual_averaging()
    windows = schedule(num_adapt_steps)
    ends = jnp.asarray([w.end for w in windows])
    n_windows = len(windows)

    def fresh(imm):
        return _each(lambda v: _moments_init(v.shape), imm)

    def init_fn(z_info, rng_key, step_size=1.0, inverse_mass_matrix=None, mass_matrix_size=None):
        imm, sqrt, sqrt_inv = _initialize_mass_matrix(z_info[0], inverse_mass_matrix, dense_mass)
        rng_key, rng_key_ss = jax.random.split(rng_key)
        if adapt_step_size:
            step_size = find_reasonable_step_size(step_size, imm, z_info, rng_key_ss)
        return HMCAdaptState(step_size, imm, sqrt, sqrt_inv, ss_init(jnp.log(10 * step_size)), fresh(imm),
                             jnp.array(0, dtype=jnp.result_type(int)), rng_key)

    def window_end(z_info, rng_key_ss, state):
        step_size, imm, sqrt, sqrt_inv, ss_state, moments, window_idx, rng_key = state
        if adapt_mass_matrix:
            imm, sqrt, sqrt_inv = _unzip3(_each(lambda m: _moments_final(m, regularize_mass_matrix), moments))
            moments = fresh(imm)
        if adapt_step_size:
            step_size = find_reasonable_step_size(step_size, imm, z_info, rng_key_ss)
            ss_state = ss_init(jnp.log(10) + jnp.log(step_size))
        return HMCAdaptState(step_size, imm, sqrt, sqrt_inv, ss_state, moments, window_idx, rng_key)

    def update_fn(t, accept_prob, z_info, state):
        step_size, imm, sqrt, sqrt_inv, ss_state, moments, window_idx, rng_key = state
        rng_key, rng_key_ss = jax.random.split(rng_key) if rng_key is not None else (None, None)
        if adapt_step_size:
            ss_state = ss_update(target_accept_prob - accept_prob, ss_state)
            log_step_size, log_step_size_avg, *_ = ss_state
            step_size = jnp.where(t == num_adapt_steps - 1, jnp.exp(log_step_size_avg), jnp.exp(log_step_size))
            finfo = jnp.finfo(jnp.result_type(step_size))
            step_size = jnp.clip(step_size, finfo.tiny, finfo.max)
        middle = (0 < window_idx) & (window_idx < n_windows - 1)
        if adapt_mass_matrix:
            new = _each(_moments_update, _flat(z_info.z, imm), _flat(z_info.z_grad, imm), moments)
            moments = jax.tree.map(lambda a, b: jnp.where(middle, a, b), new, moments)
        at_end = t == ends[window_idx]
        window_idx = jnp.where(at_end, window_idx + 1, window_idx)
        state = HMCAdaptState(step_size, imm, sqrt, sqrt_inv, ss_state, moments, window_idx, rng_key)
        return jax.lax.cond(at_end & middle, lambda s: window_end(z_info, rng_key_ss, s), lambda s: s, state)

    return init_fn, update_fn


def patched():
    """While tracing a sampler: NumPyro's HMC builds its warm-up with :func:`warmup_adapter` (restored after,
    also when tracing fails)."""
    return mock.patch.object(_hmc, "warmup_adapter", warmup_adapter)


__all__ = ["schedule", "warmup_adapter", "patched"]
