r"""The U-augmented likelihood: the fitted model with the binary confounder summed out per user."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpyro
import numpyro.distributions as dist
from jax.scipy.special import logsumexp
from numpyro import handlers

from bayespref.errors import ModelError
from bayespref.models.likelihood import OBS_SITE, Davidson, WinFraction, half_tie_values, outcome_distribution


def _shifted(fn, shift):
    """The outcome distribution with the reward difference moved by ``shift``."""
    if isinstance(fn, WinFraction):
        return WinFraction(fn.logits + shift)
    if isinstance(fn, dist.BernoulliLogits):
        return dist.Bernoulli(logits=fn.logits + shift)
    if isinstance(fn, Davidson):
        return Davidson(fn.d + shift, fn.log_tie)
    if isinstance(fn, dist.CategoricalLogits) and fn.logits.shape[-1] == 3:  # Davidson: (-d/2, d/2, log nu)
        return dist.Categorical(logits=fn.logits + jnp.stack([-shift / 2, shift / 2, jnp.zeros_like(shift)], -1))
    if isinstance(fn, dist.Normal):
        return dist.Normal(fn.loc + shift, fn.scale)
    raise ModelError(f"Cannot shift an outcome model of type {type(fn).__name__}; the sensitivity layer "
                     "supports Bradley-Terry (logit), Davidson ties, ties='half' and Gaussian outcomes.")


def _user_marginal(ll0, ll1, data, delta, n_users):
    """log sum_U P(U | e_u) p(y_u | U) per user, from per-comparison log-likelihoods under U = 0, 1."""
    L0 = jax.ops.segment_sum(ll0, data["user"], num_segments=n_users)
    L1 = jax.ops.segment_sum(ll1, data["user"], num_segments=n_users)
    eta = data["sens_logit_p"] + delta * data["sens_exposure"]
    return jnp.logaddexp(jax.nn.log_sigmoid(-eta) + L0, jax.nn.log_sigmoid(eta) + L1)


def _augmented(base, n_users, data, gamma=0.0, delta=0.0, batch=None):
    """The fitted model with U summed out per user (families that observe the site ``y``).

    The base model runs unchanged; its observation site is hidden from inference and read back
    (its distribution holds the reward differences), then replaced by the per-user mixture over U.
    """
    with handlers.block(hide_fn=lambda site: site["name"] == OBS_SITE), handlers.trace() as tr:
        base(data)
    site = tr[OBS_SITE]
    y = site["value"]
    ll0 = site["fn"].log_prob(y)
    ll1 = _shifted(site["fn"], gamma * data["sens_shift"]).log_prob(y)
    numpyro.factor("sensitivity_ll", _user_marginal(ll0, ll1, data, delta, n_users).sum())


def _augmented_types(spec, sizes, data, gamma=0.0, delta=0.0, batch=None):
    """A family with types (``has_types``) and U: the user's (type, U) pair is summed out jointly
    (2K states per user), from the spec's :meth:`~bayespref.models.LatentTypes.type_differences`."""

    parts = spec.type_differences(data, sizes)
    d, log_tie = parts["d"], parts["log_tie"]  # (N, K)
    d2 = jnp.concatenate([d, d + (gamma * data["sens_shift"])[:, None]], axis=-1)
    y = half_tie_values(data["y"]) if spec.half_ties else data["y"]
    ll = outcome_distribution(d2, link=spec.link, log_tie=log_tie, half_ties=spec.half_ties).log_prob(y[:, None])
    L = jax.ops.segment_sum(ll, data["user"], num_segments=sizes["n_users"])  # (U, 2K)
    eta = data["sens_logit_p"] + delta * data["sens_exposure"]
    lp = parts["log_prior"]
    lp2 = jnp.concatenate([lp + jax.nn.log_sigmoid(-eta)[:, None], lp + jax.nn.log_sigmoid(eta)[:, None]], -1)
    numpyro.factor("sensitivity_ll", logsumexp(lp2 + L, axis=-1).sum())
