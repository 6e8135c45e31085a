r"""NUTS trees with U-turn checks across neighbouring sub-trees.

NUTS doubles a trajectory until the momenta at its two ends point apart (the no-U-turn criterion,
checked on the whole trajectory and on every aligned sub-tree). On targets that are close to
independent Gaussians (a hierarchical model's thousands of standardised user effects) a discrete
trajectory can straddle the point where it should stop: neither half, nor the whole, shows the
U-turn, so the tree doubles again, and at some step sizes keeps doubling, a "resonance" (Betancourt,
Stan issue #2799, 2019; Stan's sampler has checked the merged trees since 2.21, PyMC's and
AdvancedHMC's since 2019-2020). NumPyro 0.22's iterative tree builder checks the whole and the
aligned sub-trees only. On the Arena-style design (300 judges x 12 models) about one chain in 12-16
took 118-243 leapfrog steps per draw instead of 31, all with the largest adapted step sizes
(``benchmarks/RESULTS.md``).

When a tree of :math:`2^j` leaves is merged from its halves :math:`L = (l_1 .. l_h)` and
:math:`R = (r_1 .. r_h)`, two more trajectories are checked besides :math:`L \cup R`:
:math:`L \cup \{r_1\}` and :math:`\{l_h\} \cup R`, each with the criterion on its end momenta and
the sum of its momenta :math:`\rho`. A check that fires stops the tree exactly as the ordinary one
does (inside a new sub-tree: the sub-tree is not used; at the top: doubling stops), so the rule is
the same from every starting point of a trajectory and the sampler stays reversible.

Here the checks are added to every merge of NumPyro's iterative builder: NumPyro keeps, per level,
the momentum and running momentum sum at the first leaf of the current aligned block; this module
keeps in addition, per level, those of the last leaf of the block's left half (written at odd
leaves). The leapfrog steps, the multinomial sampling and the random keys are NumPyro's, so with the
extra checks off (``ACROSS = False``) each tree has NumPyro's leaves, stops and proposal (tested). A
whole run's draws then agree until the compiled programs' different rounding (about 1e-7 in the
step size) sends the chains apart.
"""

from __future__ import annotations

from unittest import mock

import jax
import jax.numpy as jnp
import numpyro.infer.hmc_util as _hu
from jax.flatten_util import ravel_pytree

#: the NumPyro function this module stands in for while a sampler is traced (:func:`patched`)
NUMPYRO_DOUBLE_TREE = _hu._double_tree
#: add the checks across neighbouring sub-trees (False: NumPyro's criterion, for tests)
ACROSS = True


def _trailing_ones(n):
    return jnp.bitwise_count((~n & (n + 1)) - 1).astype(jnp.int32)


def _turning(imm, left, right, total, unravel):
    # flat momenta as they are for a diagonal or dense mass matrix (fewer operations to compile);
    # a block mass matrix (a dict over sites) needs them per site
    if isinstance(imm, dict):
        left, right, total = unravel(left), unravel(right), unravel(total)
    return _hu._is_turning(imm, left, right, total)


def _subtree_turning(imm, r, total, start_r, start_sum, half_r, half_sum, lo, hi, unravel):
    """Whether a block ending at the new leaf (momentum ``r``, running sum ``total``) turns.

    Checkpoint row ``i`` (``lo <= i <= hi``) holds the first leaf of the block of ``2 ** (hi - i + 1)``
    leaves ending here; row ``i + 1`` the first leaf of its right half; ``half_*[hi - i + 1]`` the last
    leaf of its left half. Largest blocks are checked last, and the loop stops at the first turn.
    """
    def body(state):
        i, _ = state
        whole = _turning(imm, start_r[i], r, total - start_sum[i] + start_r[i], unravel)
        if ACROSS:
            split = i < hi  # blocks of 4 leaves or more have halves of 2 or more
            j = hi - i + 1
            nxt = jnp.minimum(i + 1, hi)
            left_and_one = _turning(imm, start_r[i], start_r[nxt], start_sum[nxt] - start_sum[i] + start_r[i],
                                    unravel)
            one_and_right = _turning(imm, half_r[j], r, total - half_sum[j] + half_r[j], unravel)
            whole = whole | (split & (left_and_one | one_and_right))
        return i - 1, whole

    _, turning = jax.lax.while_loop(lambda s: (s[0] >= lo) & ~s[1], body, (hi, jnp.array(False)))
    return turning


