"""The observation model: Davidson ties and ties-as-half against hand-computed probabilities."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bayespref.models.likelihood import BernoulliLogit, WinFraction, log_sigmoid, outcome_distribution, prob_a


def test_davidson_probabilities():
    d, log_tie = 0.7, -0.4
    pa, pb, nu = np.exp(0.35), np.exp(-0.35), np.exp(log_tie)
    p_a, p_tie = prob_a(jnp.array(d), log_tie=log_tie)
    assert float(p_a) == pytest.approx(pa / (pa + pb + nu), rel=1e-5)
    assert float(p_tie) == pytest.approx(nu / (pa + pb + nu), rel=1e-5)
    lp = outcome_distribution(jnp.array([d, d, d]), log_tie=log_tie).log_prob(jnp.array([0, 1, 2]))
    np.testing.assert_allclose(np.exp(lp), [pb / (pa + pb + nu), pa / (pa + pb + nu), nu / (pa + pb + nu)], rtol=1e-5)


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


def test_log_sigmoid_and_its_derivatives_against_the_closed_form():
    """Value, first and second derivative against float64 closed forms, at 0, moderate and extreme x."""
    x = np.array([-80.0, -20.0, -3.0, -0.5, 0.0, 0.5, 3.0, 20.0, 80.0])
    sig = 1.0 / (1.0 + np.exp(-x))
    value = np.minimum(x, 0) - np.log1p(np.exp(-np.abs(x)))
    f = lambda t: log_sigmoid(t)  # noqa: E731
    np.testing.assert_allclose(np.asarray(f(jnp.asarray(x))), value, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(np.asarray(jax.vmap(jax.grad(f))(jnp.asarray(x))), 1.0 - sig, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(np.asarray(jax.vmap(jax.grad(jax.grad(f)))(jnp.asarray(x))), -sig * (1.0 - sig),
                               rtol=1e-4, atol=1e-7)


def test_bernoulli_logit_matches_numpyro_bernoulli():
    """Same log-probabilities and gradients as dist.Bernoulli(logits=...), for int and float outcomes."""
    import numpyro.distributions as dist

    d = jnp.asarray(np.random.default_rng(0).normal(scale=4.0, size=50), jnp.float32)
    y = jnp.asarray(np.random.default_rng(1).random(50) < 0.5, jnp.int32)
    for value in (y, y.astype(jnp.float32)):
        np.testing.assert_allclose(BernoulliLogit(d).log_prob(value), dist.Bernoulli(logits=d).log_prob(value),
                                   rtol=1e-5, atol=1e-6)
        g_ours = jax.grad(lambda t: BernoulliLogit(t).log_prob(value).sum())(d)  # noqa: B023
        g_ref = jax.grad(lambda t: dist.Bernoulli(logits=t).log_prob(value).sum())(d)  # noqa: B023
        np.testing.assert_allclose(g_ours, g_ref, rtol=1e-5, atol=1e-6)
    assert isinstance(outcome_distribution(d), BernoulliLogit)
