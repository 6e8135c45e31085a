"""Latent user types: a finite mixture of Bradley-Terry models, one type per user, marginalised exactly."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpyro
import numpyro.distributions as dist
from jax.scipy.special import logsumexp

from bayespref.errors import ModelError
from bayespref.models import sites
from bayespref.models.base import SCALE, ModelSpec
from bayespref.models.likelihood import half_tie_values, outcome_distribution, prob_a
from bayespref.models.mixture import relabel
from bayespref.models.plackett_luce import PlackettLuce, first_choice_probs, is_rankings, ranking_log_prob
from bayespref.validate import FLAG, POSITIVE, Whole

TYPE_PLATE = "type"


@dataclasses.dataclass(frozen=True)
class LatentTypes(ModelSpec):
    r"""K latent user types; all judgements of a user share that user's type.

    Type k has worths :math:`\theta_k` and/or feature weights :math:`w_k`. User u belongs to type
    :math:`z_u` with

    .. math::

        P(z_u = k) = \pi_{uk} = \operatorname{softmax}_k(\alpha_k + c_u^\top \Gamma_{\cdot k})
        \quad\text{(with user covariates)}, \qquad \pi_u = \pi \sim \operatorname{Dirichlet}(e_0)
        \quad\text{(without)},

    and, given the type, the comparisons follow the Bradley-Terry model of :class:`BradleyTerry`
    (shared position effect and Davidson ties). The types are summed out exactly, per user:

    .. math::

        \log p(y_u) = \log \sum_k \pi_{uk} \prod_{n \in u} p(y_n \mid \theta_k, w_k),

    computed for all users at once (a segment sum of per-comparison log-likelihoods, then
    log-sum-exp over k), so NUTS sees only continuous parameters. The factor is recorded per user
    (site ``user_ll``), which makes ArviZ's LOO work per user, the exchangeable unit. Given a
    :class:`~bayespref.Rankings`, the per-ranking Plackett-Luce log-likelihoods
    (:mod:`bayespref.models.plackett_luce`) take the place of the per-comparison ones.

    With ``user_deviations=True`` each user also has a deviation :math:`\eta_u \sim N(0,
    \operatorname{diag}(\tau^2))` (non-centred) added to the worths/weights of every type.

    **Label switching.** The priors are exchangeable over types, so the labels are arbitrary; after
    sampling, :func:`bayespref.mixture.relabel` permutes the labels of every draw to match a
    reference (iterated until stable) and orders the types by size (type 0 the largest). See
    :func:`bayespref.mixture.separation` for the diagnostic of overlapping types.

    Priors (defaults in brackets)::

        theta_k ~ ZeroSumNormal(worth_scale)     [2.0]
        w_k ~ N(0, weight_scale)                 [2.5]
        pi ~ Dirichlet(concentration)            [1.0]   no covariates; 0.05 = overfitted/sparse mixture
        alpha_k ~ N(0, 1), Gamma ~ N(0, membership_scale)   [1.0]   with covariates
        tau ~ HalfNormal(sd_scale)               [1.0]   user deviations
        beta_pos ~ N(0, position_scale), log_tie ~ N(tie_loc, tie_scale)

    Parameters
    ----------
    n_types : int
        K.
    worths : bool or None
        Type-specific worths (None: only when no features are used).
    features, covariates : list of str, bool or None
        Features of the options (type-specific weights) and user covariates of the membership model
        (None: all in the data; False: none).
    concentration : float
        Dirichlet concentration of the type shares (no covariates). Small values (0.05) empty
        unneeded types.
    user_deviations : bool
        Add user-level deviations inside a type.

    Posterior variables: ``worth`` (type, option), ``weight`` (type, feature), ``type_share`` (type)
    or ``type_intercept`` (type) and ``type_coef`` (covariate, type), ``sd_worth``/``sd_weight``,
    ``z`` (user, effect) with deviations, ``position``, ``log_tie``. Per-user membership
    probabilities: :meth:`Fit.membership() <bayespref.Fit.membership>`.
    """

    n_types: int = 2
    worths: bool | None = None
    features: Sequence[str] | bool | None = None
    covariates: Sequence[str] | bool | None = None
    concentration: float = 1.0
    user_deviations: bool = False
    position: bool = False
    ties: bool | str = False
    link: str = "logit"
    worth_scale: float = 2.0
    weight_scale: float = 2.5
    membership_scale: float = 1.0
    sd_scale: float = 1.0
    position_scale: float = 1.0
    tie_loc: float = -1.0
    tie_scale: float = 1.5

    family: ClassVar[str] = "LatentTypes"
    has_types: ClassVar[bool] = True
    group_effect_methods: ClassVar[tuple[str, ...]] = ("users",)
    covariate_effects: ClassVar[bool] = True
    sensitivity: ClassVar[bool] = True
    rules: ClassVar[dict] = {**ModelSpec.rules,
                             "n_types": Whole(1, 7, note="labels are matched over all permutations of the types"),
                             "concentration": POSITIVE, "membership_scale": SCALE, "user_deviations": FLAG}

    def __post_init__(self):
        super().__post_init__()
        for name in ("features", "covariates"):
            v = getattr(self, name)
            if isinstance(v, str):
                object.__setattr__(self, name, (v,))
            elif isinstance(v, list):
                object.__setattr__(self, name, tuple(v))

    def resolved_worths(self, n_features: int) -> bool:
        return (not n_features) if self.worths is None else bool(self.worths)

    def uses_worths(self, data) -> bool:
        return self.resolved_worths(len(self.feature_names(data)))

    def check(self, data) -> None:
        super().check(data)
        nf = len(self.feature_names(data))
        if self.worths is False and not nf:
            raise ModelError("LatentTypes(worths=False) needs option features; none are used.")
        if data.n_users < 2 and self.n_types > 1:
            raise ModelError("LatentTypes needs a `user` column: types are shared by all judgements of a user.")

    # -- the model -------------------------------------------------------------------------------
    def _type_effects(self, n_options, n_features):
        K = self.n_types
        worth = jnp.zeros((K, n_options))
        weight = jnp.zeros((K, n_features))
        if self.resolved_worths(n_features):
            with numpyro.plate(TYPE_PLATE, K, dim=-1):
                worth = numpyro.sample(sites.WORTH, dist.ZeroSumNormal(self.worth_scale, event_shape=(n_options,)))
        if n_features:
            with numpyro.plate(TYPE_PLATE, K, dim=-2), numpyro.plate("feature", n_features, dim=-1):
                weight = numpyro.sample(sites.WEIGHT, dist.Normal(0.0, self.weight_scale))
        return worth, weight

    def _log_prior(self, covariates, n_covariates):
        """log P(z = k) for each row of ``covariates`` (rows, K) and a function of new rows."""
        K = self.n_types
        if n_covariates:
            with numpyro.plate(TYPE_PLATE, K):
                alpha = numpyro.sample(sites.TYPE_INTERCEPT, dist.Normal(0.0, 1.0))
            with numpyro.plate("covariate", n_covariates, dim=-2), numpyro.plate(TYPE_PLATE, K, dim=-1):
                gamma = numpyro.sample(sites.TYPE_COEF, dist.Normal(0.0, self.membership_scale))
            return lambda c: jax.nn.log_softmax(alpha + c @ gamma, axis=-1)
        if K == 1:
            return lambda c: jnp.zeros((c.shape[0], 1))
        share = numpyro.sample(sites.TYPE_SHARE, dist.Dirichlet(jnp.full(K, self.concentration)))
        return lambda c: jnp.broadcast_to(jnp.log(share), (c.shape[0], K))

    def _deviations(self, n_users, n_options, n_features):
        if not self.user_deviations:
            return None
        blocks = []
        if self.resolved_worths(n_features):
            with numpyro.plate("option", n_options):
                blocks.append(numpyro.sample(sites.SD_WORTH, dist.HalfNormal(self.sd_scale)))
        if n_features:
            with numpyro.plate("feature", n_features):
                blocks.append(numpyro.sample(sites.SD_WEIGHT, dist.HalfNormal(self.sd_scale)))
        tau = jnp.concatenate(blocks)
        with numpyro.plate("user", n_users, dim=-2), numpyro.plate("effect", tau.shape[0], dim=-1):
            z = numpyro.sample(sites.Z, dist.Normal(0.0, 1.0))
        return z * tau

    @staticmethod
    def _item_rewards(arr, worth, weight, eta):
        """Rewards of every item slot of every ranking under every type: (R, K types, slots)."""
        items, xi = arr["items"], arr["xi"]
        r = jnp.transpose(worth[:, items], (1, 0, 2))  # (R, K, slots)
        if weight.shape[1]:
            r = r + jnp.einsum("rjf,kf->rkj", xi, weight)
        if eta is not None:
            known = arr["user"] >= 0
            e = jnp.where(known[:, None], eta[jnp.maximum(arr["user"], 0)], 0.0)
            n_w = eta.shape[1] - weight.shape[1]
            dev = jnp.take_along_axis(e[:, :n_w], items, axis=1) if n_w else jnp.zeros(items.shape)
            if weight.shape[1]:
                dev = dev + jnp.einsum("rjf,rf->rj", xi, e[:, n_w:])
            r = r + dev[:, None, :]
        return r

    @classmethod
    def _differences(cls, arr, worth, weight, pos, eta, n_options):
        """Reward differences of every comparison under every type: (N, K); for rankings the rewards
        of every item slot under every type, (R, K, slots)."""
        if is_rankings(arr):
            return cls._item_rewards(arr, worth, weight, eta)
        d = (worth[:, arr["a"]] - worth[:, arr["b"]]).T  # (N, K)
        if weight.shape[1]:
            d = d + (arr["xa"] - arr["xb"]) @ weight.T
        if eta is not None:
            known = arr["user"] >= 0
            e = jnp.where(known[:, None], eta[jnp.maximum(arr["user"], 0)], 0.0)
            n_w = eta.shape[1] - weight.shape[1]
            dev = jnp.zeros(arr["a"].shape[0])
            if n_w:
                rows = jnp.arange(arr["a"].shape[0])
                dev = e[rows, arr["a"]] - e[rows, arr["b"]]
            if weight.shape[1]:
                dev = dev + jnp.sum((arr["xa"] - arr["xb"]) * e[:, n_w:], -1)
            d = d + dev[:, None]
        return d + pos

    def _user_loglik(self, arr, d, log_tie, n_users):
        """Per-user, per-type log-likelihood (U, K) by a segment sum over comparisons (or rankings)."""
        if is_rankings(arr):
            ll = ranking_log_prob(d, arr["level"][:, None, :], arr["shown"][:, None, :], log_tie)
            return jax.ops.segment_sum(ll, arr["user"], num_segments=n_users)
        y = half_tie_values(arr["y"]) if self.half_ties else arr["y"]
        ll = outcome_distribution(d, link=self.link, log_tie=log_tie, half_ties=self.half_ties).log_prob(y[:, None])
        return jax.ops.segment_sum(ll, arr["user"], num_segments=n_users)

    def type_differences(self, data, sizes):
        r"""Sample the type-level sites and return what the per-user mixture over types is made of.

        For code that rebuilds the likelihood of this family with something added per comparison
        (e.g. :mod:`bayespref.sensitivity`, which adds a confounder's shift and sums it out with the
        type); call it inside a NumPyro model. It samples the same sites as :meth:`model`, in the
        same order (type worths/weights, membership model, ``position``, ``log_tie``), and only
        those: user deviations (``user_deviations=True``) are not part of it.

        Parameters
        ----------
        data : dict
            The model's arrays (:meth:`arrays`).
        sizes : dict
            :meth:`sizes` of the data (``n_options``, ``n_features``, ``n_covariates``).

        Returns
        -------
        dict
            ``d`` (N, K): the reward difference :math:`r_k(a_n) - r_k(b_n)` (plus the position
            effect) of every comparison under every type; ``log_prior`` (U, K): :math:`\log P(z_u = k)`
            of the users of ``data["covariates"]``; ``log_tie``: Davidson's log tie parameter or
            None. Per comparison and type the outcome then follows
            ``outcome_distribution(d, link=self.link, log_tie=log_tie, half_ties=self.half_ties)``.
        """
        n_options, n_features = sizes["n_options"], sizes["n_features"]
        worth, weight = self._type_effects(n_options, n_features)
        log_prior = self._log_prior(data["covariates"], sizes["n_covariates"])
        pos = numpyro.sample(sites.POSITION, dist.Normal(0.0, self.position_scale)) if self.position else 0.0
        log_tie = self.sample_log_tie(data)
        d = self._differences(data, worth, weight, pos, None, n_options)
        return {"d": d, "log_prior": log_prior(data["covariates"]), "log_tie": log_tie}

    def predict_arrays(self, train, new):
        """Query arrays plus the training judgements (``history``) that give each user's membership."""
        return {**self.arrays(new, with_outcome=False), "history": self.history_arrays(train)}

    def model(self, data, *, n_options, n_users, n_features, n_covariates, predict=False, batch=None):
        if batch is not None:
            raise ModelError("LatentTypes does not support minibatches over comparisons (types are per user).")
        worth, weight = self._type_effects(n_options, n_features)
        log_prior = self._log_prior(data["covariates"], n_covariates)
        pos = numpyro.sample(sites.POSITION, dist.Normal(0.0, self.position_scale)) if self.position else 0.0
        log_tie = self.sample_log_tie(data)
        eta = self._deviations(n_users, n_options, n_features)

        if not predict:
            d = self._differences(data, worth, weight, pos, eta, n_options)
            L = self._user_loglik(data, d, log_tie, n_users)
            with numpyro.plate("user", n_users):
                numpyro.factor(sites.USER_LL, logsumexp(log_prior(data["covariates"]) + L, axis=-1))
            return

        # prediction: membership of the history's users, then mixture predictions for the queries
        hist = data["history"]
        h_eta = None if eta is None else jnp.where((hist["train_user"] >= 0)[:, None],
                                                   eta[jnp.maximum(hist["train_user"], 0)], 0.0)
        dh = self._differences(hist, worth, weight, pos, h_eta, n_options)
        L = self._user_loglik(hist, dh, log_tie, hist["covariates"].shape[0])
        joint = log_prior(hist["covariates"]) + L
        post = jax.nn.softmax(joint, axis=-1)  # (U_h, K)
        numpyro.deterministic(sites.MEMBERSHIP, post)
        numpyro.deterministic(sites.USER_LOG_LIK, logsumexp(joint, axis=-1))

        d = self._differences(data, worth, weight, pos, h_eta, n_options)
        u = data["user"]
        w = jnp.where((u >= 0)[:, None], post[jnp.maximum(u, 0)], jnp.exp(log_prior(data["ucov"])))
        if is_rankings(data):
            shown = data["shown"][:, None, :]
            numpyro.deterministic(sites.P_FIRST, jnp.einsum("rk,rkj->rj", w, first_choice_probs(d, shown)))
            with numpyro.plate("ranking", d.shape[0]):
                k = numpyro.sample(sites.TYPE_DRAW, dist.Categorical(probs=w))
                r_k = jnp.take_along_axis(d, k[:, None, None], axis=1)[:, 0]
                numpyro.sample(sites.OBS, PlackettLuce(r_k, data["shown"], data["n_ranked"], log_tie))
            return
        p_a_k, p_tie_k = prob_a(d, link=self.link, log_tie=log_tie)
        numpyro.deterministic(sites.P_A, jnp.sum(w * p_a_k, -1))
        if p_tie_k is not None:
            numpyro.deterministic(sites.P_TIE, jnp.sum(w * p_tie_k, -1))
        with numpyro.plate("comparison", d.shape[0]):
            k = numpyro.sample(sites.TYPE_DRAW, dist.Categorical(probs=w))
            d_k = jnp.take_along_axis(d, k[:, None], axis=1)[:, 0]
            numpyro.sample(sites.OBS, outcome_distribution(d_k, link=self.link, log_tie=log_tie))

    # -- arrays for prediction -------------------------------------------------------------------
    def history_arrays(self, data, train_users=None):
        """The judgements whose users' membership is inferred, in the form ``model(predict=True)`` reads."""
        import numpy as np

        arr = self.arrays(data)
        if arr["level" if is_rankings(arr) else "y"] is None:
            raise ModelError("Membership needs judgements with outcomes.")
        n_users = int(data.n_users)
        tu = np.arange(n_users) if train_users is None else np.asarray(train_users)
        if is_rankings(arr):
            keys = ("items", "level", "shown", "n_ranked", "xi", "tie_order", "user", "covariates")
            return {k: arr[k] for k in keys} | {"train_user": jnp.asarray(tu, dtype=jnp.int32)}
        return {k: arr[k] for k in ("a", "b", "user", "y", "xa", "xb", "covariates")} | {
            "train_user": jnp.asarray(tu, dtype=jnp.int32)}

    def effect_blocks(self, n_options, n_features):
        if not self.user_deviations:
            return []
        return ([(sites.WORTH, n_options)] if self.resolved_worths(n_features) else []) + (
            [(sites.WEIGHT, n_features)] if n_features else [])

    def user_effect_sites(self, sizes):
        """None recorded: a user's effects are its membership-weighted type effects (plus ``z``)."""
        return {}

    def sensitivity_support(self):
        if self.user_deviations:
            return "Sensitivity analysis for LatentTypes supports user_deviations=False only."
        return None

    def coords(self, data):
        import numpy as np

        return {**super().coords(data), "type": np.arange(self.n_types)}

    def has_random_effects(self, data) -> bool:
        return bool(self.user_deviations)

    def multimodal(self) -> bool:
        return self.n_types > 1

    def postprocess(self, idata, data):
        return relabel(idata)

    def dims(self, sizes):
        return {sites.WORTH: ["type", "option"], sites.WEIGHT: ["type", "feature"], sites.TYPE_SHARE: ["type"],
                sites.TYPE_INTERCEPT: ["type"], sites.TYPE_COEF: ["covariate", "type"], sites.SD_WORTH: ["option"],
                sites.SD_WEIGHT: ["feature"], sites.Z: ["user", "effect"], sites.USER_LL: ["user"]}

    def summary_vars(self, sizes):
        out = []
        if self.resolved_worths(sizes["n_features"]):
            out.append(sites.WORTH)
        if sizes["n_features"]:
            out.append(sites.WEIGHT)
        if sizes["n_covariates"]:
            out += [sites.TYPE_INTERCEPT, sites.TYPE_COEF]
        elif self.n_types > 1:
            out.append(sites.TYPE_SHARE)
        if self.user_deviations:
            out += [v for v, on in ((sites.SD_WORTH, self.resolved_worths(sizes["n_features"])),
                                    (sites.SD_WEIGHT, sizes["n_features"])) if on]
        if self.position:
            out.append(sites.POSITION)
        if self.ties in (True, "davidson"):
            out.append(sites.LOG_TIE)
        return out
