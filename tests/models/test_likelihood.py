"""The observation model: Davidson ties and ties-as-half against hand-computed probabilities."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from bayespref.models.likelihood import WinFraction, outcome_distribution, prob_a


def test_davidson_probabilities():
    d, log_tie = 0.7, -0.4
    pa, pb, nu = np.exp(0.35), np.exp(-0.35), np.exp(log_tie)
    p_a, p_tie = prob_a(jnp.array(d), log_tie=log_tie)
    assert float(p_a) == pytest.approx(pa / (pa + pb + nu), rel=1e-5)
    assert float(p_tie) == pytest.approx(nu / (pa + pb + nu), rel=1e-5)
    lp = outcome_distribution(jnp.array([d, d, d]), log_tie=log_tie).log_prob(jnp.array([0, 1, 2]))
    np.testing.assert_allclose(np.exp(lp), [pb / (pa + pb + nu), pa / (pa + pb + nu), nu / (pa + pb + nu)], rtol=1e-5)


def test_davidson_elementwise_form_equals_the_categorical_with_its_gradient():
    import jax
    import numpyro.distributions as dist

    d = jnp.array([-60.0, -3.0, -0.2, 0.0, 0.5, 4.0, 60.0])
    y = jnp.array([0, 1, 2, 1, 0, 2, 1])

    def ll(d_, lt, form):
        if form == "categorical":
            return dist.Categorical(logits=jnp.stack([-0.5 * d_, 0.5 * d_, jnp.full_like(d_, lt)], -1)).log_prob(y).sum()
        return outcome_distribution(d_, log_tie=lt).log_prob(y).sum()

    for lt in (-3.0, 0.0, 1.5):
        np.testing.assert_allclose(ll(d, lt, "elementwise"), ll(d, lt, "categorical"), rtol=1e-6)
        g1, g2 = (jax.grad(ll, argnums=(0, 1))(d, lt, form) for form in ("elementwise", "categorical"))
        for a, b in zip(g1, g2):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    draws = outcome_distribution(jnp.full(20000, 0.7), log_tie=-0.4).sample(jax.random.PRNGKey(0))
    pa, pb, nu = np.exp(0.35), np.exp(-0.35), np.exp(-0.4)
    np.testing.assert_allclose(np.bincount(np.asarray(draws), minlength=3) / 20000,
                               np.array([pb, pa, nu]) / (pa + pb + nu), atol=0.015)


def test_probit_and_logit():
    assert float(prob_a(jnp.array(0.0))[0]) == pytest.approx(0.5)
    assert float(prob_a(jnp.array(1.0), link="probit")[0]) == pytest.approx(0.841345, rel=1e-5)
    assert float(prob_a(jnp.array(1.0))[0]) == pytest.approx(1 / (1 + np.exp(-1)), rel=1e-6)


def test_win_fraction_counts_a_tie_as_half_a_win():
    d = jnp.array(0.8)
    lp = WinFraction(d).log_prob(jnp.array(0.5))
    expected = 0.5 * np.log(1 / (1 + np.exp(-0.8))) + 0.5 * np.log(1 / (1 + np.exp(0.8)))
    assert float(lp) == pytest.approx(expected, rel=1e-6)
    assert float(WinFraction(d).log_prob(jnp.array(1.0))) == pytest.approx(np.log(1 / (1 + np.exp(-0.8))), rel=1e-6)
