"""What every model family shares: the spec base class and the model-function contract.

The model-function contract
---------------------------
A model is a plain NumPyro function

.. code-block:: python

    def model(data, *, n_options, n_users, n_features, n_covariates, predict=False, batch=None): ...

``data`` is a dict of JAX arrays built by :meth:`ModelSpec.arrays` from a
:class:`~bayespref.Comparisons` (``a``, ``b``, ``user``, ``y``, ``xa``, ``xb``, ``covariates``,
``ucov``; see ``docs/data-contract.md``); the sizes are static Python ints. The function

* samples its parameters (plates named ``option``, ``feature``, ``user``, ``covariate`` give the
  ArviZ dims of the same names),
* observes the outcome codes ``data["y"]`` (``None`` when predicting) at the site ``"y"`` inside
  ``numpyro.plate("comparison", N)`` (use :func:`bayespref.models.likelihood.observe`),
* with ``predict=True`` records the deterministic ``p_a`` (and ``p_tie`` with ties), and treats
  comparisons whose ``user`` index is -1 as made by a new user drawn from the population,
* with ``batch`` (an index array) evaluates only those comparisons, keeping the N/B scaling
  (``numpyro.plate(..., subsample_size=len(batch))``),
* may use ``data["by_user"]`` when present (built by :meth:`ModelSpec.by_user_arrays`): the same
  training comparisons grouped by user into a padded (user, slot) array, for a faster log density
  (per-user effects broadcast over a user's slots instead of gathered per comparison, so the
  gradient needs no scatter). It must give the same joint density. :func:`bayespref.fit` passes it
  to the sampler only; pointwise log-likelihoods and predictions always use the per-comparison
  arrays.
* may use ``data["sharded"]`` when present (built by :meth:`ModelSpec.shard_arrays` for a fit over
  several devices): a padded layout whose leading axis is split over the devices, with a ``mask``
  of the real entries; the same joint density, for the sampler only, as ``by_user``.

Wrap such a function in :class:`CustomModel` to fit it with :func:`bayespref.fit`.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import jax.numpy as jnp
import numpy as np
import numpyro

from bayespref.errors import ModelError
from bayespref.models import sites
from bayespref.models.likelihood import COMPARISON_PLATE
from bayespref.models.plackett_luce import RANKING_PLATE, UNRANKED, is_rankings, ranking_data, sample_log_delta
from bayespref.validate import FINITE, FLAG, INF, OneOf, Real, check_fields

LINKS = ("logit", "probit")
TIES = (False, True, "davidson", "half")
#: prior scales: finite and strictly positive
SCALE = Real(0, INF, open_low=True, note="a prior scale")


def comparison_plate(n: int, batch, name: str = COMPARISON_PLATE):
    """The comparison plate, subsampled to ``batch`` indices when given (N/B likelihood scaling)."""
    if batch is None:
        return numpyro.plate(name, n)
    with numpyro.handlers.substitute(data={name: batch}):
        return numpyro.plate(name, n, subsample_size=batch.shape[0])


def observation_plate(data: dict, batch=None):
    """The plate of the observations of the model arrays ``data``: ``comparison`` for pairwise
    comparisons, ``ranking`` for rankings (:mod:`bayespref.models.plackett_luce`)."""
    if is_rankings(data):
        return comparison_plate(data["items"].shape[0], batch, RANKING_PLATE)
    return comparison_plate(data["a"].shape[0], batch)


def user_plate(n_users: int, user_batch=None, dim: int = -2):
    """The user plate, subsampled to the users ``user_batch`` when given (U/B likelihood scaling)."""
    if user_batch is None:
        return numpyro.plate("user", n_users, dim=dim)
    with numpyro.handlers.substitute(data={"user": user_batch}):
        return numpyro.plate("user", n_users, subsample_size=user_batch.shape[0], dim=dim)


def take(data: dict, batch) -> dict:
    """The per-comparison arrays of ``data`` restricted to ``batch`` (all of them when None)."""
    if batch is None:
        return data
    per_comparison = ("a", "b", "user", "y", "xa", "xb", "ucov", "prompt", "items", "level", "shown", "n_ranked",
                      "xi")
    return {k: (v[batch] if k in per_comparison and v is not None else v) for k, v in data.items()}


#: keys of the model arrays that only the sampler's log density reads (grouped or sharded layouts);
#: pointwise log-likelihoods and predictions use the per-comparison arrays without them
SAMPLER_ONLY = ("by_user", "sharded")


def pad_leading(tree: dict, multiple: int) -> dict:
    """Every array of ``tree`` padded with zeros (False for masks) along its leading axis to a
    multiple of ``multiple`` (the device count of a sharded fit)."""
    def pad(x):
        x = np.asarray(x)
        extra = (-x.shape[0]) % multiple
        return np.concatenate([x, np.zeros((extra,) + x.shape[1:], x.dtype)]) if extra else x
    return {k: pad(v) for k, v in tree.items()}


#: family name -> spec class; filled by :meth:`ModelSpec.__init_subclass__`
FAMILIES: dict[str, type] = {}


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """Base class of model specifications.

    A spec is a small immutable object holding a family's options and priors. It turns a
    :class:`~bayespref.Comparisons` into the model's inputs (:meth:`arrays`, :meth:`sizes`), checks
    that the data suit the model (:meth:`check`), and provides the NumPyro function (:meth:`model`).
    """

    family: ClassVar[str] = "base"

    # -- capabilities ------------------------------------------------------------------------------
    # What a family can do, asked by the layers above (inference, checks, analyses, cli) in place of
    # its name. A new family inherits these defaults (a pooled model of the option rewards with no
    # user-level effects, analysed by none of the optional analyses) and overrides what it offers.
    # The posterior sites that those layers read are named in :mod:`bayespref.models.sites`.

    #: capability: latent user types summed out per user (posterior membership, few-shot
    #: onboarding, separation checks); a family that sets it also defines ``n_types`` and
    #: ``history_arrays``, and its ``model(..., predict=True)`` reads ``data["history"]`` and records
    #: the sites ``sites.MEMBERSHIP`` and ``sites.USER_LOG_LIK`` (and draws ``sites.TYPE_DRAW``).
    #: Code outside ``models/`` asks this, never the family name.
    has_types: ClassVar[bool] = False
    #: capability: how :func:`bayespref.heterogeneity.group_effects` may define the preference of a
    #: group of users; the first is the default of ``method="auto"``. ``"design"``: the group-level
    #: mean :math:`\mu + B^\top c_g` of users whose effects are
    #: :math:`v_u = \mu + B^\top c_u + \eta_u`, :math:`\eta_u \sim N(0, \operatorname{diag}(\tau) R
    #: \operatorname{diag}(\tau))` (sites ``<block>``, ``group_<block>``, ``sd_<block>``,
    #: ``corr_chol`` for each block of :meth:`effect_blocks`), which also makes
    #: :func:`~bayespref.heterogeneity.variance_shares` apply. ``"users"``: the average over the
    #: group's users of their effects (the sites of :meth:`user_effect_sites`, or with ``has_types``
    #: the membership-weighted type effects). Empty (default): the family has no user-level effects
    #: to compare.
    group_effect_methods: ClassVar[tuple[str, ...]] = ()
    #: capability: the model has effects of the user covariates (group effects on the preferences,
    #: or on the type membership). When False (default) the model ignores the data's covariates,
    #: even where :meth:`covariate_names` lists them (which then only describes the data).
    covariate_effects: ClassVar[bool] = False
    #: capability: :mod:`bayespref.sensitivity` can analyse fits of the family: the model observes
    #: ``sites.OBS`` per comparison (the confounder shifts its reward difference) or has types
    #: (:meth:`~bayespref.models.LatentTypes.type_differences`), and its estimands are read from the
    #: sites ``worth``, ``weight``, ``group_<block>`` and the type sites of :mod:`~bayespref.models.sites`.
    #: :meth:`sensitivity_support` says whether a configuration of the family is covered.
    sensitivity: ClassVar[bool] = False
    #: sites that are only the sampler's coordinates (e.g. partially centred effects); NUTS draws of
    #: them are dropped from the posterior, which keeps the model's own parameterisation
    sampler_sites: ClassVar[tuple[str, ...]] = ()
    #: inference methods of :func:`bayespref.fit` the family supports ("laplace" also needs
    #: ``population``, ``random_effects``, ``resolved_varying`` and ``by_user_arrays`` as
    #: :class:`~bayespref.Hierarchical` defines them), and its SVI guides beyond NumPyro's
    #: autoguides ("hierarchical": :class:`bayespref.inference.guides.HierarchicalGuide`, which needs
    #: ``population``, ``random_effects`` and ``correlated``)
    methods: ClassVar[tuple[str, ...]] = ("nuts", "svi")
    structured_guides: ClassVar[tuple[str, ...]] = ()

    # -- options ---------------------------------------------------------------------------------------
    #: field -> what its value may be (:mod:`bayespref.validate` rules), for the options several
    #: families share; a family adds its own (``rules = {**ModelSpec.rules, "n_types": Whole(1, 7)}``).
    #: A field without a rule is checked against its annotation (a ``bool`` must be True or False, a
    #: ``float`` a number, ...). :meth:`validate_options` applies them when a spec is made and again
    #: before it is fitted.
    rules: ClassVar[dict] = {
        "position": FLAG,
        "ties": OneOf(TIES, note="True/'davidson': Davidson's model; 'half': a tie counts half a win"),
        "link": OneOf(LINKS),
        "worth_scale": SCALE, "sd_worth_scale": SCALE, "weight_scale": SCALE, "position_scale": SCALE,
        "sd_scale": SCALE, "tie_scale": SCALE, "tie_loc": FINITE,
    }

    def __post_init__(self):
        self.validate_options()

    def validate_options(self) -> None:
        """Check every option's type and range (:attr:`rules`, else its annotation); raises a
        :class:`ModelError` naming the option, its value and what is allowed."""
        check_fields(self, self.rules, where=f"{type(self).__name__}: ")

    def __init_subclass__(cls, **kwargs):
        """Register every named family, so that saved fits of it can be read back (``FAMILIES``)."""
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("family") not in (None, "base", "custom"):
            FAMILIES[cls.family] = cls

    # -- interface for families ---------------------------------------------------------------
    def model(self, data, *, n_options, n_users, n_features, n_covariates, predict=False, batch=None):
        raise NotImplementedError

    def dims(self, sizes: dict) -> dict[str, list[str]]:
        """ArviZ dims of the model's sites (those that carry named dims)."""
        return {}

    #: variables shown by :meth:`Fit.summary` by default
    def summary_vars(self, sizes: dict) -> list[str]:
        return []

    def effect_blocks(self, n_options: int, n_features: int) -> list[tuple[str, int]] | None:
        """Capability: the user-level effect blocks ``[(name, size), ...]`` (``"worth"`` over options,
        ``"weight"`` over features) that each user's effects are made of: an empty list when this
        configuration has none (e.g. LatentTypes without user deviations), None when the family
        never has user-level effects."""
        return None

    def user_effect_sites(self, sizes: dict) -> dict[str, str]:
        """Capability: the posterior sites holding each training user's effects, by block
        (``{"worth": "user_worth", ...}``, dims ``user`` x the block's dim). Read by the convergence
        diagnostics and averaged by ``heterogeneity.group_effects(method="users")``. Default: the
        :func:`~bayespref.models.sites.user` site of every block of :meth:`effect_blocks` (none when
        that is None); a family whose users' effects are not recorded returns ``{}``."""
        blocks = self.effect_blocks(sizes["n_options"], sizes["n_features"]) or []
        return {name: sites.user(name) for name, _ in blocks}

    def sensitivity_support(self) -> str | None:
        """Capability: why :mod:`bayespref.sensitivity` cannot analyse this configuration of a family
        that declares ``sensitivity``, or None (default) when it can."""
        return None

    def sample_log_tie(self, data: dict | None = None):
        """Davidson's log tie parameter (site ``log_tie``), or None without Davidson ties; for rankings
        (model arrays ``data`` holding them) the tie prevalences of
        :func:`~bayespref.models.plackett_luce.sample_log_delta`."""
        import numpyro.distributions as dist

        if data is not None and is_rankings(data):
            return sample_log_delta(self, data)
        if getattr(self, "ties", False) in (True, "davidson"):
            return numpyro.sample(sites.LOG_TIE, dist.Normal(self.tie_loc, self.tie_scale))
        return None

    @property
    def half_ties(self) -> bool:
        return getattr(self, "ties", False) == "half"

    def uses_worths(self, data) -> bool:
        """Whether the model estimates a worth per option (then unseen options cannot be predicted)."""
        return True

    # -- shared machinery -----------------------------------------------------------------------
    def feature_names(self, data) -> tuple[str, ...]:
        """The option features this model uses (``features`` option resolved against the data)."""
        return self._select("features", data.feature_names, "features", "features")

    def covariate_names(self, data) -> tuple[str, ...]:
        """Design columns of the user covariates this model uses; a categorical covariate is named by
        its column and brings all its dummy columns."""
        return self._select("covariates", data.covariate_names, "user covariates", "user_covariates")

    def covariate_columns(self, data) -> list[int]:
        """Positions in ``data.covariate_names`` of the design columns this model uses."""
        names = list(data.covariate_names)
        return [names.index(c) for c in self.covariate_names(data)]

    def _select(self, option, available, what, arg) -> tuple[str, ...]:
        sel = getattr(self, option, None)
        available = tuple(available)
        if sel is None or sel is True:
            return available
        if sel is False:
            return ()
        chosen, unknown = [], []
        for name in ([sel] if isinstance(sel, str) else sel):
            cols = [c for c in available if c == name or c.startswith(f"{name}[")]
            (chosen.extend(cols) if cols else unknown.append(name))
        if unknown:
            raise ModelError(
                f"{type(self).__name__}({option}=...) names {unknown}, which the data do not have; "
                f"available {what}: {list(available) or 'none'}. Pass them to "
                f"Comparisons.from_frame({arg}=...)."
            )
        return tuple(dict.fromkeys(chosen))

    def check(self, data) -> None:
        """Raise :class:`ModelError` when the data cannot be fitted by this spec."""
        self.validate_options()
        link = getattr(self, "link", "logit")
        ties = getattr(self, "ties", False)
        if ranking_data(data):
            return self._check_rankings(data, link, ties)
        # judgements won by b, by a, and ties; a reader streamed from disk counted them in its scan
        counts = getattr(data, "outcome_counts", None)
        if counts is None:
            y = np.asarray(data.y)
            counts = np.bincount(y[(y >= 0) & (y <= 2)], minlength=3)
        if data.has_ties and not ties:
            raise ModelError(
                f"The data hold {int(counts[2])} tied comparisons (outcome 0.5) but {type(self).__name__} was "
                "built with ties=False. Use ties=True (Davidson ties) or remove the ties explicitly."
            )
        if ties in (True, "davidson") and link != "logit":
            raise ModelError("Davidson ties need link='logit'; use ties='half' or ties=False with link='probit'.")
        if getattr(self, "position", False):
            if counts[0] + counts[1] and not (counts[0] and counts[1]):
                raise ModelError(
                    "position=True, but every decided comparison was won by the same position "
                    "(e.g. data given as winner/loser or chosen/rejected), so the order effect is not "
                    "identified. Use position=False, or give the options in the order shown."
                )

    def _check_rankings(self, data, link, ties) -> None:
        name = type(self).__name__
        if data.has_ties and not ties:
            raise ModelError(f"The rankings hold tied items (largest tie: {data.max_tie}) but {name} was built "
                             "with ties=False. Use ties=True (Plackett-Luce with Turner et al.'s ties).")
        if ties == "half":
            raise ModelError("ties='half' is defined for pairs; rankings use ties=True (Turner et al.'s tie "
                             "prevalences, Davidson's model for pairs).")
        if link != "logit":
            raise ModelError(f"link={link!r}: rankings follow the Plackett-Luce model, whose pairwise case is "
                             "the logit link; use link='logit'.")
        if getattr(self, "position", False):
            raise ModelError("position=True is an order effect of pairs shown as (a, b); rankings have no "
                             "first-shown option. Use position=False, or give an item feature for the slot "
                             "it was shown in.")

    def sizes(self, data) -> dict[str, int]:
        return {
            "n_options": int(data.n_options),
            "n_users": int(data.n_users),
            "n_features": len(self.feature_names(data)),
            "n_covariates": len(self.covariate_names(data)),
        }

    def arrays(self, data, *, with_outcome: bool = True) -> dict[str, Any]:
        """The model's inputs as JAX arrays (features and covariates restricted to those used)."""
        fidx = [list(data.feature_names).index(f) for f in self.feature_names(data)]
        cidx = self.covariate_columns(data)
        cov = np.asarray(data.covariates, dtype=float)[:, cidx] if data.covariates.size else np.zeros((data.n_users, 0))
        cov = cov.reshape(data.n_users, len(cidx))
        ucov = comparison_covariates(data)[:, cidx].reshape(data.n_obs, len(cidx))
        if ranking_data(data):
            return self._ranking_arrays(data, fidx, cov, ucov, with_outcome)
        y = np.asarray(data.y) if with_outcome else None
        if y is not None and np.any(y < 0):
            y = None
        out = {
            "a": jnp.asarray(data.a, dtype=jnp.int32),
            "b": jnp.asarray(data.b, dtype=jnp.int32),
            "user": jnp.asarray(data.user, dtype=jnp.int32),
            "y": None if y is None else jnp.asarray(y, dtype=jnp.int32),
            "xa": jnp.asarray(np.asarray(data.xa, dtype=float)[:, fidx].reshape(data.n_comparisons, len(fidx))),
            "xb": jnp.asarray(np.asarray(data.xb, dtype=float)[:, fidx].reshape(data.n_comparisons, len(fidx))),
            "covariates": jnp.asarray(cov),
            "ucov": jnp.asarray(ucov),
        }
        return out

    def _ranking_arrays(self, data, fidx, cov, ucov, with_outcome) -> dict[str, Any]:
        """Model arrays of rankings (:mod:`bayespref.models.plackett_luce`, "The arrays")."""
        items = np.asarray(data.items)
        shown = items >= 0
        level = np.asarray(data.level)
        x = np.asarray(data.x, dtype=float)[:, :, fidx].reshape(items.shape + (len(fidx),))
        ties = getattr(self, "ties", False) in (True, "davidson")
        max_tie = int(data.max_tie) if ties else 1
        return {
            "items": jnp.asarray(np.where(shown, items, 0), dtype=jnp.int32),
            "shown": jnp.asarray(shown),
            "level": jnp.asarray(level, dtype=jnp.int32) if with_outcome and np.all(level[shown] >= 0) else None,
            "n_ranked": jnp.asarray(np.sum(shown & (level != UNRANKED), axis=1), dtype=jnp.int32),
            "tie_order": jnp.arange(2, max_tie + 1, dtype=jnp.int32),
            "user": jnp.asarray(data.user, dtype=jnp.int32),
            "xi": jnp.asarray(x),
            "covariates": jnp.asarray(cov),
            "ucov": jnp.asarray(ucov),
        }

    def by_user_arrays(self, data, max_padding: float = 1.5) -> dict[str, Any] | None:
        """The training comparisons grouped by user for a faster log density, or None (default)."""
        return None

    #: capability: whether this family can split its log density over devices (:meth:`shard_arrays`)
    shardable: ClassVar[bool] = False

    def shard_arrays(self, data, arrays: dict, n_shards: int) -> tuple[dict, tuple[str, ...]]:
        """Capability: the sampler's arrays laid out for a log density split over ``n_shards`` devices.

        Returns ``(arrays, sharded)``: the model arrays with a layout the density reads (under a key
        of :data:`SAMPLER_ONLY`) and the keys whose arrays are split along their leading axis (a
        multiple of ``n_shards``: padded, with a mask); everything else is replicated on every
        device. A user's comparisons stay on one device. Raises :class:`ModelError` naming why
        when this family or configuration cannot be sharded (the default).
        """
        able = ", ".join(sorted(name for name, cls in FAMILIES.items() if cls.shardable)) or "none"
        raise ModelError(f"{self.family} cannot split its log density over devices (devices={n_shards}); "
                         f"families that can: {able}. Use devices=None (one device).")

    def centring_choice(self, data) -> dict | None:
        """The centring of the users' effects in the NUTS parameterisation and where it came from
        (``{"centring": c, "chosen": ...}``), or None when the family has none (default)."""
        return None

    def centring_weight(self, data) -> np.floating | None:
        """Partial-centring weight of the users' effects in the NUTS parameterisation (a float32
        scalar), or None (non-centred, or no such parameterisation): :meth:`centring_choice`'s c."""
        from bayespref.models.centring import weight

        return weight(self.centring_choice(data))

    def resolved_defaults(self, data) -> dict:
        """Options whose default (None) the family resolves from the data, with what it chose
        (recorded in ``fit.info["model_defaults"]``)."""
        return {}

    def has_random_effects(self, data) -> bool:
        """Whether the model has a scale of random effects (users' or options'), where NUTS can meet a
        funnel (small data then get a higher default ``target_accept``)."""
        return False

    def multimodal(self) -> bool:
        """Whether the posterior has several modes (NUTS then starts from the best of several mode
        searches, :func:`bayespref.inference.engine.init_from_modes`)."""
        return False

    def centred_draws(self, posterior, data, sizes) -> dict:
        """Another fit's draws in the sampler's coordinates (families whose ``centring_weight`` is set)."""
        raise ModelError(f"{self.family} has no partially centred parameterisation.")

    def predict_arrays(self, train, new) -> dict[str, Any]:
        """Inputs of ``model(..., predict=True)`` for the comparisons ``new`` (training data ``train``)."""
        return self.arrays(new, with_outcome=False)

    def postprocess(self, idata, data):
        """Adjust the DataTree after sampling (e.g. relabel mixture components); returns it."""
        return idata

    def bind(self, data) -> Callable:
        """The NumPyro function with this spec's static sizes bound (``fn(data_arrays, ...)``)."""
        return functools.partial(self.model, **self.sizes(data))

    def coords(self, data, *, obs: bool = True) -> dict[str, np.ndarray]:
        """ArviZ coords of the fit's dims; ``obs=False`` leaves out the observations' (data streamed from
        disk have no per-observation groups)."""
        out = {
            "option": _labels(data.options),
            "user": _labels(data.users),
            "feature": np.asarray(self.feature_names(data), dtype=str),
            "covariate": np.asarray(self.covariate_names(data), dtype=str),
        }
        if obs:
            out[data.obs_dim] = np.arange(data.n_obs)
        if ranking_data(data):
            out["slot"] = np.arange(data.max_items)
            if data.max_tie > 2 and getattr(self, "ties", False) in (True, "davidson"):
                out["tie_order"] = np.arange(2, data.max_tie + 1)
        return out

    def obs_dims(self, data) -> list[str]:
        """ArviZ dims of the observed outcome: ``comparison``, or ``ranking`` x ``slot`` (each item's level)."""
        return [data.obs_dim, "slot"] if ranking_data(data) else [data.obs_dim]

    # -- serialisation ----------------------------------------------------------------------------
    def to_dict(self) -> dict:
        out = {"family": self.family}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            out[f.name] = list(v) if isinstance(v, tuple) else v
        return out


