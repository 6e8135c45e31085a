"""The observation model shared by every family: link, position effect and Davidson ties.

For a comparison n with reward difference ``d_n = r(a_n) - r(b_n)`` (plus the position effect, which
the families add), the outcome code ``y_n`` (1 = a preferred, 0 = b preferred, 2 = tie) follows

* logit link, no ties:  P(y = 1) = sigma(d)
* probit link, no ties: P(y = 1) = Phi(d)
* Davidson ties (logit): with nu = exp(log_tie),

  .. math::

     P(a) = \\frac{e^{d/2}}{e^{d/2} + e^{-d/2} + \\nu},\\quad
     P(b) = \\frac{e^{-d/2}}{\\cdot},\\quad P(\\text{tie}) = \\frac{\\nu}{\\cdot},

  which is Davidson's (1970) model P(a) = pi_a / (pi_a + pi_b + nu sqrt(pi_a pi_b)) with
  log pi = r. Without ties it reduces to the Bradley-Terry model.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpyro
import numpyro.distributions as dist
from jax.scipy.special import log_ndtr

OBS_SITE = "y"
COMPARISON_PLATE = "comparison"


def outcome_distribution(d, *, link: str = "logit", log_tie=None):
    """Distribution of the outcome code given the reward difference ``d`` (any shape)."""
    if log_tie is not None:
        logits = jnp.stack([-0.5 * d, 0.5 * d, jnp.broadcast_to(log_tie, d.shape)], axis=-1)
        return dist.Categorical(logits=logits)
    if link == "probit":
        return dist.Bernoulli(logits=log_ndtr(d) - log_ndtr(-d))
    return dist.Bernoulli(logits=d)


def prob_a(d, *, link: str = "logit", log_tie=None):
    """P(a preferred) and P(tie) (``None`` without ties) for reward difference ``d``."""
    if log_tie is not None:
        logits = jnp.stack([-0.5 * d, 0.5 * d, jnp.broadcast_to(log_tie, d.shape)], axis=-1)
        p = jnp.exp(logits - jnp.max(logits, axis=-1, keepdims=True))
        p = p / p.sum(-1, keepdims=True)
        return p[..., 1], p[..., 2]
    if link == "probit":
        return jnp.exp(log_ndtr(d)), None
    return jnp.exp(-jnp.logaddexp(0.0, -d)), None


def observe(d, y, *, link: str = "logit", log_tie=None, predict: bool = False):
    """Record the likelihood of the outcome codes ``y`` inside the comparison plate.

    ``y`` may be ``None`` (the outcome is then sampled, for prior and posterior predictive draws).
    With ``predict=True`` the deterministic sites ``p_a`` (and ``p_tie``) are recorded as well.
    """
    if predict:
        p_a, p_tie = prob_a(d, link=link, log_tie=log_tie)
        numpyro.deterministic("p_a", p_a)
        if p_tie is not None:
            numpyro.deterministic("p_tie", p_tie)
    return numpyro.sample(OBS_SITE, outcome_distribution(d, link=link, log_tie=log_tie), obs=y)
