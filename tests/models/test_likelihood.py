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