def worth_differences(a, b, n_options: int, mask=None) -> np.ndarray:
    r"""One-hot differences :math:`e_a - e_b` of the options shown, ``a.shape + (n_options,)`` float32
    (zero where ``mask`` is False): the design of worths, :math:`\theta_a - \theta_b = (e_a - e_b)^\top
    \theta`."""
    eye = np.eye(n_options, dtype=np.float32)
    out = eye[np.asarray(a)] - eye[np.asarray(b)]
    return out if mask is None else out * np.asarray(mask)[..., None]


def group_by_user(user: np.ndarray, n_users: int, max_padding: float = 1.5) -> dict[str, np.ndarray] | None:
    """Slots of a padded (user, slot) layout of the comparisons, or None when it would pad too much.

    Comparisons are ordered by user (stably) and user u's j-th comparison goes to slot (u, j);
    ``J`` is the largest count of comparisons of one user. Returns ``index`` (U, J): the comparison
    in each slot (0 in padding slots) and ``mask`` (U, J): True where a slot holds a comparison.
    None when ``U * J > max_padding * N`` (very unequal counts: the padded layout would cost more
    than it saves) or when a comparison has no training user.
    """
    user = np.asarray(user)
    n = user.shape[0]
    if n == 0 or user.min() < 0:
        return None
    counts = np.bincount(user, minlength=n_users)
    j_max = int(counts.max())
    if n_users * j_max > max_padding * n:
        return None
    order = np.argsort(user, kind="stable")
    start = np.concatenate([[0], np.cumsum(counts)[:-1]])
    slot = np.arange(n) - start[user[order]]
    index = np.zeros((n_users, j_max), dtype=np.int64)
    mask = np.zeros((n_users, j_max), dtype=bool)
    index[user[order], slot] = order
    mask[user[order], slot] = True
    return {"index": index, "mask": mask}


