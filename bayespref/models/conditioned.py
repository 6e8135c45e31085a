"""Objective- or covariate-conditioned rewards: shared features, one partially pooled head per group."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Sequence
from typing import ClassVar

import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist

from bayespref.errors import ModelError
from bayespref.models import sites
from bayespref.models.balance import balance_weights, erase
from bayespref.models.base import SCALE, ModelSpec, comparison_covariates, observation_plate, take
from bayespref.models.likelihood import observe
from bayespref.models.plackett_luce import is_rankings, item_rewards, observe_rankings
from bayespref.validate import NON_NEGATIVE, OneOf, Real

POOLING = ("partial", "none")
HEAD_PRIORS = ("feature", "sparse")
BALANCE = (None, False, True, "erase", "weights")


@dataclasses.dataclass(frozen=True)
class Conditioned(ModelSpec):
    r"""Rewards conditional on an observed user covariate C (e.g. the annotator's objective).

    Every level k of the categorical user covariate ``condition`` has its own head: a weight
    vector on the shared features. For comparison n by a user with :math:`C = k_n`,

    .. math::

        w_k = \mu + \tau \odot z_k,\quad z_k \sim N(0, I),\qquad
        \operatorname{logit} P(a_n \succ b_n) = (x_{a_n} - x_{b_n})^\top w_{k_n} + \beta_{pos}

    (``pooling="partial"``: heads partially pooled towards the shared weights :math:`\mu`, with a
    per-feature head SD :math:`\tau`). This is the Bayesian analogue of a shared encoder with one
    head per objective: the features are the shared representation, a feature the groups agree on
    gets a small :math:`\tau_f` and is learned from every group's data, and a feature they weigh
    differently keeps group-specific weights. ``pooling="none"`` gives independent heads
    :math:`w_k \sim N(0, \text{weight\_scale}^2)`.

    **Head SDs** (``head_prior``). ``"feature"``: :math:`\tau_f \sim \text{HalfNormal}(\text{head\_scale})`
    independently per feature; with two heads each :math:`\tau_f` is learned from one difference
    only, so the prior on a head's deviation stays wide and little is borrowed. ``"sparse"``:
    a global-local (horseshoe) prior, :math:`\tau_f = \tau_0 \lambda_f`,
    :math:`\tau_0 \sim \text{HalfNormal}(1)`, :math:`\lambda_f \sim \text{HalfCauchy}(1)`:
    the overall size of the head differences :math:`\tau_0` is learned across all features, so
    when the groups agree on most features their heads are pulled together there, while the heavy
    tail of :math:`\lambda_f` lets the few features on which they conflict keep separate weights.
    This is the prior that matches "objectives that agree on most of a shared representation and
    conflict on a few directions" (see :func:`bayespref.simulate.confounded_shared`).

    Priors (defaults in brackets)::

        mu_f ~ N(0, weight_scale)         [2.5]  shared weights (``weight``)
        tau_f ~ HalfNormal(head_scale)    [2.5]  head SDs (``sd_head``; head_prior="feature")
        tau_0 ~ HalfNormal(1), lambda_f ~ HalfCauchy(1), tau_f = tau_0 lambda_f
                                                 (``sd_head_global``, ``sd_head_local``; "sparse")
        beta_pos ~ N(0, position_scale)   [1.0]

    Related configurations of the other families: **pooled** (ignore C) is
    ``BradleyTerry(worths=False)``; **base** (C as one more input that may interact with every
    feature, no pooling learned) is ``Hierarchical(varying="features", covariates=[C],
    random_effects=False, group_scale=2.5)``: :math:`w_c = \mu + B^\top c` (C alone shifts both
    rewards of a comparison equally and cancels).

    **Balanced features** (``balance=True`` or ``"erase"``): before fitting, the features are
    replaced by :math:`x - P(x - \bar x)`, the linear concept erasure of C
    (:func:`bayespref.causal.erase`): no linear function of the erased features predicts C in the
    training data. The erasure is estimated on the training data and applied unchanged to new
    comparisons. It is the analogue of the paper's adversarial balancing, restricted to linear
    information; see :func:`bayespref.causal.erase` for what it can and cannot remove (it cannot
    remove information about C in *which* features vary, the spread :math:`|x_a - x_b|`).

    **Balancing weights** (``balance="weights"``): each training comparison's log-likelihood is
    multiplied by a stabilised propensity weight (:func:`bayespref.causal.balance_weights`),

    .. math::

        \log p_w(\theta \mid y) = \log p(\theta)
            + \sum_n w_n \log P(y_n \mid x_n, C = c_n, \theta) + \text{const},\qquad
        w_n \propto \frac{\hat P(C = c_n)}{\hat P(C = c_n \mid f_n)},

    with :math:`f_n` the levels :math:`(x_a + x_b)/2` and the spreads :math:`|x_a - x_b|` of the
    comparison's features, the propensity an L2 logistic regression fitted on the training data,
    the raw weights truncated at their ``weight_trim`` quantile and normalised to mean 1 within each
    level of C (so the total weight is the number of comparisons). The weighted comparisons of each
    level have (approximately) the C-independent feature distribution of the pooled data: the fit
    targets the **balanced population** in which prompts are assigned to users regardless of C,
    and a comparison rare for its level (an inconsistent prompt type) counts more. What this does to
    the posterior: a weighted (power) likelihood is **not a proper posterior** -- the weights act
    like pseudo-counts, so the posterior is narrower on what the upweighted comparisons inform and
    wider on the rest than the information in the data warrants, and its intervals are **not
    calibrated**; read it as a regularised estimator of the balanced-population reward. The weights
    are used in fitting only: predictions and the stored pointwise log-likelihood of the training
    data are unweighted. With no inconsistent comparisons (C a function of the features, rho = 1)
    every propensity is near 1 and there is nothing to upweight; the fit is then the unweighted
    one. The weights and their diagnostics (effective sample size, largest weight per level, balance
    of each input before and after) are :meth:`balance_weights` ``(train)``.

    **New users and levels.** A new user of a known level uses that level's head; a level unseen
    in training (or a user without C) gets :math:`\mu + \tau \odot z` with a fresh z per posterior
    draw (partial pooling) or a prior draw (no pooling).

    Parameters
    ----------
    condition : str
        User covariate column holding C (passed to ``Comparisons.from_frame(user_covariates=...)``).
    features : list of str, bool or None
        Features to use (None: all).
    pooling : {"partial", "none"}
    head_prior : {"feature", "sparse"}
        Prior of the head SDs (partial pooling only; see above).
    balance : {False, True, "erase", "weights"}
        ``True``/``"erase"``: erase the linear information about C from the features before
        fitting; ``"weights"``: weight the training comparisons by stabilised propensity weights
        (see above).
    weight_trim : float or None
        ``balance="weights"``: quantile at which the raw weights are truncated (default 0.99; None:
        none).
    propensity_ridge : float
        ``balance="weights"``: L2 penalty of the propensity model's standardised slopes.
    position, ties, link : as in :class:`~bayespref.BradleyTerry`.

    Posterior variables: ``weight`` (feature), ``sd_head`` (feature), ``head_weight`` (head,
    feature), ``position``, ``log_tie``.

    Examples
    --------
    >>> import bayespref as bp
    >>> sim = bp.simulate.confounded_objective(rho=0.8, n_users=20, comparisons_per_user=20, n_test=50)
    >>> parts = sim.split()
    >>> fit = bp.fit(bp.Conditioned("objective"), parts["train"], method="svi")   # doctest: +SKIP
    """

    condition: str | None = None
    features: Sequence[str] | bool | None = None
    pooling: str = "partial"
    head_prior: str = "feature"
    balance: bool | str = False
    position: bool = False
    ties: bool | str = False
    link: str = "logit"
    weight_scale: float = 2.5
    head_scale: float = 2.5
    position_scale: float = 1.0
    tie_loc: float = -1.0
    tie_scale: float = 1.5
    weight_trim: float | None = 0.99
    propensity_ridge: float = 1.0

    family: ClassVar[str] = "Conditioned"
    rules: ClassVar[dict] = {
        **ModelSpec.rules, "pooling": OneOf(POOLING), "head_prior": OneOf(HEAD_PRIORS),
        "balance": OneOf(BALANCE, note="True/'erase': linear erasure of C from the features; 'weights': "
                         "propensity weights of the training comparisons"),
        "head_scale": SCALE, "weight_trim": Real(0, 1, open_low=True, none=True, note="a quantile"),
        "propensity_ridge": NON_NEGATIVE,
    }

    def __post_init__(self):
        if not isinstance(self.condition, str):
            raise ModelError("Conditioned needs condition=<name of the user covariate holding C>, "
                             f"got {self.condition!r}.")
        super().__post_init__()
        if isinstance(self.features, (list, str)):
            object.__setattr__(self, "features", tuple([self.features] if isinstance(self.features, str)
                                                        else self.features))

    @property
    def balance_mode(self) -> str | None:
        """``"erase"``, ``"weights"`` or None (no balancing)."""
        if self.balance is True or self.balance == "erase":
            return "erase"
        return "weights" if self.balance == "weights" else None

    def balance_weights(self, train):
        """The propensity weights of the training comparisons ``train`` with their diagnostics
        (:class:`bayespref.causal.BalanceWeights`: ``.weights``, ``.summary()``,
        ``.balance_table()``), as used by ``balance="weights"``."""
        self._check_condition(train)
        return balance_weights(train, self.condition, features=self.feature_names(train), trim=self.weight_trim,
                               ridge=self.propensity_ridge)

    def uses_worths(self, data) -> bool:
        return False

    def has_random_effects(self, data) -> bool:
        return self.pooling == "partial"  # head SDs: a funnel when the heads agree

    def covariate_names(self, data) -> tuple[str, ...]:
        return ()  # C enters through the heads, not as a covariate effect

    # -- the heads -------------------------------------------------------------------------------
    def levels(self, data) -> np.ndarray:
        """The levels of C in the training data (sorted): the heads."""
        self._check_condition(data)
        return np.asarray(sorted(data.user_table[self.condition].dropna().unique()), dtype=object)

    def _check_condition(self, data):
        table = data.user_table
        if table is None or self.condition not in table.columns:
            have = [] if table is None else list(table.columns)
            raise ModelError(
                f"Conditioned(condition={self.condition!r}): the data have no user covariate "
                f"{self.condition!r} (user covariates: {have or 'none'}). Pass it with "
                f"Comparisons.from_frame(..., user={{user column}}, user_covariates=[{self.condition!r}]).")

    def _design_columns(self, data):
        names = list(data.covariate_names)
        return [i for i, c in enumerate(names) if c == self.condition or c.startswith(f"{self.condition}[")]

    def head_index(self, train, data) -> np.ndarray:
        """Head of each comparison of ``data`` (levels of ``train``); -1 for an unseen level."""
        cols = self._design_columns(train)
        levels = self.levels(train)
        lev_user = train.user_table[self.condition].to_numpy()
        rows = np.asarray(train.covariates, float)[:, cols]
        # the design row of each level (as coded by Comparisons), from the users who have it
        codes = np.stack([rows[np.flatnonzero(lev_user == lv)[0]] for lv in levels])
        ccov = comparison_covariates(data)[:, cols]
        match = np.all(np.isclose(ccov[:, None, :], codes[None, :, :]), -1)
        return np.where(match.any(1), match.argmax(1), -1).astype(np.int32)

    # -- data -------------------------------------------------------------------------------------
    def check(self, data) -> None:
        super().check(data)
        self._check_condition(data)
        if self.balance_mode is not None and data.obs_dim != "comparison":
            raise ModelError(f"balance={self.balance!r} balances pairwise comparisons; with rankings use "
                             "balance=False, or explode them into pairs (Rankings.explode()).")
        if not self.feature_names(data):
            raise ModelError("Conditioned needs option features (the shared representation); the data have "
                             "none. Pass Comparisons.from_frame(features=[...]).")
        if data.user_table[self.condition].isna().any():
            raise ModelError(f"Some users have no value of {self.condition!r}; give every user a level of C.")
        if len(self.levels(data)) < 2:
            raise ModelError(f"{self.condition!r} has a single level in the data; one head is BradleyTerry.")

    def sizes(self, data):
        out = super().sizes(data)
        out["n_heads"] = len(self.levels(data))
        return out

    def arrays(self, data, *, with_outcome: bool = True):
        out = self._arrays(data, data, with_outcome)
        if self.balance_mode == "weights":  # fitting only: predict_arrays carries no weights
            out["balance_weight"] = jnp.asarray(self.balance_weights(data).weights)
        return out

    def predict_arrays(self, train, new):
        return self._arrays(train, new, False)

    def _arrays(self, train, data, with_outcome):
        out = super().arrays(data, with_outcome=with_outcome)
        out["head"] = jnp.asarray(self.head_index(train, data))
        if self.balance_mode == "erase":
            er = erase(train, self.condition, features=self.feature_names(train))
            out["xa"] = jnp.asarray(er.transform(np.asarray(out["xa"])))
            out["xb"] = jnp.asarray(er.transform(np.asarray(out["xb"])))
        return out

    def coords(self, data):
        out = super().coords(data)
        out["head"] = np.asarray([str(v) for v in self.levels(data)])
        return out

    # -- model ------------------------------------------------------------------------------------
    def model(self, data, *, n_options, n_users, n_features, n_covariates, n_heads=2, predict=False, batch=None):
        sparse = self.pooling == "partial" and self.head_prior == "sparse"
        if sparse:
            tau0 = numpyro.sample("sd_head_global", dist.HalfNormal(1.0))
        with numpyro.plate("feature", n_features):
            if self.pooling == "partial":
                mu = numpyro.sample(sites.WEIGHT, dist.Normal(0.0, self.weight_scale))
                if sparse:
                    lam = numpyro.sample("sd_head_local", dist.HalfCauchy(1.0))
                    tau = numpyro.deterministic("sd_head", tau0 * lam)
                else:
                    tau = numpyro.sample("sd_head", dist.HalfNormal(self.head_scale))
        if self.pooling == "partial":
            with numpyro.plate("head", n_heads, dim=-2), numpyro.plate("feature", n_features, dim=-1):
                z = numpyro.sample("z_head", dist.Normal(0.0, 1.0))
            W = numpyro.deterministic("head_weight", mu + tau * z)
        else:
            with numpyro.plate("head", n_heads, dim=-2), numpyro.plate("feature", n_features, dim=-1):
                W = numpyro.sample("head_weight", dist.Normal(0.0, self.weight_scale))
            mu = numpyro.deterministic(sites.WEIGHT, W.mean(0))
        pos = numpyro.sample(sites.POSITION, dist.Normal(0.0, self.position_scale)) if self.position else 0.0
        log_tie = self.sample_log_tie(data)

        with observation_plate(data, batch):
            d_ = take(data, batch)
            head = data["head"] if batch is None else data["head"][batch]
            wn = W[jnp.maximum(head, 0)]
            if predict:  # an unseen level: a fresh head from the population of heads
                if self.pooling == "partial":
                    w_new = mu + tau * numpyro.sample("z_new", dist.Normal(0.0, 1.0).expand([n_features]).to_event(1))
                else:
                    w_new = numpyro.sample("w_new", dist.Normal(0.0, self.weight_scale).expand([n_features]).to_event(1))
                wn = jnp.where((head >= 0)[:, None], wn, w_new)
            if is_rankings(d_):
                observe_rankings(item_rewards(jnp.zeros(n_options), wn, d_), d_, log_delta=log_tie, predict=predict)
                return
            d = jnp.sum((d_["xa"] - d_["xb"]) * wn, -1) + pos
            bw = data.get("balance_weight")
            # balance="weights": a weighted (power) likelihood in fitting; predictions unweighted
            weighted = (numpyro.handlers.scale(scale=bw if batch is None else bw[batch])
                        if bw is not None and not predict else contextlib.nullcontext())
            with weighted:
                observe(d, d_["y"], link=self.link, log_tie=log_tie, predict=predict, half_ties=self.half_ties)

    def dims(self, sizes):
        return {sites.WEIGHT: ["feature"], "sd_head": ["feature"], "sd_head_local": ["feature"], "z_head": ["head", "feature"],
                "head_weight": ["head", "feature"]}

    def summary_vars(self, sizes):
        out = [sites.WEIGHT, "head_weight"] + (["sd_head"] if self.pooling == "partial" else [])
        if self.pooling == "partial" and self.head_prior == "sparse":
            out.append("sd_head_global")
        if self.position:
            out.append(sites.POSITION)
        if self.ties in (True, "davidson"):
            out.append(sites.LOG_TIE)
        return out
