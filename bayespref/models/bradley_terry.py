"""The pooled Bayesian Bradley-Terry model."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import ClassVar

import jax.numpy as jnp
import numpyro
import numpyro.distributions as dist

from bayespref.errors import ModelError
from bayespref.models import sites
from bayespref.models.base import ModelSpec, observation_plate, pad_leading, take
from bayespref.models.likelihood import observe
from bayespref.models.plackett_luce import is_rankings, item_rewards, observe_rankings
from bayespref.validate import OneOf


@dataclasses.dataclass(frozen=True)
class BradleyTerry(ModelSpec):
    r"""Pooled Bradley-Terry model: item worths and/or linear weights on option features.

    The reward of option i is :math:`r_i = \theta_i + x_i^\top w` and, for a comparison n in which
    option :math:`a_n` was shown first,

    .. math::

        \operatorname{logit} P(a_n \succ b_n) = r_{a_n} - r_{b_n} + \beta_{pos}

    (probit: :math:`\Phi` instead of the logistic; ties: Davidson's model, see
    :mod:`bayespref.models.likelihood`).

    Priors (defaults in brackets)::

        theta ~ ZeroSumNormal(worth_scale)        [2.0]   worths="fixed"
        theta_i = sd_worth * z_i, z_i ~ N(0, 1)            worths="random" (option random effect)
        sd_worth ~ HalfNormal(sd_worth_scale)     [1.0]
        w_f ~ N(0, weight_scale)                  [2.5]   (features on roughly unit scale)
        beta_pos ~ N(0, position_scale)           [1.0]
        log_tie ~ N(tie_loc, tie_scale)           [-1.0, 1.5]  Davidson nu = exp(log_tie)

    **Rankings.** Given a :class:`~bayespref.Rankings`, the rewards :math:`r_i` rank the shown items
    by the Plackett-Luce model (ties as in Turner et al. 2020; :mod:`bayespref.models.plackett_luce`):
    a pair is a ranking of two, with the same posterior. ``position`` and ``link="probit"`` are
    defined for pairs only; ``ties=True`` estimates one tie prevalence per tie size in the data.

    **Gauge.** Only differences of rewards are identified. With ``worths="fixed"`` the worths sum to
    zero (NumPyro's ``ZeroSumNormal``), so each worth is relative to the average option; use
    :meth:`Fit.worths(reference=...) <bayespref.Fit.worths>` for worths relative to a reference option.
    With ``worths="random"`` the zero-mean random-effect prior fixes the level.

    Parameters
    ----------
    worths : {"fixed", "random", False} or None
        Per-option worths. ``True`` means ``"fixed"``. None (default): ``"fixed"`` when no option
        features are used, none when they are: fixed per-option worths would absorb any per-option
        feature (the weights would then be identified by the prior alone); use ``"random"`` for a
        residual option effect beside the features.
    features : list of str, bool or None
        Option features to weight (None or True: all features of the data; False: none).
    position : bool
        Estimate an order effect ``position`` (advantage of the first-shown option ``a``).
    ties : bool or {"davidson", "half"}
        True/"davidson": Davidson ties (needs ``link="logit"``); "half": a tie counts as half a
        win for each option (BradleyTerry2's convention, no tie parameter).
    link : {"logit", "probit"}

    Posterior variables: ``worth`` (option), ``weight`` (feature), ``position``, ``log_tie``,
    ``sd_worth`` (random worths).

    Examples
    --------
    >>> import bayespref as bp
    >>> data = bp.load_dataset("baseball").comparisons()
    >>> fit = bp.fit(bp.BradleyTerry(position=True), data, seed=1)   # doctest: +SKIP
    """

    worths: str | bool | None = None
    features: Sequence[str] | bool | None = None
    position: bool = False
    ties: bool | str = False
    link: str = "logit"
    worth_scale: float = 2.0
    sd_worth_scale: float = 1.0
    weight_scale: float = 2.5
    position_scale: float = 1.0
    tie_loc: float = -1.0
    tie_scale: float = 1.5

    family: ClassVar[str] = "BradleyTerry"
    sensitivity: ClassVar[bool] = True
    shardable: ClassVar[bool] = True
    rules: ClassVar[dict] = {**ModelSpec.rules, "worths": OneOf(("fixed", "random", True, False), none=True)}

    def __post_init__(self):
        super().__post_init__()
        object.__setattr__(self, "worths", "fixed" if self.worths is True else self.worths)
        if isinstance(self.features, list):
            object.__setattr__(self, "features", tuple(self.features))

    def resolved_worths(self, n_features: int):
        """``worths`` with the default resolved: "fixed" without features, none with features."""
        if self.worths is None:
            return False if n_features else "fixed"
        return self.worths

    def has_random_effects(self, data) -> bool:
        return self.resolved_worths(len(self.feature_names(data))) == "random"

    def uses_worths(self, data) -> bool:
        return bool(self.resolved_worths(len(self.feature_names(data))))

    def check(self, data) -> None:
        super().check(data)
        if self.worths is False and not self.feature_names(data):
            raise ModelError(
                "BradleyTerry(worths=False) needs option features, but none are used. Pass features to "
                "Comparisons.from_frame(features=...) or use worths='fixed'."
            )

    def shard_arrays(self, data, arrays, n_shards):
        """The comparisons ordered by user (a user's comparisons on one device), as ``a``, ``b``,
        ``dx`` (:math:`x_a - x_b`), ``y`` and ``mask``, padded with masked rows to a multiple of
        ``n_shards`` and split over that many devices. Pairs only."""
        import numpy as np

        if data.obs_dim != "comparison":
            raise ModelError(f"devices={n_shards}: BradleyTerry splits pairwise comparisons over devices; fit "
                             "rankings with devices=None.")
        order = np.argsort(np.asarray(data.user), kind="stable")
        flat = {"a": np.asarray(arrays["a"])[order], "b": np.asarray(arrays["b"])[order],
                "dx": np.asarray(arrays["xa"] - arrays["xb"])[order], "y": np.asarray(arrays["y"])[order],
                "mask": np.ones(len(order), bool)}
        return {**arrays, "sharded": pad_leading(flat, n_shards)}, \
            ("sharded",)

    def model(self, data, *, n_options, n_users, n_features, n_covariates, predict=False, batch=None):
        reward = jnp.zeros(n_options)
        worths = self.resolved_worths(n_features)
        if worths == "fixed":
            reward = numpyro.sample(sites.WORTH, dist.ZeroSumNormal(self.worth_scale, event_shape=(n_options,)))
        elif worths == "random":
            sd = numpyro.sample("sd_worth", dist.HalfNormal(self.sd_worth_scale))
            with numpyro.plate("option", n_options):
                z = numpyro.sample("worth_z", dist.Normal(0.0, 1.0))
            reward = numpyro.deterministic(sites.WORTH, sd * z)
        weight = None
        if n_features:
            with numpyro.plate("feature", n_features):
                weight = numpyro.sample(sites.WEIGHT, dist.Normal(0.0, self.weight_scale))
        pos = numpyro.sample(sites.POSITION, dist.Normal(0.0, self.position_scale)) if self.position else 0.0
        log_tie = self.sample_log_tie(data)

        flat = data.get("sharded")
        if flat is not None and not predict and batch is None:  # split over devices (shard_arrays)
            d = reward[flat["a"]] - reward[flat["b"]] + pos
            if weight is not None:
                d = d + flat["dx"] @ weight
            with numpyro.plate("comparison", d.shape[0]), numpyro.handlers.mask(mask=flat["mask"]):
                observe(d, flat["y"], link=self.link, log_tie=log_tie, half_ties=self.half_ties)
            return

        with observation_plate(data, batch):
            d_ = take(data, batch)
            if is_rankings(d_):
                observe_rankings(item_rewards(reward, weight, d_), d_, log_delta=log_tie, predict=predict)
                return
            d = reward[d_["a"]] - reward[d_["b"]] + pos
            if weight is not None:
                d = d + (d_["xa"] - d_["xb"]) @ weight
            observe(d, d_["y"], link=self.link, log_tie=log_tie, predict=predict, half_ties=self.half_ties)

    def dims(self, sizes):
        return {sites.WORTH: ["option"], "worth_z": ["option"], sites.WEIGHT: ["feature"]}

    def summary_vars(self, sizes):
        out = []
        worths = self.resolved_worths(sizes["n_features"])
        if worths:
            out.append(sites.WORTH)
        if worths == "random":
            out.append("sd_worth")
        if sizes["n_features"]:
            out.append(sites.WEIGHT)
        if self.position:
            out.append(sites.POSITION)
        if self.ties in (True, "davidson"):
            out.append(sites.LOG_TIE)
        return out
