r"""The Plackett-Luce observation model of rankings, with ties as in Turner et al. (2020).

Every family observes rankings through this module: the family computes the reward
:math:`r_{n,j}` of each item j shown in ranking n (worths, feature weights, user or type effects,
exactly as for a pairwise comparison), and :func:`observe_rankings` records the likelihood.

The likelihood
--------------
A ranking orders its shown items into tie groups :math:`C_0 \succ C_1 \succ \dots` (``level``:
0 = the best group); items shown but not ranked (the rest of a top-k ranking, the unchosen items of a
choice set) are never chosen but stay in every choice set. At stage s the chooser picks the group
:math:`C_s` out of the items not yet chosen, :math:`A_s = \{j : \text{level}_j \ge s\}`, with
probability

.. math::

    P(C_s \mid A_s) = \frac{\delta_{|C_s|}\, \exp\big(\tfrac{1}{|C_s|}\sum_{j \in C_s} r_j\big)}
        {\sum_{d=1}^{D} \delta_d \sum_{T \subseteq A_s,\, |T| = d} \exp\big(\tfrac{1}{d}\sum_{j\in T} r_j\big)},
    \qquad \delta_1 = 1,

the model of the PlackettLuce R package (Turner, van Etten, Firth and Kosmidis 2020, *Behavior
Research Methods* 52): a tie of d items is chosen like one item whose worth is the geometric mean of
theirs, weighted by the tie prevalence :math:`\delta_d` (``log_tie``; D is the largest tie in the data).
The inner sum over subsets is the elementary symmetric polynomial :math:`e_d` of
:math:`\exp(r_j / d)` over :math:`A_s`, computed in log space by the usual recursion over items.
The log-likelihood of a ranking is the sum over its stages.

* Without ties (D = 1) each stage is a softmax over the remaining items: the Plackett-Luce model.
* A pairwise comparison is a ranking of two: :math:`P(a \succ b) = \sigma(r_a - r_b)` and, with ties,
  :math:`P(a \sim b) = \delta_2 \sqrt{\alpha_a \alpha_b} / (\alpha_a + \alpha_b + \delta_2
  \sqrt{\alpha_a\alpha_b})`, Davidson's (1970) model with :math:`\nu = \delta_2`: pairwise data as
  rankings give the Bradley-Terry family's posterior.

Replicated rankings (posterior predictive draws) are drawn without ties by the Gumbel-max trick:
the order of :math:`r_j + G_j`, :math:`G_j \sim \text{Gumbel}(0, 1)`, is a Plackett-Luce ranking.
Each replicate ranks as many items as the observed ranking did (a top-k ranking gives a top-k
replicate); the others stay unranked.

The arrays
----------
``items`` (R, K) option indices (padding slots hold 0), ``shown`` (R, K) True for real slots,
``level`` (R, K) the outcome (tie-group rank; :data:`UNRANKED` for shown-but-unranked items; -1 in
padding), ``n_ranked`` (R,) how many items each ranking ranks, ``tie_order`` (D - 1,) the tie sizes
2..D (its *shape* carries D into jitted code), ``xi`` (R, K, F) item features.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpyro
import numpyro.distributions as dist
from jax.scipy.special import logsumexp

from bayespref.data.rankings import UNRANKED
from bayespref.models import sites

RANKING_PLATE = "ranking"
#: "minus infinity" that keeps gradients finite (exp underflows to exactly 0)
_NEG = -1e30


def is_rankings(data) -> bool:
    """Whether the model arrays ``data`` hold rankings (a ``level`` outcome) rather than pairs."""
    return "level" in data


def ranking_data(data) -> bool:
    """Whether a data object (``Comparisons`` or ``Rankings``) holds rankings."""
    return getattr(data, "obs_dim", "comparison") == RANKING_PLATE


def _log_esp(logb, mask, degree: int):
    r"""log of the elementary symmetric polynomial :math:`e_d` of :math:`\exp(\text{logb})` over the
    masked entries of the last axis, for d = ``degree``: the recursion
    :math:`e_k \leftarrow e_k + b_j e_{k-1}` over the (few) item slots, in log space."""
    e = [jnp.zeros(logb.shape[:-1])] + [jnp.full(logb.shape[:-1], _NEG)] * degree
    for j in range(logb.shape[-1]):  # item slots of one ranking (static and small), not rankings
        lb = jnp.where(mask[..., j], logb[..., j], _NEG)
        for k in range(degree, 0, -1):
            e[k] = jnp.logaddexp(e[k], lb + e[k - 1])
    return e[degree]


def ranking_log_prob(reward, level, shown, log_delta=None):
    r"""Log-likelihood of each ranking (shape ``reward.shape[:-1]``).

    Parameters
    ----------
    reward : array (..., K)
        Reward of each item slot.
    level : int array (..., K)
        Tie-group rank of each slot (0 = best; :data:`UNRANKED`; -1 in padding).
    shown : bool array (..., K)
    log_delta : array (D - 1,) or None
        :math:`\log \delta_d` for d = 2..D (None: no ties).
    """
    K = reward.shape[-1]
    stage = jnp.arange(K)
    lev = level[..., None, :]                                     # (..., 1, K) against stages (S, 1)
    remaining = (lev >= stage[:, None]) & shown[..., None, :]     # (..., S, K)
    chosen = lev == stage[:, None]
    shape = jnp.broadcast_shapes(remaining.shape, reward[..., None, :].shape)
    remaining, chosen = jnp.broadcast_to(remaining, shape), jnp.broadcast_to(chosen, shape)
    count = chosen.sum(-1)                                        # (..., S)
    r = jnp.broadcast_to(reward[..., None, :], shape)
    num = jnp.sum(jnp.where(chosen, r, 0.0), -1) / jnp.maximum(count, 1)
    log_z = logsumexp(jnp.where(remaining, r, _NEG), axis=-1)     # the d = 1 term
    if log_delta is not None:
        log_delta = jnp.atleast_1d(log_delta)
        terms = [log_z] + [log_delta[d - 2] + _log_esp(r / d, remaining, d)
                           for d in range(2, log_delta.shape[0] + 2)]
        log_z = logsumexp(jnp.stack(terms, -1), axis=-1)
        ld = jnp.concatenate([jnp.zeros(1), log_delta])
        num = num + ld[jnp.clip(count - 1, 0, ld.shape[0] - 1)]
    return jnp.sum(jnp.where(count > 0, num - log_z, 0.0), -1)


class PlackettLuce(dist.Distribution):
    r"""Rankings of the shown items (event: the ``level`` of each item slot), Plackett-Luce with
    Turner et al.'s ties (module docstring).

    Parameters
    ----------
    reward : array (..., K)
    shown : bool array (..., K)
    n_ranked : int array (...,)
        Items ranked by each observed ranking (replicates rank as many).
    log_delta : array (D - 1,) or None
    """

    arg_constraints = {"reward": dist.constraints.real_vector}
    support = dist.constraints.integer_interval(-1, UNRANKED)

    def __init__(self, reward, shown, n_ranked, log_delta=None, *, validate_args=None):
        self.reward, self.shown, self.n_ranked, self.log_delta = reward, shown, n_ranked, log_delta
        super().__init__(batch_shape=jnp.shape(reward)[:-1], event_shape=jnp.shape(reward)[-1:],
                         validate_args=validate_args)

    def log_prob(self, value):
        return ranking_log_prob(self.reward, value, self.shown, self.log_delta)

    def sample(self, key, sample_shape=()):
        shape = sample_shape + self.batch_shape + self.event_shape
        g = jnp.where(self.shown, self.reward + jax.random.gumbel(key, shape), -jnp.inf)
        place = jnp.argsort(jnp.argsort(-g, axis=-1), axis=-1)    # 0 = chosen first
        level = jnp.where(place < self.n_ranked[..., None], place, UNRANKED)
        return jnp.where(self.shown, level, -1).astype(jnp.int32)


def first_choice_probs(reward, shown):
    """P(each shown item is chosen first) without ties: a softmax over the shown items (..., K)."""
    return jax.nn.softmax(jnp.where(shown, reward, -jnp.inf), axis=-1)


def item_rewards(worth, weight, data):
    r"""Reward of every item slot, (R, K): :math:`\theta_{n, i_{nj}} + x_{nj}^\top w_n`.

    ``worth`` is (O,) or per ranking (R, O); ``weight`` is (F,), per ranking (R, F) or None.
    """
    items = data["items"]
    if worth.ndim == 2:
        r = jnp.take_along_axis(worth, items, axis=1)
    else:
        r = worth[items]
    if weight is not None and data["xi"].shape[-1]:
        r = r + (jnp.einsum("rkf,rf->rk", data["xi"], weight) if weight.ndim == 2 else data["xi"] @ weight)
    return r


def sample_log_delta(spec, data):
    r"""The tie prevalences :math:`\log\delta_d`, d = 2..D, at the site ``log_tie`` (a scalar when D =
    2, so that pairwise data as rankings share the Bradley-Terry family's site; dim ``tie_order``
    otherwise), or None when the spec has no ties or the data no tied groups."""
    if getattr(spec, "ties", False) not in (True, "davidson") or data["tie_order"].shape[0] == 0:
        return None
    prior = dist.Normal(spec.tie_loc, spec.tie_scale)
    n = data["tie_order"].shape[0]
    if n == 1:
        return numpyro.sample(sites.LOG_TIE, prior)
    with numpyro.plate("tie_order", n):
        return numpyro.sample(sites.LOG_TIE, prior)


def observe_rankings(reward, data, *, log_delta=None, predict: bool = False):
    """Record the rankings' likelihood at ``sites.OBS`` (inside the ranking plate, which the caller
    opens); ``data["level"]`` may be None (replicates are sampled). With ``predict=True`` the first-choice
    probabilities are recorded as ``p_first`` (ranking, slot)."""
    if predict:
        numpyro.deterministic(sites.P_FIRST, first_choice_probs(reward, data["shown"]))
    return numpyro.sample(sites.OBS, PlackettLuce(reward, data["shown"], data["n_ranked"], log_delta),
                          obs=data["level"])
