"""Hierarchical Bradley-Terry: user-level worths and/or feature weights, partially pooled."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpyro
import numpyro.distributions as dist

from bayespref.errors import ModelError
from bayespref.models import sites
from bayespref.models.base import (
    SCALE,
    ModelSpec,
    group_by_user,
    observation_plate,
    pad_leading,
    take,
    user_plate,
    worth_differences,
)
from bayespref.models.likelihood import observe
from bayespref.models.plackett_luce import is_rankings, item_rewards, observe_rankings
from bayespref.validate import FLAG, POSITIVE, Flag, Real

VARYING = ("worths", "features")
#: most user-varying effects that get an LKJ correlation by default (``correlated=None``)
MAX_CORRELATED = 10
#: largest user x option x slot array of one-hot worth differences in the grouped layout (beyond it,
#: worths are gathered per slot)
DENSE_WORTH_CELLS = 20_000_000


class ScaledCorrNormal(dist.Distribution):
    r"""Multivariate normal :math:`N(\text{loc}, \operatorname{diag}(s) L L^\top \operatorname{diag}(s))`
    with a scale vector per batch element and one correlation Cholesky factor L for all.

    The same density as ``MultivariateNormal(loc, scale_tril=s[..., None] * L)``, but the
    Mahalanobis term takes one triangular solve with the shared L for the whole batch instead of
    one factor per batch element (the users' partially centred effects: a scale per user, one L).
    """

    arg_constraints = {"loc": dist.constraints.real_vector, "scale": dist.constraints.positive}
    support = dist.constraints.real_vector
    reparametrized_params = ["loc", "scale"]

    def __init__(self, loc, scale, L, *, validate_args=None):
        self.loc, self.scale = jnp.broadcast_arrays(loc, scale)
        self.L = L
        super().__init__(batch_shape=jnp.shape(self.loc)[:-1], event_shape=jnp.shape(self.loc)[-1:],
                         validate_args=validate_args)

    @staticmethod
    def standardise(e, L):
        """:math:`L^{-1} e` for each row of ``e`` (..., E): one solve with all rows as right-hand sides."""
        flat = e.reshape(-1, e.shape[-1])
        return jax.scipy.linalg.solve_triangular(L, flat.T, lower=True).T.reshape(e.shape)

    def sample(self, key, sample_shape=()):
        z = jax.random.normal(key, sample_shape + self.batch_shape + self.event_shape)
        return self.loc + self.scale * (z @ self.L.T)

    def log_prob(self, value):
        z = self.standardise((value - self.loc) / self.scale, self.L)
        k = self.event_shape[0]
        return (-0.5 * jnp.sum(z ** 2, -1) - jnp.sum(jnp.log(self.scale), -1)
                - jnp.sum(jnp.log(jnp.diagonal(self.L))) - 0.5 * k * jnp.log(2 * jnp.pi))


@dataclasses.dataclass(frozen=True)
class Hierarchical(ModelSpec):
    r"""Hierarchical Bradley-Terry model with user-varying effects and group effects.

    Stack the effects that vary by user into :math:`v_u = (\theta_u, w_u)` (worths of the options
    and/or weights of the features). For user u with covariate row :math:`c_u`,

    .. math::

        v_u = \mu + B^\top c_u + \eta_u, \qquad \eta_u = \operatorname{diag}(\tau) L z_u,
        \quad z_u \sim N(0, I),

    with :math:`L L^\top` an LKJ correlation matrix (non-centred parameterisation), and

    .. math::

        \operatorname{logit} P(a_n \succ b_n) = (\theta_{u_n, a_n} - \theta_{u_n, b_n})
            + (x_{a_n} - x_{b_n})^\top w_{u_n} + \beta_{pos}.

    Effects that do not vary by user are pooled (as in :class:`BradleyTerry`).

    Priors (defaults in brackets)::

        mu_worth ~ ZeroSumNormal(worth_scale)       [2.0]   worths at covariates 0 (``worth``)
        mu_weight_f ~ N(0, weight_scale)            [2.5]   population weights (``weight``)
        B ~ N(0, group_scale)                       [1.0]   group effects (``group_worth``, ``group_weight``);
                                                            on worths ZeroSumNormal over options
        tau ~ HalfNormal(sd_scale)                  [1.0]   user SDs (``sd_worth``, ``sd_weight``)
        L ~ LKJCholesky(lkj_concentration)          [2.0]   when correlated (default: 2 to 10 weights, no worths)
        beta_pos ~ N(0, position_scale), log_tie ~ N(tie_loc, tie_scale)   as in BradleyTerry

    **Rankings.** Given a :class:`~bayespref.Rankings`, each user's rewards rank the shown items by
    the Plackett-Luce model (:mod:`bayespref.models.plackett_luce`), with the same user effects,
    group effects and priors; ``method="laplace"`` covers pairs only.

    **Gauge.** Population worths sum to zero; each user's worth deviations are centred over options
    (only differences within a user are identified), so ``sd_worth`` is the SD of an option's
    deviation from the population around the user's own mean.

    **New users.** :meth:`Fit.predict` for users not in the training data uses
    :math:`\mu + B^\top c` plus a fresh draw of :math:`\eta` per posterior draw (population level,
    marginal over users); their covariates must be given.

    Parameters
    ----------
    varying : sequence of {"worths", "features"} or None
        Effects that vary by user. None: the features when the data have features, else the worths.
    features, covariates : list of str, bool or None
        Features / user covariates to use (None: all in the data; False: none). A categorical
        covariate is named by its column (all its dummy columns are used).
    worths : bool or None
        Include option worths (population level, and per user if ``"worths"`` is varying). None
        (default): worths only when no option features are used (fixed worths would absorb
        per-option features and leave the population weights to the prior).
    correlated : bool or None
        LKJ prior on the correlation of the user-varying effects (otherwise independent). None
        (default): correlated when 2 to :data:`MAX_CORRELATED` feature weights vary by user and no
        worths do, independent otherwise. Many effects bring many correlations (E(E - 1)/2: 66 at
        12 Arena models, 4,950 at 100) that a few hundred or thousand users cannot inform; on the
        Arena-style medium design independent effects halved the gradients at the same minimum ESS.
        Users' worths are independent at any number of options: comparisons inform only the
        differences of a user's worths, so the spread of a common shift of all of them is left to the
        prior, and with a correlation over 6 models' worths (150 judges x 40 battles, 3 seeds) the
        judges' SDs took 854-3,266 gradients per effective draw against 54-206 independent, with
        R-hat up to 1.08 (benchmarks/RESULTS.md). ``fit.info`` and :meth:`resolved_correlated` say which.
    interactions : dict, optional
        Restrict the group effects: ``{covariate: [option or feature names]}`` lets that covariate
        shift only the listed effects (other covariates shift all). Example for CEMS:
        ``{"french": ["Paris", "London"]}``.
    random_effects : bool
        User-level deviations :math:`\eta_u`. False gives the fixed-effects model
        :math:`v_u = \mu + B^\top c_u` (covariate x option interactions only, as in
        BradleyTerry2's subject-covariate models).
    centring : float in [0, 1]
        How NUTS parameterises the users' effects; the model and its posterior are the same for
        every value. 0 (default): non-centred, :math:`\eta_u = \operatorname{diag}(\tau) L z_u`;
        1: centred, :math:`v_u` sampled directly; in between: partially centred
        (:meth:`_partially_centred`). Partial centring helps when each user has many comparisons
        relative to the spread of the population and hurts when a user SD is near zero (a funnel
        again). Measured on hierarchical BT with user SD 0.5 (benchmarks/RESULTS.md), gradients per
        effective sample: 44 -> 24 (100 users x 20) and 73-84 -> 21-27 (1,000 x 50) at 0.4-0.65;
        with user SD 0.2, 0.13 already doubled them. Check the ESS of ``sd_*`` when changing it.
        SVI, ``method="laplace"`` and predictions always use ``z``.

    Posterior variables: ``worth`` (option), ``weight`` (feature), ``group_worth`` (covariate, option),
    ``group_weight`` (covariate, feature), ``sd_worth`` (option), ``sd_weight`` (feature),
    ``corr_chol`` (effect, effect), ``z`` (user, effect), ``user_worth`` (user, option),
    ``user_weight`` (user, feature), ``position``, ``log_tie``.
    """

    varying: Sequence[str] | None = None
    features: Sequence[str] | bool | None = None
    covariates: Sequence[str] | bool | None = None
    worths: bool | None = None
    correlated: bool | None = None
    random_effects: bool = True
    interactions: dict | None = None
    position: bool = False
    ties: bool | str = False
    link: str = "logit"
    worth_scale: float = 2.0
    weight_scale: float = 2.5
    group_scale: float = 1.0
    sd_scale: float = 1.0
    lkj_concentration: float = 2.0
    position_scale: float = 1.0
    tie_loc: float = -1.0
    tie_scale: float = 1.5
    centring: float | None = None

    family: ClassVar[str] = "Hierarchical"
    sampler_sites: ClassVar[tuple[str, ...]] = ("z_pc",)
    methods: ClassVar[tuple[str, ...]] = ("nuts", "svi", "laplace")
    structured_guides: ClassVar[tuple[str, ...]] = ("hierarchical",)
    group_effect_methods: ClassVar[tuple[str, ...]] = ("design", "users")
    covariate_effects: ClassVar[bool] = True
    sensitivity: ClassVar[bool] = True
    shardable: ClassVar[bool] = True
    rules: ClassVar[dict] = {**ModelSpec.rules, "group_scale": SCALE, "lkj_concentration": POSITIVE,
                             "centring": Real(0, 1, none=True, note="0: non-centred, 1: centred, None: chosen from the data"),
                             "correlated": Flag(none=True, note="None: correlated for 2 to 10 effects"),
                             "random_effects": FLAG}

    def __post_init__(self):
        super().__post_init__()
        if self.interactions is not None:
            bad = {k: v for k, v in self.interactions.items() if not isinstance(v, (str, list, tuple))}
            if bad:
                raise ModelError(f"{type(self).__name__}: interactions={self.interactions!r}: each covariate must map "
                                 "to a list of option or feature names (e.g. {'french': ['Paris', 'London']}); "
                                 f"got {bad!r}.")
            object.__setattr__(self, "interactions", {k: (v,) if isinstance(v, str) else tuple(v)
                                                      for k, v in self.interactions.items()})
        for name in ("varying", "features", "covariates"):
            v = getattr(self, name)
            if isinstance(v, str):
                object.__setattr__(self, name, (v,))
            elif isinstance(v, list):
                object.__setattr__(self, name, tuple(v))
        if self.varying is not None:
            bad = [v for v in self.varying if v not in VARYING]
            if bad or not self.varying:
                raise ModelError(f"varying={self.varying!r}: choose from {VARYING}.")
        if self.worths is False and self.varying is not None and "worths" in self.varying:
            raise ModelError("varying includes 'worths' but worths=False; drop one of them.")

    def resolved_worths(self, n_features: int) -> bool:
        if self.worths is None:
            return not n_features or (self.varying is not None and "worths" in self.varying)
        return bool(self.worths)

    def uses_worths(self, data) -> bool:
        return self.resolved_worths(len(self.feature_names(data)))

    def resolved_defaults(self, data) -> dict:
        nf = len(self.feature_names(data))
        blocks = self.effect_blocks(data.n_options, nf)
        return {"varying": list(self.resolved_varying(nf)), "worths": self.resolved_worths(nf),
                "correlated": self.resolved_correlated(blocks) if self.random_effects else None}

    def resolved_correlated(self, blocks) -> bool:
        """Whether the users' effects get an LKJ correlation (``correlated`` with the default resolved).

        ``blocks``: the varying effects, ``[(name, size), ...]`` (:meth:`effect_blocks`). By default
        feature weights are correlated when 2 to :data:`MAX_CORRELATED` vary; options' worths never: a
        comparison informs only the differences of a user's worths, so of the K(K + 1)/2 parameters
        of their covariance K (the spread of a common shift of all K) are informed by the prior
        alone, and the SDs mixed 4-60 times slower (the class docstring, ``correlated``).
        """
        n_effects = sum(n for _, n in blocks)
        if n_effects < 2:
            return False
        if self.correlated is not None:
            return bool(self.correlated)
        return n_effects <= MAX_CORRELATED and sites.WORTH not in [name for name, _ in blocks]

    def resolved_varying(self, n_features: int) -> tuple[str, ...]:
        if self.varying is not None:
            return tuple(self.varying)
        return ("features",) if n_features else ("worths",)

    def check(self, data) -> None:
        super().check(data)
        nf = len(self.feature_names(data))
        varying = self.resolved_varying(nf)
        if "features" in varying and not nf:
            raise ModelError("varying includes 'features' but the data have no option features.")
        if self.worths is False and not nf:
            raise ModelError("Hierarchical(worths=False) needs option features; none are used.")
        if not self.random_effects and not self.covariate_names(data):
            raise ModelError("Hierarchical(random_effects=False) needs user covariates (group effects); "
                             "without them it is BradleyTerry.")
        if data.n_users < 2:
            raise ModelError(
                "Hierarchical needs several users (a `user` column in Comparisons.from_frame); the data "
                "have one. Use BradleyTerry for pooled data."
            )

    def arrays(self, data, *, with_outcome: bool = True):
        out = super().arrays(data, with_outcome=with_outcome)
        if self.interactions:
            out["group_mask"] = jnp.asarray(self.group_mask(data))
        return out

    def by_user_arrays(self, data, max_padding: float = 1.5):
        r"""Grouped layout: each user's comparisons in one row of padded (user, slot) arrays.

        ``y`` (user, slot) holds the outcome codes and ``mask`` which slots are real; with features,
        ``dx`` (user, feature, slot) holds :math:`x_a - x_b` (zeros in padding); with worths, ``a``
        and ``b`` (user, slot) the options shown (0 in padding). The log density then needs

        .. math::

            d_{uj} = \theta_{u, a_{uj}} - \theta_{u, b_{uj}} + \sum_f dx_{ufj} w_{uf}:

        a gather within each user's own row of worths and one batched matrix-vector product over
        contiguous per-user blocks (and their transposes in the gradient); no per-comparison copy of
        the users' effects (``benchmarks/bench_scale.py grad``). None for rankings, missing
        outcomes, or users of sizes so unequal that the padded arrays would exceed ``max_padding``
        times the comparisons (:func:`~bayespref.models.base.group_by_user`; user minibatches ask
        for the layout at any padding).
        """
        import numpy as np

        if data.obs_dim != "comparison" or data.y is None or np.any(np.asarray(data.y) < 0):
            return None
        slots = group_by_user(data.user, data.n_users, max_padding=max_padding)
        if slots is None:
            return None
        base = super().arrays(data)
        idx, mask = slots["index"], slots["mask"]
        out = {"y": jnp.asarray(np.where(mask, np.asarray(data.y)[idx], 0), dtype=jnp.int32),
               "mask": jnp.asarray(mask)}
        if len(self.feature_names(data)):
            dx = np.asarray(base["xa"] - base["xb"])[idx]                # (U, J, F)
            dx = np.where(mask[..., None], dx, 0.0).transpose(0, 2, 1)  # (U, F, J)
            out["dx"] = jnp.asarray(dx, dtype=base["xa"].dtype)
        if self.uses_worths(data):
            for k in ("a", "b"):
                out[k] = jnp.asarray(np.where(mask, np.asarray(base[k])[idx], 0), dtype=jnp.int32)
            if mask.size * data.n_options <= DENSE_WORTH_CELLS:
                # few options: the worth differences as dense one-hot rows, so d = dw . theta_u is a
                # batched matrix-vector product whose gradient needs no scatter
                dw = worth_differences(out["a"], out["b"], data.n_options, mask)    # (U, J, O)
                out["dw"] = jnp.asarray(dw.transpose(0, 2, 1))
        return out

    def shard_arrays(self, data, arrays, n_shards):
        """The grouped layout (:meth:`by_user_arrays`) with its user axis split over ``n_shards``
        devices: each user's comparisons on one device; users padded with empty (masked) rows to a
        multiple of ``n_shards``. Needs the grouped layout (pairs with outcomes, users of not too
        unequal sizes)."""
        grouped = self.by_user_arrays(data)
        if grouped is None:
            raise ModelError(
                f"devices={n_shards}: Hierarchical splits its log density over devices by user in the grouped "
                "layout, which needs pairwise comparisons, varying='features' and no option worths (worths=None "
                "or False), and users of not too unequal sizes; this model or these data have none. Use "
                "devices=None.")
        return {**arrays, "by_user": pad_leading(grouped, n_shards)}, \
            ("by_user",)

    def group_mask(self, data):
        """(covariate, effect) 0/1 matrix of the group effects allowed by ``interactions``."""
        import numpy as np

        covs = self.covariate_names(data)
        nf = len(self.feature_names(data))
        names = []
        for name, _ in self.effect_blocks(data.n_options, nf):
            labels = data.options if name == sites.WORTH else self.feature_names(data)
            names += [str(x) for x in labels]
        mask = np.ones((len(covs), len(names)))
        raw = {c: c.split("[")[0] for c in covs}
        for cov, targets in (self.interactions or {}).items():
            rows = [i for i, c in enumerate(covs) if raw[c] == cov]
            if not rows:
                raise ModelError(f"interactions names covariate {cov!r}, not among the model's covariates "
                                 f"{sorted(set(raw.values()))}.")
            unknown = [t for t in targets if str(t) not in names]
            if unknown:
                raise ModelError(f"interactions[{cov!r}] names {unknown}, which are not varying effects "
                                 f"({names}).")
            keep = np.isin(names, [str(t) for t in targets])
            mask[rows] = keep
        return mask

    def sizes(self, data):
        out = super().sizes(data)
        out["n_features"] = len(self.feature_names(data))
        return out

    def effect_blocks(self, n_options, n_features):
        varying = self.resolved_varying(n_features)
        blocks = []
        if "worths" in varying:
            blocks.append((sites.WORTH, n_options))
        if "features" in varying:
            blocks.append((sites.WEIGHT, n_features))
        return blocks

    def population(self, data, *, n_options, n_features, n_covariates, **_):
        r"""Sample the population-level sites; return what maps users' z to their effects.

        Returns a dict with ``worth``, ``weight``, ``position``, ``log_tie``, ``mu`` (E,), ``B``
        (covariate, E), ``scale_tril`` (E, E) and ``blocks``: user u's effects are
        :math:`\mu + B^\top c_u + \text{scale\_tril}\, z_u`. Shared by :meth:`model` and the
        structured SVI guide (:class:`bayespref.guides.HierarchicalGuide`).
        """
        blocks = self.effect_blocks(n_options, n_features)
        n_eff = sum(n for _, n in blocks)
        worth = (numpyro.sample(sites.WORTH, dist.ZeroSumNormal(self.worth_scale, event_shape=(n_options,)))
                 if self.resolved_worths(n_features) else jnp.zeros(n_options))
        weight = jnp.zeros(n_features)
        if n_features:
            with numpyro.plate("feature", n_features):
                weight = numpyro.sample(sites.WEIGHT, dist.Normal(0.0, self.weight_scale))
        pos = numpyro.sample(sites.POSITION, dist.Normal(0.0, self.position_scale)) if self.position else 0.0
        log_tie = self.sample_log_tie(data)

        # group effects, user SDs and correlation, for each varying block
        group, sds = [], []
        for name, n in blocks:
            dim = sites.block_dim(name)
            if n_covariates:
                mask = data.get("group_mask")
                site = sites.group(name) if mask is None else f"{sites.group(name)}_free"
                if name == sites.WORTH and mask is None:
                    # a covariate shifting every worth equally changes nothing: sum to zero over options
                    with numpyro.plate("covariate", n_covariates, dim=-1):
                        g = numpyro.sample(site, dist.ZeroSumNormal(self.group_scale, event_shape=(n,)))
                else:
                    with numpyro.plate("covariate", n_covariates, dim=-2), numpyro.plate(dim, n, dim=-1):
                        g = numpyro.sample(site, dist.Normal(0.0, self.group_scale))
                if mask is not None:
                    start = sum(m for nm, m in blocks[: [b[0] for b in blocks].index(name)])
                    g = numpyro.deterministic(sites.group(name), g * mask[:, start:start + n])
                group.append(g)
            else:
                group.append(jnp.zeros((0, n)))
            if self.random_effects:
                with numpyro.plate(dim, n):
                    sds.append(numpyro.sample(sites.sd(name), dist.HalfNormal(self.sd_scale)))
        B = jnp.concatenate(group, axis=-1)  # (P, E)
        mu = jnp.concatenate([worth if name == sites.WORTH else weight for name, _ in blocks])
        scale_tril = jnp.zeros((n_eff, n_eff))
        tau = L = None
        if self.random_effects:
            tau = jnp.concatenate(sds)  # (E,)
            if self.resolved_correlated(blocks):
                L = numpyro.sample(sites.CORR_CHOL, dist.LKJCholesky(n_eff, self.lkj_concentration))
                scale_tril = tau[:, None] * L
            else:
                scale_tril = jnp.diag(tau)
        return {"worth": worth, "weight": weight, "position": pos, "log_tie": log_tie, "mu": mu, "B": B,
                "scale_tril": scale_tril, "sd": tau, "corr_chol": L, "blocks": blocks}

    def model(self, data, *, n_options, n_users, n_features, n_covariates, predict=False, batch=None,
              user_batch=None):
        pop = self.population(data, n_options=n_options, n_features=n_features, n_covariates=n_covariates)
        worth, weight, pos, log_tie = pop["worth"], pop["weight"], pop["position"], pop["log_tie"]
        blocks, mu, B, scale_tril = pop["blocks"], pop["mu"], pop["B"], pop["scale_tril"]
        n_eff = mu.shape[0]
        cov = data["covariates"] if user_batch is None else data["covariates"][user_batch]
        v = mu + cov @ B  # (U, E), or (batch, E) when users are subsampled
        if self.random_effects:
            c = None if predict or user_batch is not None else data.get("centring")
            with user_plate(n_users, user_batch, dim=-1):
                if c is None:
                    z = numpyro.sample(sites.Z, dist.Normal(0.0, 1.0).expand([n_eff]).to_event(1))
                    # independent effects: a scale per effect, not a product with a diagonal matrix
                    v = v + (z * pop["sd"] if pop["corr_chol"] is None else z @ scale_tril.T)
                else:
                    v = self._partially_centred(v, pop["sd"], pop["corr_chol"], c)
        v = self._record_user_effects(v, blocks)

        grouped = data.get("by_user")
        if user_batch is not None and (grouped is None or predict or batch is not None):
            raise ModelError("Subsampling users needs the grouped layout (Hierarchical.by_user_arrays) and no "
                             "comparison minibatch.")
        if grouped is not None and not predict and batch is None:
            rows = user_plate(n_users, user_batch)
            n_rows = grouped["y"].shape[0]
            if user_batch is not None and n_rows != user_batch.shape[0]:
                # in-memory rows of all users; a streamed fit (Parquet) passes the batch's rows already
                # gathered, with user_batch their global ids (the plate's U/B scaling uses all users)
                grouped = {k: g[user_batch] for k, g in grouped.items()}
            elif n_rows > n_users:  # users padded for a sharded fit (shard_arrays): empty, masked rows
                rows = numpyro.plate("user_rows", n_rows, dim=-2)
                v = jnp.concatenate([v, jnp.zeros((n_rows - n_users, v.shape[1]), v.dtype)])
            d = self._grouped_differences(grouped, v, blocks, worth, weight)
            with rows, numpyro.plate("slot", d.shape[-1], dim=-1), \
                    numpyro.handlers.mask(mask=grouped["mask"]):
                observe(d + pos, grouped["y"], link=self.link, log_tie=log_tie, half_ties=self.half_ties)
            return

        with observation_plate(data, batch):
            d_ = take(data, batch)
            u = d_["user"]
            if not predict and not is_rankings(d_):  # no per-comparison copy of the users' effects
                d = self._flat_differences(d_, v, blocks, worth if self.resolved_worths(n_features) else None,
                                           weight if n_features else None)
                observe(d + pos, d_["y"], link=self.link, log_tie=log_tie, half_ties=self.half_ties)
                return
            vn = v[jnp.maximum(u, 0)]
            if predict:  # users not seen in training: population level with a fresh deviation
                v_new = mu + d_["ucov"] @ B
                if self.random_effects:
                    z_new = numpyro.sample("z_new", dist.Normal(0.0, 1.0).expand([n_eff]).to_event(1))
                    v_new = v_new + z_new @ scale_tril.T
                v_new = self._centre(v_new, blocks)
                vn = jnp.where((u >= 0)[:, None], vn, v_new)
            worth_n, weight_n = self._split(vn, blocks, worth, weight)
            if is_rankings(d_):
                observe_rankings(item_rewards(worth_n, weight_n if n_features else None, d_), d_, log_delta=log_tie,
                                 predict=predict)
                return
            rows = jnp.arange(u.shape[0])
            if worth_n.ndim == 2:
                d = worth_n[rows, d_["a"]] - worth_n[rows, d_["b"]]
            else:
                d = worth_n[d_["a"]] - worth_n[d_["b"]]
            if n_features:
                dx = d_["xa"] - d_["xb"]
                d = d + (jnp.sum(dx * weight_n, -1) if weight_n.ndim == 2 else dx @ weight_n)
            observe(d + pos, d_["y"], link=self.link, log_tie=log_tie, predict=predict, half_ties=self.half_ties)

    @staticmethod
    def _grouped_differences(g, v, blocks, worth, weight):
        """Reward differences (user, slot) in the grouped layout (:meth:`by_user_arrays`)."""
        d = jnp.zeros(g["y"].shape, v.dtype)
        start, varying = 0, set()
        for name, n in blocks:
            part = v[:, start:start + n]
            start += n
            varying.add(name)
            if name == sites.WORTH and "dw" in g:  # dense one-hot differences (few options)
                d = d + jnp.einsum("uoj,uo->uj", g["dw"], part)
            elif name == sites.WORTH:  # a gather within each user's own row of worths
                d = d + jnp.take_along_axis(part, g["a"], 1) - jnp.take_along_axis(part, g["b"], 1)
            else:  # d_uj += sum_f dx_ufj w_uf: a batched matrix-vector product over users
                d = d + jnp.einsum("ufj,uf->uj", g["dx"], part)
        if sites.WORTH not in varying and "a" in g:
            d = d + worth[g["a"]] - worth[g["b"]]
        if sites.WEIGHT not in varying and "dx" in g:
            d = d + jnp.einsum("ufj,f->uj", g["dx"], weight)
        return d

    @staticmethod
    def _flat_differences(d_, v, blocks, worth, weight):
        """Reward differences (comparison,) in the per-comparison layout: each comparison reads its
        user's two worths (and feature weights) straight from the (user, effect) matrix.

        ``v`` passes an optimisation barrier first: without it XLA fuses the users' effects
        (population, covariates, scale times z, centring) into each gather and recomputes them
        once per comparison (on the Arena-style design the two gathers then cost 65 us each, 9 us
        with the barrier). The worths are read with flat indices promised in bounds (the data's
        users and options are checked), so no index is clamped or normalised in the gradient."""
        uu = jnp.maximum(d_["user"], 0)
        v = jax.lax.optimization_barrier(v)
        width = v.shape[-1]
        flat = v.reshape(-1)
        d = jnp.zeros(uu.shape, v.dtype)
        start, varying = 0, set()
        for name, n in blocks:
            varying.add(name)
            if name == sites.WORTH:
                row = uu * width + start
                d = d + flat.at[row + d_["a"]].get(mode="promise_in_bounds") \
                    - flat.at[row + d_["b"]].get(mode="promise_in_bounds")
            else:
                d = d + jnp.sum((d_["xa"] - d_["xb"]) * v[uu, start:start + n], -1)
            start += n
        if sites.WORTH not in varying and worth is not None:
            d = d + worth[d_["a"]] - worth[d_["b"]]
        if sites.WEIGHT not in varying and weight is not None:
            d = d + (d_["xa"] - d_["xb"]) @ weight
        return d

    @staticmethod
    def _partially_centred(m, tau, L, c):
        r"""Sample the users' effects in partially centred coordinates; return the effects.

        With the centring weight :math:`c \in [0, 1]` the sampled site is

        .. math::

            x_u \sim N\big(c\, m_u,\ \operatorname{diag}(\tau^{c}) L L^\top
                \operatorname{diag}(\tau^{c})\big), \qquad
            v_u = m_u + \tau^{1 - c} \odot (x_u - c\, m_u),

        so :math:`v_u \sim N(m_u, \operatorname{diag}(\tau) L L^\top \operatorname{diag}(\tau))`
        exactly as in the non-centred form (:math:`c = 0`: :math:`x_u = L z_u`; :math:`c = 1`:
        :math:`x_u = v_u`). The standardised :math:`z_u = L^{-1} (x_u - c\, m_u) / \tau^{c}`
        is recorded as the deterministic site ``z`` (the same ``z`` as the non-centred model's).
        ``c`` is a scalar, so the scale :math:`\tau^c` stays one vector shared by all users: at 1,000
        users a gradient costs about 20 % more than the non-centred one, against 40 % with a (user,
        effect) array of weights.
        """
        loc, scale = c * m, tau ** c
        if L is None:
            x = numpyro.sample("z_pc", dist.Normal(loc, scale).to_event(1))
            e = z = (x - loc) / scale
        else:
            x = numpyro.sample("z_pc", ScaledCorrNormal(loc, scale, L))
            e = (x - loc) / scale
            z = ScaledCorrNormal.standardise(e, L)
        numpyro.deterministic(sites.Z, z)
        return m + tau * e

    def has_random_effects(self, data) -> bool:
        return bool(self.random_effects)

    def centring_choice(self, data) -> dict | None:
        """The centring weight of the NUTS parameterisation and where it came from, or None (no
        random effects): ``{"centring": c, "chosen": ...}``, with, when chosen from the data
        (``centring=None``), the median user information and the moment estimates of the user SDs
        (:mod:`bayespref.models.centring`)."""
        import numpy as np

        from bayespref.models import centring as rule

        if not self.random_effects:
            return None
        if self.centring is not None:
            return {"centring": float(self.centring), "chosen": "given"}
        if data.obs_dim != "comparison" or data.y is None:
            return {"centring": 0.0, "chosen": "non-centred (rankings: the rule is for pairs)"}
        nf = len(self.feature_names(data))
        blocks = self.effect_blocks(data.n_options, nf)
        arr = super().arrays(data)   # features and covariates restricted to those the model uses
        a, b, user, y = (np.asarray(v) for v in (data.a, data.b, data.user, data.y))
        n, width = len(a), sum(m for _, m in blocks)
        keep = np.arange(n)
        if n * width > rule.MAX_CELLS:  # a random subset of whole users is enough for a median
            order = np.random.default_rng(0).permutation(data.n_users)
            counts = np.bincount(user, minlength=data.n_users)[order]
            chosen = order[: max(1, int(np.searchsorted(np.cumsum(counts), rule.MAX_CELLS // width)))]
            keep = np.flatnonzero(np.isin(user, chosen))
        parts = [worth_differences(a[keep], b[keep], m) if name == sites.WORTH
                 else np.asarray(arr["xa"] - arr["xb"])[keep] for name, m in blocks]
        cov = np.asarray(arr["covariates"])
        out = rule.choose(np.concatenate(parts, axis=1), y[keep], user[keep], data.n_users,
                          cov if cov.shape[1] else None)
        return {**out, "chosen": "from the data"}

    def centred_draws(self, posterior, data, sizes):
        """Another fit's draws (non-centred ``z``) with the partially centred ``z_pc`` added.

        ``data`` holds the model's arrays with ``centring``; used to start NUTS from an SVI fit.
        """
        import numpy as np

        names = [s for s in (sites.WORTH, sites.WEIGHT, sites.POSITION, sites.LOG_TIE, sites.CORR_CHOL)
                 if s in posterior]
        names += [s for s in posterior if str(s).startswith((sites.group(""), sites.sd("")))]
        values = {s: jnp.asarray(np.asarray(posterior[s])) for s in names}
        z = jnp.asarray(np.asarray(posterior[sites.Z]))
        sizes = {k: sizes[k] for k in ("n_options", "n_features", "n_covariates")}
        c = data["centring"]

        def one(vals, z_):
            with numpyro.handlers.seed(rng_seed=0), numpyro.handlers.substitute(data=vals):
                pop = self.population(data, **sizes)
            m = pop["mu"] + data["covariates"] @ pop["B"]
            tau, L = pop["sd"], pop["corr_chol"]
            e = z_ if L is None else z_ @ L.T
            return c * m + tau ** c * e

        lead = z.shape[:2]
        flat = jax.tree.map(lambda a: a.reshape((-1,) + a.shape[2:]), values)
        x = jax.lax.map(lambda a: one(*a), (flat, z.reshape((-1,) + z.shape[2:])), batch_size=50)
        return {**{s: np.asarray(posterior[s]) for s in names}, "z_pc": np.asarray(x).reshape(lead + x.shape[1:])}

    @staticmethod
    def _centre(v, blocks):
        if blocks and blocks[0][0] == sites.WORTH:
            n = blocks[0][1]
            w = v[..., :n]
            v = jnp.concatenate([w - w.mean(-1, keepdims=True), v[..., n:]], axis=-1)
        return v

    def _record_user_effects(self, v, blocks):
        v = self._centre(v, blocks)
        start = 0
        for name, n in blocks:
            numpyro.deterministic(sites.user(name), v[:, start:start + n])
            start += n
        return v

    @staticmethod
    def _split(vn, blocks, worth, weight):
        """Per-comparison worths and weights: user-level where varying, population otherwise."""
        parts, start = {}, 0
        for name, n in blocks:
            parts[name] = vn[:, start:start + n]
            start += n
        return parts.get(sites.WORTH, worth), parts.get(sites.WEIGHT, weight)

    def dims(self, sizes):
        out = {sites.CORR_CHOL: ["effect", "effect_bis"], sites.Z: ["user", "effect"]}
        for block, dim in sites.BLOCK_DIMS.items():
            out.update({block: [dim], sites.group(block): ["covariate", dim], sites.sd(block): [dim],
                        sites.user(block): ["user", dim]})
        return out

    def summary_vars(self, sizes):
        varying = self.resolved_varying(sizes["n_features"])
        out = []
        if self.resolved_worths(sizes["n_features"]):
            out.append(sites.WORTH)
        if sizes["n_features"]:
            out.append(sites.WEIGHT)
        for name, short in (("worths", sites.WORTH), ("features", sites.WEIGHT)):
            if name in varying:
                if sizes["n_covariates"]:
                    out.append(sites.group(short))
                if self.random_effects:
                    out.append(sites.sd(short))
        if self.position:
            out.append(sites.POSITION)
        if self.ties in (True, "davidson"):
            out.append(sites.LOG_TIE)
        return out
