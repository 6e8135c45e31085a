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
* ties as half (``ties="half"``, BradleyTerry2's convention): a tie counts as half a win for each
  option, log-likelihood 0.5 log P(a) + 0.5 log P(b) (no tie parameter; replicated outcomes are
  never ties).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpyro
import numpyro.distributions as dist
from jax.scipy.special import log_ndtr

from bayespref.models import sites

OBS_SITE = sites.OBS
COMPARISON_PLATE = "comparison"


class WinFraction(dist.Distribution):
    """Outcome as a win fraction in [0, 1] (a tie = 0.5): log p = v log P(a) + (1 - v) log P(b).

    Used for ``ties="half"``; samples are 0/1 draws (a replicated judgement is never a tie).
    """

    arg_constraints = {"logits": dist.constraints.real}
    support = dist.constraints.unit_interval

    def __init__(self, logits, *, validate_args=None):
        self.logits = logits
        super().__init__(batch_shape=jnp.shape(logits), validate_args=validate_args)

    def sample(self, key, sample_shape=()):
        return dist.Bernoulli(logits=self.logits).sample(key, sample_shape).astype(jnp.float32)

    def log_prob(self, value):
        return value * jax.nn.log_sigmoid(self.logits) + (1.0 - value) * jax.nn.log_sigmoid(-self.logits)


class Davidson(dist.Distribution):
    r"""Davidson's tie model as a distribution over the outcome codes 0 (b), 1 (a) and 2 (tie).

    The same density as ``Categorical(logits=[-d/2, d/2, log_tie])``, written elementwise,

    .. math::

        \log p(y) = s_y - \tfrac{|d|}{2} - \log\big(1 + e^{-|d|} + \nu e^{-|d|/2}\big),
        \qquad s_0 = -\tfrac d2,\ s_1 = \tfrac d2,\ s_2 = \log\nu,

    so its gradient needs no gather or scatter over the three logits (on 15k comparisons the
    categorical form cost about as much as the rest of the hierarchical model).
    """

    arg_constraints = {"d": dist.constraints.real, "log_tie": dist.constraints.real}
    support = dist.constraints.integer_interval(0, 2)

    def __init__(self, d, log_tie, *, validate_args=None):
        self.d, self.log_tie = jnp.broadcast_arrays(d, log_tie)
        super().__init__(batch_shape=jnp.shape(self.d), validate_args=validate_args)

    def sample(self, key, sample_shape=()):
        logits = jnp.stack([-0.5 * self.d, 0.5 * self.d, self.log_tie], axis=-1)
        return dist.Categorical(logits=logits).sample(key, sample_shape)

    def log_prob(self, value):
        half = 0.5 * jnp.abs(self.d)
        log_z = half + jnp.log1p(jnp.exp(-2.0 * half) + jnp.exp(self.log_tie - half))
        chosen = jnp.where(value == 2, self.log_tie, jnp.where(value == 1, 0.5 * self.d, -0.5 * self.d))
        return chosen - log_z


def outcome_distribution(d, *, link: str = "logit", log_tie=None, half_ties: bool = False):
    """Distribution of the outcome code given the reward difference ``d`` (any shape)."""
    if half_ties:
        return WinFraction(log_ndtr(d) - log_ndtr(-d) if link == "probit" else d)
    if log_tie is not None:
        return Davidson(d, log_tie)
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


def half_tie_values(y):
    """Outcome codes as win fractions for ``ties="half"``: 1, 0 and 0.5 for a tie (code 2)."""
    return None if y is None else jnp.where(y == 2, 0.5, y).astype(jnp.float32)


def observe(d, y, *, link: str = "logit", log_tie=None, predict: bool = False, half_ties: bool = False):
    """Record the likelihood of the outcome codes ``y`` inside the comparison plate.

    ``y`` may be ``None`` (the outcome is then sampled, for prior and posterior predictive draws).
    With ``predict=True`` the deterministic sites ``p_a`` (and ``p_tie``) are recorded as well.
    """
    if predict:
        p_a, p_tie = prob_a(d, link=link, log_tie=log_tie)
        numpyro.deterministic(sites.P_A, p_a)
        if p_tie is not None:
            numpyro.deterministic(sites.P_TIE, p_tie)
    if half_ties:
        y = half_tie_values(y)
    return numpyro.sample(OBS_SITE, outcome_distribution(d, link=link, log_tie=log_tie, half_ties=half_ties), obs=y)
