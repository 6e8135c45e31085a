"""NUTS trees with U-turn checks across merged sub-trees (bayespref.inference.uturn)."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import numpyro.infer.hmc_util as hu
import pytest
from numpyro.infer import MCMC, NUTS

from bayespref.inference import uturn

DIM = 100


@functools.lru_cache(maxsize=None)
def _program(across, dim, scales):
    """One NUTS tree from each of a batch of states of a Gaussian target (independent coordinates
    with SDs ``scales``, identity mass matrix): leapfrog steps and proposal per tree, the step size
    an argument (compiled once per builder). ``across``: None for NumPyro's own builder, else this
    module's with the checks across on or off."""
    scales = jnp.asarray(scales)
    init, update = hu.velocity_verlet(lambda z: 0.5 * jnp.sum((z / scales) ** 2), hu.euclidean_kinetic_energy)

    def tree(state, key, step):
        t = hu.build_tree(update, hu.euclidean_kinetic_energy, state, jnp.ones(dim), step, key)
        return t.num_proposals, t.z_proposal

    program = jax.jit(jax.vmap(tree, (0, 0, None)))
    k1, k2, k3 = jax.random.split(jax.random.PRNGKey(1), 3)
    n = 300
    states = jax.vmap(init)(jax.random.normal(k1, (n, dim)) * scales, jax.random.normal(k2, (n, dim)))
    keys = jax.random.split(k3, n)
    if across is None:
        assert hu._double_tree is uturn.NUMPYRO_DOUBLE_TREE
        compiled = program.lower(states, keys, 0.1).compile()
    else:
        old, uturn.ACROSS = uturn.ACROSS, across
        try:
            with uturn.patched():  # the patch acts while the program is traced
                compiled = program.lower(states, keys, 0.1).compile()
        finally:
            uturn.ACROSS = old
    return lambda step: tuple(np.asarray(x) for x in compiled(states, keys, jnp.float32(step)))


def _trees(across, step, dim=DIM, scales=None):
    return _program(across, dim, (1.0,) * dim if scales is None else tuple(scales))(step)


@pytest.mark.slow  # two sampler programs compiled (~15 s; default-suite budget); run with -m slow
def test_without_the_checks_across_the_trees_are_numpyros():
    # the builder itself is a faithful rewrite: same leaves, same stops, same proposals, with
    # coordinates of different scales, at resonant, ordinary and divergent step sizes
    scales = tuple(np.linspace(0.3, 2.0, 20).tolist())
    for step in (0.1, 0.37, 0.9, 2.5):
        mine, z_mine = _trees(False, step, dim=20, scales=scales)
        theirs, z_theirs = _trees(None, step, dim=20, scales=scales)
        np.testing.assert_array_equal(mine, theirs)
        np.testing.assert_allclose(z_mine, z_theirs, rtol=1e-5, atol=1e-6)


@pytest.mark.slow  # a long statistical check (default-suite budget); run with -m slow
def test_the_checks_across_stop_the_resonant_trees():
    # 100 independent standard normals: at step size 0.1 (and 0.9) NumPyro's criterion misses the
    # U-turn on part of the trajectories and some trees run to the maximum depth (1,023 steps)
    for step in (0.1, 0.9):
        theirs, _ = _trees(None, step)
        mine, _ = _trees(True, step)
        assert theirs.max() >= 31 and mine.max() < theirs.max(), (step, theirs.max(), mine.max())
        assert mine.mean() < 0.7 * theirs.mean(), (step, theirs.mean(), mine.mean())
    # where nothing resonates the trees are the same
    np.testing.assert_array_equal(_trees(True, 0.5)[0], _trees(None, 0.5)[0])


def test_sampling_at_a_resonant_step_size_keeps_the_target():
    # fixed step size 0.1 on 100 standard normals, where the trees are cut by the checks across
    # (at most 63 steps; NumPyro's own run to 1,023 there, test_the_checks_across_stop_the_resonant_trees):
    # the draws' means and variances are those of N(0, 1) (tolerances from their Monte Carlo error)
    def model():
        numpyro.sample("x", dist.Normal(0.0, 1.0).expand([DIM]))

    with uturn.patched():
        mcmc = MCMC(NUTS(model, step_size=0.1, adapt_step_size=False, adapt_mass_matrix=False), num_warmup=50,
                    num_samples=1000, progress_bar=False)
        mcmc.run(jax.random.PRNGKey(3), extra_fields=("num_steps",))
    x = np.asarray(mcmc.get_samples()["x"])
    steps = np.asarray(mcmc.get_extra_fields()["num_steps"])
    assert steps.max() <= 63
    # draws of NUTS on iid normals are close to independent; 5 SE with an ESS of 500 as a floor
    se_mean, se_var = 1 / np.sqrt(500), np.sqrt(2 / 500)
    assert np.abs(x.mean(0)).max() < 5 * se_mean
    assert np.abs(x.var(0) - 1).max() < 5 * se_var
    assert abs(x.var(0).mean() - 1) < 5 * se_var / np.sqrt(DIM)