def comparison_covariates(data) -> np.ndarray:
    """The covariate row of each observation's user (new users included, when the data carry them)."""
    per_comparison = getattr(data, "ranking_covariates" if ranking_data(data) else "comparison_covariates",
                             None)
    if per_comparison is not None:
        return np.asarray(per_comparison, dtype=float).reshape(data.n_obs, -1)
    cov = np.asarray(data.covariates, dtype=float).reshape(data.n_users, -1)
    return cov[np.maximum(np.asarray(data.user), 0)]


def _labels(index) -> np.ndarray:
    """Coordinate values for a label index: integers stay integers, anything else becomes str."""
    values = np.asarray(index)
    if values.dtype.kind in "iu":
        return values
    return values.astype(str)


@dataclasses.dataclass(frozen=True)
class CustomModel(ModelSpec):
    """A user-written NumPyro function that follows the model-function contract (module docstring).

    Parameters
    ----------
    fn : callable
        ``fn(data, *, n_options, n_users, n_features, n_covariates, predict=False, batch=None)``.
    dims : dict, optional
        ArviZ dims of its sites, e.g. ``{"skill": ["option"]}``.
    ties, position, link : as in :class:`BradleyTerry`; only used to validate the data.

    Examples
    --------
    >>> import numpyro, numpyro.distributions as dist
    >>> from bayespref.models.likelihood import observe
    >>> def my_bt(data, *, n_options, predict=False, **_):
    ...     with numpyro.plate("option", n_options):
    ...         skill = numpyro.sample("skill", dist.Normal(0, 1))
    ...     with numpyro.plate("comparison", data["a"].shape[0]):
    ...         observe(skill[data["a"]] - skill[data["b"]], data["y"], predict=predict)
    >>> spec = CustomModel(my_bt, dims={"skill": ["option"]})
    """

    fn: Callable = None
    var_dims: dict = dataclasses.field(default_factory=dict)
    ties: bool = False
    position: bool = False
    link: str = "logit"
    features: Sequence[str] | bool | None = None
    covariates: Sequence[str] | bool | None = None

    family: ClassVar[str] = "custom"
    #: a custom model is read by the site names of :mod:`bayespref.models.sites`: those it has are used
    covariate_effects: ClassVar[bool] = True
    sensitivity: ClassVar[bool] = True

    def __init__(self, fn, dims=None, *, ties=False, position=False, link="logit", features=None, covariates=None):
        if not callable(fn):
            raise ModelError(f"CustomModel needs a callable NumPyro function, got {type(fn).__name__}.")
        object.__setattr__(self, "fn", fn)
        object.__setattr__(self, "var_dims", dict(dims or {}))
        object.__setattr__(self, "ties", ties)
        object.__setattr__(self, "position", position)
        object.__setattr__(self, "link", link)
        object.__setattr__(self, "features", features)
        object.__setattr__(self, "covariates", covariates)
        self.validate_options()

    def model(self, data, **kwargs):
        return self.fn(data, **kwargs)

    def dims(self, sizes):
        return dict(self.var_dims)

    def summary_vars(self, sizes):
        return list(self.var_dims)

    def user_effect_sites(self, sizes):
        return {sites.WORTH: sites.USER_WORTH, sites.WEIGHT: sites.USER_WEIGHT}

    def to_dict(self):
        return {"family": self.family, "fn": getattr(self.fn, "__qualname__", repr(self.fn)), "dims": self.var_dims,
                "ties": self.ties, "position": self.position, "link": self.link}