def _build_subtree(prototype, vv_update, kinetic_fn, imm, step_size, going_right, rng_key, energy_current,
                   max_delta_energy, start_r, start_sum):
    """A new sub-tree of ``2 ** prototype.depth`` leaves, one leapfrog step at a time, stopped at
    the first U-turn or divergence (then marked ``turning`` / ``diverging``)."""
    n_leaves = 2 ** prototype.depth
    flat, unravel = ravel_pytree(prototype.r_right)
    half = jnp.zeros((start_r.shape[0] + 2, flat.shape[0]), flat.dtype)

    def keep(rows, idx, value, write):
        return rows.at[idx].set(jnp.where(write, value, rows[idx]))

    def body(state):
        tree, _, start_r, start_sum, half_r, half_sum, key = state
        key, k_merge = jax.random.split(key)
        z, r, g = _hu._get_leaf(tree, going_right)
        leaf = _hu._build_basetree(vv_update, kinetic_fn, z, r, g, imm, step_size, going_right, energy_current,
                                   max_delta_energy)
        merged = jax.lax.cond(tree.num_proposals == 0, lambda: leaf,
                              lambda: _hu._combine_tree(tree, leaf, imm, going_right, k_merge, False))
        n = tree.num_proposals  # the new leaf's index in the sub-tree
        lo, hi = _hu._leaf_idx_to_ckpt_idxs(n)
        r_flat = ravel_pytree(leaf.r_right)[0]
        total = ravel_pytree(merged.r_sum)[0]
        even = n % 2 == 0
        start_r, start_sum = keep(start_r, hi, r_flat, even), keep(start_sum, hi, total, even)
        level = _trailing_ones(n) + 1  # an odd leaf ends the left half of one block, of this level
        half_r, half_sum = keep(half_r, level, r_flat, ~even), keep(half_sum, level, total, ~even)
        turning = _subtree_turning(imm, r_flat, total, start_r, start_sum, half_r, half_sum, lo, hi, unravel)
        return merged, turning, start_r, start_sum, half_r, half_sum, key

    def cond(state):
        tree, turning = state[0], state[1]
        return (tree.num_proposals < n_leaves) & ~turning & ~tree.diverging

    tree, turning, *_ = jax.lax.while_loop(
        cond, body, (prototype._replace(num_proposals=0), jnp.array(False), start_r, start_sum, half, half, rng_key))
    return tree._replace(depth=prototype.depth, turning=turning)


def _across(current, new, going_right, imm):
    """The two checks across the top-level merge of ``current`` and the ``new`` sub-tree."""
    def pick(a, b):
        return jax.tree.map(lambda x, y: jnp.where(going_right, x, y), a, b)

    near_cur, far_cur = pick(current.r_right, current.r_left), pick(current.r_left, current.r_right)
    near_new, far_new = pick(new.r_left, new.r_right), pick(new.r_right, new.r_left)
    add = lambda a, b: jax.tree.map(jnp.add, a, b)  # noqa: E731
    return (_hu._is_turning(imm, far_cur, near_new, add(current.r_sum, near_new))
            | _hu._is_turning(imm, near_cur, far_new, add(near_cur, new.r_sum)))


def double_tree(current, vv_update, kinetic_fn, imm, step_size, going_right, rng_key, energy_current,
                max_delta_energy, start_r, start_sum):
    """NumPyro's ``_double_tree`` interface: build a sub-tree as long as ``current`` in the direction
    drawn and merge it (proposal drawn with the biased kernel), with the checks across the merge."""
    key, k_merge = jax.random.split(rng_key)
    new = _build_subtree(current, vv_update, kinetic_fn, imm, step_size, going_right, key, energy_current,
                         max_delta_energy, start_r, start_sum)
    merged = _hu._combine_tree(current, new, imm, going_right, k_merge, True)
    if ACROSS:
        merged = merged._replace(turning=merged.turning | _across(current, new, going_right, imm))
    return merged


def patched():
    """While tracing a sampler: NumPyro's NUTS doubles its trees with :func:`double_tree` (restored after,
    also when tracing fails)."""
    return mock.patch.object(_hu, "_double_tree", double_tree)


__all__ = ["ACROSS", "double_tree", "patched"]
